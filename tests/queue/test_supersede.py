from datetime import UTC, datetime, timedelta

import pytest

from sync.models import InboxEvent, QueueItem
from tests import factories

T0 = datetime(2026, 11, 1, 10, tzinfo=UTC)

pytestmark = pytest.mark.django_db


def test_a_newer_version_supersedes_older_waiting_rows_and_their_inbox_rows():
    event = factories.inbox_event()
    older = factories.queue_item(version=T0, inbox_event=event)
    newer = factories.queue_item(version=T0 + timedelta(minutes=1))
    older.refresh_from_db()
    event.refresh_from_db()
    assert (older.status, older.skip_reason) == ("skipped", "superseded")
    assert older.finished_at is not None
    assert event.status == InboxEvent.Status.PROCESSED
    assert QueueItem.objects.get(pk=newer.pk).status == "pending"


def test_an_older_or_equal_version_supersedes_nothing():
    first = factories.queue_item(version=T0)
    factories.queue_item(version=T0)
    factories.queue_item(version=T0 - timedelta(minutes=1))
    assert QueueItem.objects.get(pk=first.pk).status == "pending"


def test_a_row_without_a_version_is_never_superseded_and_supersedes_nothing():
    unversioned = factories.queue_item(version=None)
    factories.queue_item(version=T0)
    factories.queue_item(version=None)
    assert QueueItem.objects.get(pk=unversioned.pk).status == "pending"
    assert QueueItem.objects.filter(status="pending").count() == 3


def test_a_summary_does_not_supersede_an_older_detail_but_does_an_older_summary():
    detail = factories.queue_item(version=T0)
    summary = factories.queue_item(version=T0, is_summary=True, source="pull")
    factories.queue_item(version=T0 + timedelta(minutes=1), is_summary=True, source="pull")
    assert QueueItem.objects.get(pk=detail.pk).status == "pending"
    assert QueueItem.objects.get(pk=summary.pk).skip_reason == "superseded"


def test_rows_of_other_objects_and_finished_rows_are_left_alone():
    other = factories.queue_item(object_id="2002", version=T0)
    done = factories.queue_item(version=T0)
    QueueItem.objects.filter(pk=done.pk).update(status="completed")
    factories.queue_item(version=T0 + timedelta(minutes=1))
    assert QueueItem.objects.get(pk=other.pk).status == "pending"
    assert QueueItem.objects.get(pk=done.pk).status == "completed"
