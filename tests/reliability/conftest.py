"""The reliability suites: faults a deployment meets (killed processes, a database that stops,
Zoho failing, hostile clients), each bounded in count and time. The pull fixtures are the pull
tests' own: the simulator over real HTTP, waits moving the clock; servers are started as the infra
tests start them."""

from tests.infra.conftest import start_server  # noqa: F401 (fixtures)
from tests.pull.conftest import clock, sim  # noqa: F401 (fixtures)
