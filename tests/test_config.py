import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.apps import apps as django_apps
from django.conf import settings

from alerts.config_keys import FAILURE_RATE_THRESHOLD
from sync.config_keys import (
    BATCH_SIZE,
    LOCK_TIMEOUT_SECONDS,
    MAX_RETRY_ATTEMPTS,
    PAUSED_ENTITIES,
    QUEUE_POLL_INTERVAL_MS,
    RECONCILIATION_ENABLED,
    RECONCILIATION_SCHEDULE_CRON,
)
from tdscore import config
from tdscore.actions import Actor, Via
from tdscore.models import Configuration

SPEC_DEFAULTS = {
    "max_retry_attempts": 3,
    "retry_backoff_base_ms": 1000,
    "retry_backoff_max_ms": 60000,
    "batch_size": 100,
    "lock_timeout_seconds": 300,
    "queue_poll_interval_ms": 1000,
    "failure_rate_threshold": 0.05,
    "queue_backlog_threshold": 1000,
    "sync_lag_threshold_minutes": 15,
    "reconciliation_enabled": True,
    "reconciliation_schedule_cron": "0 2 * * *",
}


@pytest.mark.django_db
def test_migrations_seed_the_eleven_spec_keys_with_their_defaults():
    stored = dict(Configuration.objects.filter(key__in=SPEC_DEFAULTS).values_list("key", "value"))
    assert stored == SPEC_DEFAULTS


@pytest.mark.django_db
def test_every_registry_key_has_a_row_after_migrate():
    assert set(Configuration.objects.values_list("key", flat=True)) == set(config.REGISTRY)


@pytest.mark.django_db
def test_get_returns_the_stored_value():
    assert config.get(BATCH_SIZE) == 100
    Configuration.objects.filter(key="batch_size").update(value=25)
    config.invalidate()
    assert config.get(BATCH_SIZE) == 25


@pytest.mark.django_db
def test_a_change_made_elsewhere_is_seen_after_the_cache_period(settings):
    settings.TDS_CONFIG_CACHE_SECONDS = 0
    assert config.get(MAX_RETRY_ATTEMPTS) == 3
    # Another process writes the table directly: no invalidation reaches this one.
    Configuration.objects.filter(key="max_retry_attempts").update(value=7)
    assert config.get(MAX_RETRY_ATTEMPTS) == 7


@pytest.mark.django_db
def test_update_is_seen_at_once_in_this_process(superuser):
    config.get(LOCK_TIMEOUT_SECONDS)  # warm the cache
    config.update(LOCK_TIMEOUT_SECONDS, 1, actor=Actor.of_user(superuser, Via.ADMIN))
    assert config.get(LOCK_TIMEOUT_SECONDS) == 1
    row = Configuration.objects.get(key="lock_timeout_seconds")
    assert row.updated_by == superuser


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (BATCH_SIZE, "many", "expected a whole number"),
        (BATCH_SIZE, 0, "below the minimum"),
        (FAILURE_RATE_THRESHOLD, 1.5, "above the maximum"),
        (RECONCILIATION_ENABLED, "yes", "expected true or false"),
        (RECONCILIATION_SCHEDULE_CRON, "every night", "not a valid cron"),
        (PAUSED_ENTITIES, ["products", "widgets"], "unknown entities widgets"),
        (MAX_RETRY_ATTEMPTS, True, "expected a whole number"),
    ],
)
def test_invalid_values_are_refused_with_a_clear_message(key, value, message):
    with pytest.raises(config.ConfigError, match=message):
        config.update(key, value)
    assert config.get(key) == key.default


@pytest.mark.django_db
def test_update_many_is_all_or_nothing():
    with pytest.raises(config.ConfigError):
        config.update_many({BATCH_SIZE: 10, MAX_RETRY_ATTEMPTS: -1})
    assert config.get(BATCH_SIZE) == 100


@pytest.mark.django_db
def test_unknown_key_is_refused():
    with pytest.raises(config.ConfigError, match="unknown"):
        config.get("no_such_key")


@pytest.mark.django_db
def test_short_durations_are_allowed_for_tests_across_processes():
    config.update_many({LOCK_TIMEOUT_SECONDS: 1, QUEUE_POLL_INTERVAL_MS: 50})
    assert (config.get(LOCK_TIMEOUT_SECONDS), config.get(QUEUE_POLL_INTERVAL_MS)) == (1, 50)


def test_a_key_is_read_by_its_constant_not_by_its_name():
    with pytest.raises(config.ConfigError, match="by its constant"):
        config.get("batch_size")


def test_a_name_is_declared_once():
    with pytest.raises(config.ConfigError, match="declared twice"):
        config.Key("batch_size", config.KeyType.INT, 1, "performance", "again")
    assert config.REGISTRY["batch_size"] is BATCH_SIZE


def test_a_default_the_key_refuses_is_refused_where_it_is_declared():
    with pytest.raises(config.ConfigError, match="above the maximum"):
        config.Key("a_bad_declaration", config.KeyType.INT, 10, "test", "", min=1, max=5)
    assert "a_bad_declaration" not in config.REGISTRY


def test_every_app_registers_its_keys_when_django_starts():
    """A fresh process that only starts Django knows every key declared in the apps' config_keys."""
    declared = set()
    for app in django_apps.get_app_configs():
        if importlib.util.find_spec(f"{app.name}.config_keys"):
            module = importlib.import_module(f"{app.name}.config_keys")
            declared |= {key.name for key in vars(module).values() if isinstance(key, config.Key)}
    started = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from tdscore import config; print(*config.REGISTRY)"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tdscore.settings"},
    )
    assert set(started.stdout.split()) == declared
    assert len(declared) > 50


@pytest.mark.django_db
def test_the_admin_and_the_api_change_a_key_by_its_name():
    assert config.update_many({"batch_size": 30}) == {"batch_size": 30}
    assert config.get(BATCH_SIZE) == 30


def test_the_reference_lists_every_key_with_its_type_and_default():
    """docs/REFERENCE.md is what an operator reads: each declared key has its row there, as declared."""
    reference = (Path(settings.BASE_DIR) / "docs" / "REFERENCE.md").read_text()
    # The keys' own section: other tables (the permissions) also start their rows with a name.
    section = reference.split("\n## Runtime configuration\n")[1].split("\n## ")[0]
    rows = {line.split("`")[1]: line for line in section.splitlines() if line.startswith("| `")}
    wrong = []
    for name, key in config.REGISTRY.items():
        row = rows.get(name, "")
        if f"| {key.type} | `{json.dumps(key.default)}` |" not in row:
            wrong.append(f"{name}: expected type {key.type} and default {json.dumps(key.default)}, found {row!r}")
    wrong += [f"{name}: listed but not declared" for name in set(rows) - set(config.REGISTRY)]
    assert not wrong, "\n".join(wrong)
