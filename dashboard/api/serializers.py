"""Shapes of the dashboard API's answers and requests, which the OpenAPI schema is drawn from."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from alerts.models import Alert
from sync import entities
from sync.models import DeadLetter, InboxEvent, QueueItem, SyncCursor, SyncRun
from tdscore import config
from tdscore.models import Configuration, OperatorAction


class Error(serializers.Serializer):
    """The body of a refusal: `status` "error", a short `error` code and a `detail` for people."""

    status = serializers.CharField(default="error")
    error = serializers.CharField()
    detail = serializers.CharField()


# --- Metrics ---------------------------------------------------------------------------------


class WindowSummary(serializers.Serializer):
    received = serializers.IntegerField()
    applied = serializers.IntegerField()
    failed = serializers.IntegerField()
    skipped = serializers.IntegerField()
    success_rate = serializers.FloatField(allow_null=True, help_text="applied / (applied + failed)")
    latency_p50_seconds = serializers.FloatField(allow_null=True, help_text="end to end: received → committed")
    latency_p95_seconds = serializers.FloatField(allow_null=True)
    latency_p99_seconds = serializers.FloatField(allow_null=True)


class ZohoBudget(serializers.Serializer):
    calls_today = serializers.IntegerField()
    daily_cap = serializers.IntegerField()
    remaining_today = serializers.IntegerField()


class Point(serializers.Serializer):
    at = serializers.DateTimeField()
    value = serializers.FloatField(allow_null=True)


class Throughput(serializers.Serializer):
    step_seconds = serializers.IntegerField()
    received = Point(many=True)
    applied = Point(many=True)
    failed = Point(many=True)


class LagFigures(serializers.Serializer):
    p50_seconds = serializers.FloatField()
    p95_seconds = serializers.FloatField()
    count = serializers.IntegerField(help_text="applied changes measured")


class EntityFreshness(serializers.Serializer):
    since_modified = LagFigures(
        required=False, help_text="ERP commit minus Zoho's last_modified_time, of live changes (webhooks and pulls)"
    )
    since_received = LagFigures(required=False, help_text="ERP commit minus the webhook's receipt")
    backfill = LagFigures(
        required=False,
        help_text="ERP commit minus last_modified_time of old records a pull brought (older than the entity's "
        "last complete pull, or its first pull): history, not lag",
    )


class Overview(serializers.Serializer):
    generated_at = serializers.DateTimeField()
    last_hour = WindowSummary()
    last_day = WindowSummary()
    freshness = serializers.DictField(
        child=EntityFreshness(), help_text="per entity, over the changes applied in the last hour"
    )
    queue_depth = serializers.IntegerField(help_text="pending and retry rows")
    oldest_pending_age_seconds = serializers.FloatField(allow_null=True)
    dlq_size = serializers.IntegerField(help_text="unresolved dead letters")
    parents_waiting = serializers.IntegerField(help_text="parents stored rows reference that are not stored yet")
    open_alerts = serializers.IntegerField(help_text="alerts not resolved (open or acknowledged)")
    zoho = ZohoBudget()
    throughput = Throughput(help_text="per step over the last 24 hours")


class QueueStats(serializers.Serializer):
    by_status = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="pending, retry, processing: rows now; completed, skipped, dead_letter: finished since finished_since",
    )
    by_entity = serializers.DictField(child=serializers.DictField(child=serializers.IntegerField()))
    finished_since = serializers.DateTimeField()
    depth = serializers.IntegerField()
    oldest_pending_age_seconds = serializers.FloatField(allow_null=True)
    parents_waiting = serializers.IntegerField(help_text="parents stored rows reference that are not stored yet")


# --- Recent events ---------------------------------------------------------------------------


class InboxRow(serializers.ModelSerializer):
    class Meta:
        model = InboxEvent
        fields = [
            "id",
            "entity",
            "object_id",
            "source",
            "method",
            "content_type",
            "idempotency_key",
            "content_hash",
            "duplicate_count",
            "last_duplicate_at",
            "status",
            "error",
            "received_at",
        ]


class RecentEvent(serializers.ModelSerializer):
    inbox_event = InboxRow(allow_null=True, read_only=True)

    class Meta:
        model = QueueItem
        fields = [
            "id",
            "entity",
            "object_id",
            "version",
            "content_hash",
            "operation",
            "source",
            "status",
            "skip_reason",
            "priority",
            "attempts",
            "next_attempt_at",
            "last_error",
            "sync_run",
            "created_at",
            "updated_at",
            "finished_at",
            "payload",
            "inbox_event",
        ]


# --- Dead letters ----------------------------------------------------------------------------


class DeadLetterRow(serializers.ModelSerializer):
    class Meta:
        model = DeadLetter
        fields = [
            "id",
            "queue_item",
            "inbox_event",
            "entity",
            "object_id",
            "reason",
            "error_class",
            "error",
            "attempts",
            "first_failed_at",
            "last_failed_at",
            "redrive_count",
            "resolved_at",
            "resolved_by",
            "resolution",
            "payload",
        ]


class DeadLetterSample(serializers.Serializer):
    id = serializers.IntegerField()
    object_id = serializers.CharField()
    error = serializers.CharField()
    last_failed_at = serializers.DateTimeField()


class DeadLetterGroup(serializers.Serializer):
    entity = serializers.CharField()
    reason = serializers.ChoiceField(choices=DeadLetter.Reason.choices)
    error_class = serializers.CharField(help_text="the exception's type, e.g. ZohoError")
    count = serializers.IntegerField()
    first_seen = serializers.DateTimeField()
    last_seen = serializers.DateTimeField()
    sample = DeadLetterSample(help_text="the newest dead letter of the group")


class Retried(serializers.Serializer):
    """The dead letter's queue row, back to pending."""

    dead_letter = DeadLetterRow()
    queue_item = serializers.IntegerField()
    status = serializers.CharField()


