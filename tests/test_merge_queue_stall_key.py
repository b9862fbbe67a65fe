"""The migration that folds queue_stall_seconds into queue_progress_period_seconds keeps an operator's value."""

import importlib

import pytest
from django.apps import apps

from sync.config_keys import QUEUE_PROGRESS_PERIOD_SECONDS
from tdscore import config
from tdscore.models import Configuration

merge = importlib.import_module("tdscore.migrations.0005_merge_queue_stall_key").merge_stall_into_period

pytestmark = pytest.mark.django_db


def stall(value: int) -> None:
    Configuration.objects.create(
        key="queue_stall_seconds", value=value, value_type="int", category="alert", description="old"
    )


def period(value: int | None) -> None:
    if value is None:
        Configuration.objects.filter(key="queue_progress_period_seconds").delete()
    else:
        Configuration.objects.filter(key="queue_progress_period_seconds").update(value=value)


def migrate() -> int:
    merge(apps, None)
    config.invalidate()
    assert not Configuration.objects.filter(key="queue_stall_seconds").exists(), "the old row is deleted"
    return config.get(QUEUE_PROGRESS_PERIOD_SECONDS)


def test_an_operator_stall_value_becomes_the_period():
    stall(900)
    assert migrate() == 900


def test_an_operator_stall_value_fills_a_period_that_has_no_row():
    stall(900)
    period(None)
    assert migrate() == 900
    row = Configuration.objects.get(key="queue_progress_period_seconds")
    assert (row.value_type, row.category) == ("int", "alert")


def test_an_operator_period_value_wins_over_the_stall_value():
    stall(900)
    period(120)
    assert migrate() == 120


def test_a_stall_row_at_its_default_is_only_deleted():
    stall(300)
    period(None)
    assert migrate() == 300
    assert not Configuration.objects.filter(key="queue_progress_period_seconds").exists()


def test_no_stall_row_changes_nothing():
    period(600)
    assert migrate() == 600
