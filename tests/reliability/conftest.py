"""The reliability suites: faults a deployment meets (killed processes, a database that stops,
Zoho failing, hostile clients), each bounded in count and time. The pull fixtures are the pull
tests' own: the simulator over real HTTP, waits moving the clock."""

from tests.pull.conftest import clock, sim  # noqa: F401 (fixtures)