class BulkRetryRequest(serializers.Serializer):
    entity = serializers.CharField(required=False)
    reason = serializers.ChoiceField(choices=DeadLetter.Reason.choices, required=False)
    all = serializers.BooleanField(default=False, help_text="needed when no filter is given")
    dry_run = serializers.BooleanField(default=False, help_text="preview what the replay would do; write nothing")


class BulkRetried(serializers.Serializer):
    count = serializers.IntegerField(help_text="dead letters replayed")
    not_replayed = serializers.IntegerField(help_text="matched but refused (no queue row, resolved meanwhile)")


class ReplayPreview(serializers.Serializer):
    dead_letter_id = serializers.IntegerField()
    entity = serializers.CharField()
    object_id = serializers.CharField()
    outcome = serializers.ChoiceField(choices=["apply", "unchanged", "stale", "fail"])
    changes = serializers.DictField(
        child=serializers.ListField(), help_text="field: [before, after] of the ERP row (lines as `lines`)"
    )
    error = serializers.CharField(help_text="why it would fail again, or cannot be replayed; empty otherwise")


class BulkRetryPreviewed(serializers.Serializer):
    count = serializers.IntegerField(help_text="dead letters previewed")
    previews = ReplayPreview(many=True)


# --- Configuration ---------------------------------------------------------------------------


class ConfigRow(serializers.ModelSerializer):
    updated_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    default = serializers.SerializerMethodField()
    min = serializers.SerializerMethodField()
    max = serializers.SerializerMethodField()

    class Meta:
        model = Configuration
        fields = [
            "key",
            "value",
            "value_type",
            "category",
            "description",
            "default",
            "min",
            "max",
            "updated_at",
            "updated_by",
        ]

    def _key(self, row: Configuration) -> config.Key | None:
        return config.REGISTRY.get(row.key)

    @extend_schema_field(OpenApiTypes.ANY)
    def get_default(self, row: Configuration):
        key = self._key(row)
        return key.default if key else None

    def get_min(self, row: Configuration) -> float | None:
        key = self._key(row)
        return key.min if key else None

    def get_max(self, row: Configuration) -> float | None:
        key = self._key(row)
        return key.max if key else None


class ConfigUpdated(serializers.Serializer):
    updated = serializers.DictField(child=serializers.JSONField(), help_text="key → value as stored")


class ConfigError(Error):
    key = serializers.CharField(allow_null=True, help_text="the key that was refused")


# --- Pull runs and cursors -------------------------------------------------------------------


