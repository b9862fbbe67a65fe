"""Shared fixtures and the suite's rules.

- Tests marked `postgres` need PostgreSQL (row locks, triggers, several processes): they are
  deselected when the suite runs on SQLite, and run whenever DATABASE_URL points at PostgreSQL.
- With CI=true a skipped test fails the run: a missing PostgreSQL or tool must not pass silently.
"""

from __future__ import annotations

import os

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.cache import cache

from sync import schedules, wakeup
from tdscore import config, permissions

ON_POSTGRES = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
IN_CI = os.environ.get("CI", "").lower() == "true"


def pytest_collection_modifyitems(config, items):
    if ON_POSTGRES:
        return
    kept, dropped = [], []
    for item in items:
        (dropped if item.get_closest_marker("postgres") else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which counts as a failure: {report.longrepr}"


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup):
    """pytest-django's, then: this process's wake-up connections (sync.wakeup) are closed before the
    test database is dropped, which PostgreSQL refuses while a session is connected to it."""
    yield
    wakeup.close_all()


@pytest.fixture(autouse=True)
def _alerts_only_to_the_channels_a_test_turns_on(settings):
    # By default alert e-mails also go to the admin users; a test's users are not an audience.
    settings.ALERT_EMAIL_ADMINS = False


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The real hasher costs ~0.5 s per user created; tests need logins, not brute-force resistance.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_config_cache():
    # Each test sees the configuration its own transaction holds, and figures derived from its own
    # rows (the schedules' planned calls), not a cached copy of the last test's.
    config.invalidate()
    cache.delete(schedules.PLANNED_CALLS_CACHE_KEY)
    yield
    config.invalidate()


@pytest.fixture
def staff_user(django_user_model):
    """An operator as a deployment makes one: staff, in the "TDS operators" group."""
    # The migration made the group; a transactional test's flush may have removed it since.
    permissions.ensure_groups()
    user = django_user_model.objects.create_user("operator", "operator@example.com", "pw", is_staff=True)
    user.groups.add(Group.objects.get(name=permissions.OPERATORS))
    return user


@pytest.fixture
def viewer(django_user_model):
    """Staff in the "TDS viewers" group: reads everything, may press nothing."""
    permissions.ensure_groups()
    user = django_user_model.objects.create_user("viewer", "viewer@example.com", None, is_staff=True)
    user.groups.add(Group.objects.get(name=permissions.VIEWERS))
    return user


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.com", "pw")


@pytest.fixture
def api_client(staff_user):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(staff_user)
    return client


def point_at(settings, sim) -> None:
    """Point the Zoho settings (hosts and credentials) at a running simulator."""
    settings.ZOHO_API_BASE = settings.ZOHO_ACCOUNTS_BASE = sim.url
    settings.ZOHO_CLIENT_ID, settings.ZOHO_CLIENT_SECRET = "sim-client", "sim-secret"
    settings.ZOHO_REFRESH_TOKEN = "sim-refresh"
    settings.ZOHO_ORGANIZATION_ID = sim.organization_id


@pytest.fixture
def zoho_sim(settings):
    """A started Zoho simulator (zohosim) with settings pointed at it; stopped afterwards."""
    from zohosim import ZohoSimulator

    with ZohoSimulator() as sim:
        point_at(settings, sim)
        yield sim
