import pytest

from tdscore import config
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
    assert config.get("batch_size") == 100
    Configuration.objects.filter(key="batch_size").update(value=25)
    config.invalidate()
    assert config.get("batch_size") == 25


@pytest.mark.django_db
def test_a_change_made_elsewhere_is_seen_after_the_cache_period(settings):
    settings.TDS_CONFIG_CACHE_SECONDS = 0
    assert config.get("max_retry_attempts") == 3
    # Another process writes the table directly: no invalidation reaches this one.
    Configuration.objects.filter(key="max_retry_attempts").update(value=7)
    assert config.get("max_retry_attempts") == 7


@pytest.mark.django_db
def test_update_is_seen_at_once_in_this_process(superuser):
    config.get("lock_timeout_seconds")  # warm the cache
    config.update("lock_timeout_seconds", 1, by=superuser)
    assert config.get("lock_timeout_seconds") == 1
    row = Configuration.objects.get(key="lock_timeout_seconds")
    assert row.updated_by == superuser


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("batch_size", "many", "expected a whole number"),
        ("batch_size", 0, "below the minimum"),
        ("failure_rate_threshold", 1.5, "above the maximum"),
        ("reconciliation_enabled", "yes", "expected true or false"),
        ("reconciliation_schedule_cron", "every night", "not a valid cron"),
        ("paused_entities", ["products", "widgets"], "unknown entities widgets"),
        ("max_retry_attempts", True, "expected a whole number"),
    ],
)
def test_invalid_values_are_refused_with_a_clear_message(key, value, message):
    with pytest.raises(config.ConfigError, match=message):
        config.update(key, value)
    assert config.get(key) == config.REGISTRY[key].default


@pytest.mark.django_db
def test_update_many_is_all_or_nothing():
    with pytest.raises(config.ConfigError):
        config.update_many({"batch_size": 10, "max_retry_attempts": -1})
    assert config.get("batch_size") == 100


@pytest.mark.django_db
def test_unknown_key_is_refused():
    with pytest.raises(config.ConfigError, match="unknown"):
        config.get("no_such_key")


@pytest.mark.django_db
def test_short_durations_are_allowed_for_tests_across_processes():
    config.update_many({"lock_timeout_seconds": 1, "queue_poll_interval_ms": 50})
    assert (config.get("lock_timeout_seconds"), config.get("queue_poll_interval_ms")) == (1, 50)