class RunSerializer(serializers.ModelSerializer):
    # What became of the run's queue rows so far, counted when read: the drainers finish them later.
    applied = serializers.IntegerField(source="applied_now", read_only=True)
    failed = serializers.IntegerField(source="failed_now", read_only=True)
    skipped = serializers.IntegerField(source="skipped_now", read_only=True)

    class Meta:
        model = SyncRun
        fields = [
            "id",
            "run_type",
            "entity",
            "status",
            "trigger",
            "created_at",
            "started_at",
            "finished_at",
            "duration",
            "estimated_calls",
            "calls",
            "fetched",
            "queued",
            "applied",
            "failed",
            "skipped",
            "checkpoint",
            "error",
            "drift_report",
            "heartbeat_at",
        ]


class CursorSerializer(serializers.ModelSerializer):
    class Meta:
        model = SyncCursor
        fields = ["id", "entity", "run_type", "watermark", "checkpoint", "last_run", "last_run_at", "last_success_at"]


class SyncRequest(serializers.Serializer):
    entity = serializers.ChoiceField(choices=["all", *entities.ENTITIES])
    mode = serializers.ChoiceField(choices=["full", "incremental", "reconciliation"], default="incremental")


class SyncAccepted(serializers.Serializer):
    run_ids = serializers.ListField(child=serializers.IntegerField())
    refused = serializers.DictField(child=serializers.CharField(), help_text="entity → why it was not started")


class SyncRefused(serializers.Serializer):
    status = serializers.CharField()
    error = serializers.CharField()
    detail = serializers.CharField()
    refused = serializers.DictField(child=serializers.CharField())


# --- Alerts ----------------------------------------------------------------------------------


class AlertSerializer(serializers.ModelSerializer):
    class Meta:
        model = Alert
        fields = [
            "id",
            "rule",
            "fingerprint",
            "severity",
            "status",
            "title",
            "detail",
            "context",
            "value",
            "threshold",
            "occurrences",
            "first_seen",
            "last_seen",
            "acknowledged_by",
            "acknowledged_at",
            "resolved_by",
            "resolved_at",
            "escalated_at",
            "last_notified_at",
        ]


class AlertActionErrorSerializer(serializers.Serializer):
    status = serializers.CharField()
    error = serializers.CharField()
    detail = serializers.CharField()


# --- An object's history ---------------------------------------------------------------------


class HistoryLink(serializers.Serializer):
    id = serializers.IntegerField()
    exists = serializers.BooleanField(help_text="false: retention removed it (see cleaned_up_at)")
    cleaned_up_at = serializers.DateTimeField(allow_null=True, help_text="when cleanup removed it, if it did")
    url = serializers.CharField(allow_null=True, help_text="its page in the admin, while it exists")


class HistoryLinks(serializers.Serializer):
    queue_item = HistoryLink(allow_null=True)
    inbox_event = HistoryLink(allow_null=True, help_text="the stored webhook body, for a webhook's change")
    run = HistoryLink(allow_null=True, help_text="the pull or reconciliation run, for a pulled change")


class HistoryVersion(serializers.Serializer):
    at = serializers.DateTimeField()
    version = serializers.DateTimeField(allow_null=True, help_text="Zoho's last_modified_time")
    operation = serializers.CharField()
    changed_fields = serializers.ListField(child=serializers.CharField())
    source = serializers.CharField(help_text="webhook, pull, replay, reconcile, parent")
    queue_item_id = serializers.IntegerField(allow_null=True)
    inbox_event_id = serializers.IntegerField(allow_null=True)
    run_id = serializers.IntegerField(allow_null=True)
    actor = serializers.CharField(help_text="the operator of a replay, repair or run; blank for Zoho's own")
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)
    links = HistoryLinks()


class ObjectHistory(serializers.Serializer):
    entity = serializers.CharField()
    zoho_id = serializers.CharField()
    versions = HistoryVersion(many=True, help_text="oldest first")


class ObjectState(serializers.Serializer):
    entity = serializers.CharField()
    zoho_id = serializers.CharField()
    as_of = serializers.DateTimeField()
    state = serializers.JSONField(allow_null=True, help_text="null before its creation and after a delete")


# --- The action log ----------------------------------------------------------------------------


class OperatorActionRow(serializers.ModelSerializer):
    before = serializers.JSONField(allow_null=True, help_text="the value or state before the action")
    after = serializers.JSONField(allow_null=True, help_text="the value or state after it")

    class Meta:
        model = OperatorAction
        fields = ["at", "actor", "via", "action", "target", "before", "after"]
