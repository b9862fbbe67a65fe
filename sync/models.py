"""The sync pipeline's tables: inbox, queue, runs, logs, dead letters, cursors, audit."""

from __future__ import annotations

from datetime import datetime

from django.db import models
from django.db.models import Q
from django.utils import timezone


class InboxEvent(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        PROCESSED = "processed"  # its queue row completed or was skipped
        REJECTED = "rejected"  # unparseable, or dead-lettered

    class Source(models.TextChoices):
        """The authentication scheme that let the webhook in."""

        TOKEN = "token"
        SIGNATURE = "signature"
        ZOHO_SIGNATURE = "zoho_signature"
        STANDARD_WEBHOOKS = "standard_webhooks"

    entity = models.CharField(max_length=32)
    object_id = models.CharField(max_length=100, blank=True)
    source = models.CharField(max_length=20, choices=Source.choices)
    method = models.CharField(max_length=8)
    content_type = models.CharField(max_length=200, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    raw_body = models.BinaryField()
    idempotency_key = models.CharField(max_length=255, unique=True)
    content_hash = models.CharField(max_length=64)
    duplicate_count = models.PositiveIntegerField(default=0)
    last_duplicate_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    error = models.TextField(blank=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "tds_inbox_events"
        indexes = [
            # Retention and "webhooks stopped arriving": WHERE received_at < cutoff / ORDER BY received_at.
            models.Index(fields=["received_at"], name="tds_inbox_received"),
            # Dashboard filters: WHERE entity = %s AND status = %s.
            models.Index(fields=["entity", "status"], name="tds_inbox_entity_status"),
            # The daily-cap alert sums today's duplicates: only redelivered rows are indexed, so a
            # history of millions costs it nothing (bench/scale.py: 133 ms a round at 300,000 rows).
            models.Index(
                fields=["last_duplicate_at"],
                condition=Q(last_duplicate_at__isnull=False),
                name="tds_inbox_duplicated",
            ),
        ]

    def __str__(self) -> str:
        return f"inbox #{self.pk} {self.entity} {self.object_id or '?'} ({self.status})"

    @property
    def body_text(self) -> str:
        return bytes(self.raw_body).decode("utf-8", errors="replace")


class SyncRun(models.Model):
    class RunType(models.TextChoices):
        FULL = "full"
        INCREMENTAL = "incremental"
        STOCK = "stock"
        RECONCILIATION = "reconciliation"

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"
        DEFERRED = "deferred"

    run_type = models.CharField(max_length=20, choices=RunType.choices)
    entity = models.CharField(max_length=32)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    trigger = models.CharField(max_length=20, default="manual")  # manual, schedule, api, heal
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration = models.DurationField(null=True, blank=True)
    estimated_calls = models.PositiveIntegerField(default=0)
    calls = models.PositiveIntegerField(default=0)
    fetched = models.PositiveIntegerField(default=0)
    queued = models.PositiveIntegerField(default=0)
    applied = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    checkpoint = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    drift_report = models.JSONField(null=True, blank=True)
    # The operator (or "schedule", "heal") who asked for it: an audit row's actor for a pull's change.
    started_by = models.CharField(max_length=150, blank=True, default="", db_default="")
    # Who runs it now, and until when; a run whose heartbeat stopped is stuck (heal).
    locked_by = models.CharField(max_length=100, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "tds_sync_runs"
        # Starting a pull or a reconciliation is not a model edit (sync_zoho, reconcile, the dashboard).
        permissions = [("start_run", "Can start a pull or a reconciliation")]
        indexes = [
            # Dashboard list and overlap check: WHERE entity = %s AND status IN (...) ORDER BY created_at DESC.
            models.Index(fields=["entity", "status", "-created_at"], name="tds_run_entity_status"),
        ]

    def __str__(self) -> str:
        return f"{self.run_type} {self.entity} #{self.pk} ({self.status})"


class QueueItemQuerySet(models.QuerySet):
    def in_claim_order(self) -> QueueItemQuerySet:
        # Priority first, then the oldest due; id breaks ties by arrival. Served by tds_queue_due.
        return self.order_by("-priority", "next_attempt_at", "id")

    def due(self, now: datetime) -> QueueItemQuerySet:
        return self.filter(status__in=QueueItem.WAITING, next_attempt_at__lte=now)

    def expired_leases(self, now: datetime) -> QueueItemQuerySet:
        return self.filter(status=QueueItem.Status.PROCESSING, locked_until__lt=now)

    def leased(self, token) -> QueueItemQuerySet:
        return self.filter(status=QueueItem.Status.PROCESSING, lease_token=token)


class QueueItem(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        PROCESSING = "processing"
        COMPLETED = "completed"
        RETRY = "retry"  # waiting for next_attempt_at
        SKIPPED = "skipped"
        DEAD_LETTER = "dead_letter"

    class SkipReason(models.TextChoices):
        STALE = "stale"
        UNCHANGED = "unchanged"
        SUPERSEDED = "superseded"
        SUMMARY = "summary"

    class Operation(models.TextChoices):
        UPSERT = "upsert"
        DELETE = "delete"

    class Source(models.TextChoices):
        WEBHOOK = "webhook"
        PULL = "pull"
        REPLAY = "replay"
        RECONCILE = "reconcile"
        PARENT = "parent"  # a fetch of a parent its children have waited for too long

    WAITING = (Status.PENDING, Status.RETRY)
    FINISHED = (Status.COMPLETED, Status.SKIPPED, Status.DEAD_LETTER)

    entity = models.CharField(max_length=32)
    object_id = models.CharField(max_length=100)
    version = models.DateTimeField(null=True, blank=True)
    content_hash = models.CharField(max_length=64)
    payload = models.JSONField()
    # A list row from a pull: header fields only, no lines.
    is_summary = models.BooleanField(default=False)
    operation = models.CharField(max_length=8, choices=Operation.choices, default=Operation.UPSERT)
    source = models.CharField(max_length=10, choices=Source.choices)
    # Indexed by partial indexes below (a pull's row has no inbox event, a webhook's no run).
    sync_run = models.ForeignKey(
        SyncRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="queue_items", db_index=False
    )
    inbox_event = models.ForeignKey(
        InboxEvent, null=True, blank=True, on_delete=models.SET_NULL, related_name="queue_items", db_index=False
    )
    priority = models.SmallIntegerField(default=0)  # higher first
    # Who sent the row (back) to the queue: the operator of a replay or repair; blank for Zoho's own.
    requested_by = models.CharField(max_length=150, blank=True, default="", db_default="")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    skip_reason = models.CharField(max_length=12, choices=SkipReason.choices, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    lease_expiries = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    locked_by = models.CharField(max_length=100, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)
    lease_token = models.UUIDField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # When the current failure episode began: a dead letter's first_failed_at. Cleared by replay.
    failing_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = QueueItemQuerySet.as_manager()

    class Meta:
        db_table = "tds_sync_queue"
        # Pausing and resuming an entity's applies is not a model edit (pause_entity, resume_entity).
        permissions = [("pause_entity", "Can pause and resume applying an entity")]
        indexes = [
            # Claim: WHERE status IN ('pending','retry') AND next_attempt_at <= now
            #        ORDER BY priority DESC, next_attempt_at, id.
            models.Index(
                fields=["-priority", "next_attempt_at", "id"],
                condition=Q(status__in=["pending", "retry"]),
                name="tds_queue_due",
            ),
            # Claim within the chosen entity: the same, AND entity = %s. Without it a claim for an
            # entity with few due rows walks tds_queue_due past every row of a large backlog.
            models.Index(
                fields=["entity", "-priority", "next_attempt_at", "id"],
                condition=Q(status__in=["pending", "retry"]),
                name="tds_queue_due_entity",
            ),
            # Lease recovery: WHERE status = 'processing' AND locked_until < now.
            models.Index(fields=["locked_until"], condition=Q(status="processing"), name="tds_queue_leases"),
            # Supersede, on every enqueue: WHERE entity = %s AND object_id = %s AND status IN ('pending','retry').
            # Partial like the claim indexes, so even before ANALYZE the planner never walks a whole
            # entity's backlog through tds_queue_due_entity to find one object's rows.
            models.Index(
                fields=["entity", "object_id"],
                condition=Q(status__in=["pending", "retry"]),
                name="tds_queue_waiting_object",
            ),
            # Per-object history (admin, dashboard): WHERE entity = %s AND object_id = %s.
            models.Index(fields=["entity", "object_id", "status"], name="tds_queue_object"),
            # Dashboard counts and retention: WHERE status = %s / finished_at < cutoff.
            models.Index(fields=["status", "entity"], name="tds_queue_status_entity"),
            # Partial, like the two foreign keys' indexes: a row written three times on its way
            # (enqueued, claimed, finished) only gets entries where it has a value, which in a full
            # sync is fewer index writes for every row (a status change rewrites every index).
            models.Index(fields=["finished_at"], condition=Q(finished_at__isnull=False), name="tds_queue_finished"),
            models.Index(fields=["sync_run"], condition=Q(sync_run__isnull=False), name="tds_queue_sync_run"),
            models.Index(fields=["inbox_event"], condition=Q(inbox_event__isnull=False), name="tds_queue_inbox_event"),
            # Finish and renew a claimed batch: WHERE status = 'processing' AND lease_token = %s.
            models.Index(fields=["lease_token"], condition=Q(lease_token__isnull=False), name="tds_queue_lease_token"),
        ]

    def __str__(self) -> str:
        return f"queue #{self.pk} {self.entity} {self.object_id} ({self.status})"


class DeadLetterQuerySet(models.QuerySet):
    def unresolved(self) -> DeadLetterQuerySet:
        return self.filter(resolved_at__isnull=True)


class DeadLetter(models.Model):
    class Reason(models.TextChoices):
        VALIDATION = "validation"
        UNKNOWN_ENTITY = "unknown_entity"
        ZOHO_REJECTED = "zoho_rejected"
        RETRIES_EXHAUSTED = "retries_exhausted"
        LEASE_EXPIRED = "lease_expired"

    class Resolution(models.TextChoices):
        REPLAYED = "replayed"
        DISCARDED = "discarded"
        FIXED = "fixed"
        # Its object already holds the same or a newer version (the apply that overtook it, or heal).
        SUPERSEDED = "superseded"

    # Empty for a shape failure at ingest (no queue row was made); the inbox row is kept instead.
    queue_item = models.ForeignKey(
        QueueItem, null=True, blank=True, on_delete=models.SET_NULL, related_name="dead_letters"
    )
    inbox_event = models.ForeignKey(
        InboxEvent, null=True, blank=True, on_delete=models.SET_NULL, related_name="dead_letters"
    )
    entity = models.CharField(max_length=32)
    object_id = models.CharField(max_length=100, blank=True)
    payload = models.JSONField(null=True, blank=True)
    reason = models.CharField(max_length=20, choices=Reason.choices)
    error = models.TextField(blank=True)
    error_class = models.CharField(max_length=200, blank=True)
    traceback = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    first_failed_at = models.DateTimeField(default=timezone.now)
    last_failed_at = models.DateTimeField(default=timezone.now)
    redrive_count = models.PositiveIntegerField(default=0)
    next_redrive_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.CharField(max_length=150, blank=True)  # a username, "heal" or "cli"
    resolution = models.CharField(max_length=12, choices=Resolution.choices, blank=True)

    objects = DeadLetterQuerySet.as_manager()

    class Meta:
        db_table = "tds_dead_letter_queue"
        # A replay or a discard moves a dead letter through the queue's own functions, never an edit.
        permissions = [
            ("replay_deadletter", "Can replay a dead letter"),
            ("discard_deadletter", "Can discard a dead letter or mark it fixed"),
        ]
        indexes = [
            # Dashboard and alerts: WHERE resolved_at IS NULL [AND entity/reason] ORDER BY last_failed_at.
            models.Index(
                fields=["entity", "reason", "last_failed_at"],
                condition=Q(resolved_at__isnull=True),
                name="tds_dlq_open",
            ),
            # /metrics, the dashboard and the DLQ alert: open dead letters counted by reason, an
            # index-only scan instead of reading every open row (bench/console.py, 100,000 rows).
            models.Index(fields=["reason"], condition=Q(resolved_at__isnull=True), name="tds_dlq_open_reason"),
            # Every applied batch looks for open dead letters its rows supersede (queue.resolve_superseded):
            # by object, not a scan of every open dead letter of the entity.
            models.Index(
                fields=["entity", "object_id"], condition=Q(resolved_at__isnull=True), name="tds_dlq_open_object"
            ),
        ]

    def __str__(self) -> str:
        return f"dead letter #{self.pk} {self.entity} {self.object_id} ({self.reason})"


class SyncLog(models.Model):
    class Level(models.TextChoices):
        DEBUG = "debug"
        INFO = "info"
        WARNING = "warning"
        ERROR = "error"

    sync_run = models.ForeignKey(SyncRun, null=True, blank=True, on_delete=models.CASCADE, related_name="logs")
    queue_item = models.ForeignKey(QueueItem, null=True, blank=True, on_delete=models.CASCADE, related_name="logs")
    level = models.CharField(max_length=8, choices=Level.choices, default=Level.INFO)
    message = models.TextField()
    context = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "tds_sync_logs"
        indexes = [
            # Retention: WHERE at < cutoff.
            models.Index(fields=["at"], name="tds_log_at"),
        ]

    def __str__(self) -> str:
        return f"[{self.level}] {self.message[:80]}"


class SyncCursor(models.Model):
    entity = models.CharField(max_length=32)
    run_type = models.CharField(max_length=20, choices=SyncRun.RunType.choices)
    # Zoho last_modified_time of the newest record a finished run saw.
    watermark = models.DateTimeField(null=True, blank=True)
    checkpoint = models.JSONField(default=dict, blank=True)
    last_run = models.ForeignKey(SyncRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "tds_sync_cursors"
        constraints = [models.UniqueConstraint(fields=["entity", "run_type"], name="tds_cursor_entity_run_type")]

    def __str__(self) -> str:
        return f"{self.entity}/{self.run_type} @ {self.watermark}"


class AuditTrail(models.Model):
    """Immutable: one row per applied change. On PostgreSQL a trigger refuses UPDATE and DELETE.

    The one exception is erasure (sync.redaction): inside its own transaction it may blank personal
    values in `before` and `after`, and it writes a `redact` row naming the fields, never the values.
    """

    class Operation(models.TextChoices):
        CREATE = "create"
        UPDATE = "update"
        DELETE = "delete"
        REDACT = "redact"

    entity = models.CharField(max_length=32)
    object_id = models.CharField(max_length=100)
    operation = models.CharField(max_length=8, choices=Operation.choices)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    changed_fields = models.JSONField(default=list, blank=True)
    version = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=10, blank=True)
    # Plain ids, no foreign keys: retention may delete the queue and inbox rows.
    queue_item_id = models.BigIntegerField(null=True, blank=True)
    inbox_event_id = models.BigIntegerField(null=True, blank=True)
    run_id = models.BigIntegerField(null=True, blank=True)
    # Who caused the change: the operator of a replay, repair or run; blank for Zoho's own changes.
    actor = models.CharField(max_length=150, blank=True, default="", db_default="")
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "tds_audit_trail"
        indexes = [
            # Object history: WHERE entity = %s AND object_id = %s ORDER BY at.
            models.Index(fields=["entity", "object_id", "at"], name="tds_audit_object"),
            # Freshness and throughput: WHERE at >= %s.
            models.Index(fields=["at"], name="tds_audit_at"),
        ]

    def __str__(self) -> str:
        return f"{self.operation} {self.entity} {self.object_id} @ {self.at:%Y-%m-%d %H:%M:%S}"


class CleanupSweep(models.Model):
    """One cleanup's deletions from one table: the ids it removed lie between first_id and last_id.

    The audit trail links queue and inbox rows by plain id; when such a row is gone, this says it
    was cleaned up and when, without keeping a row per deleted id.
    """

    target = models.CharField(max_length=32)  # sync.retention's Target.name: "queue", "inbox"…
    first_id = models.BigIntegerField()
    last_id = models.BigIntegerField()
    rows = models.PositiveBigIntegerField(default=0)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "tds_cleanup_sweeps"
        indexes = [
            # "Which sweep removed inbox #N": WHERE target = %s AND first_id <= N AND last_id >= N ORDER BY at.
            models.Index(fields=["target", "first_id"], name="tds_sweep_target_first"),
        ]

    def __str__(self) -> str:
        return f"cleanup of {self.target} #{self.first_id}–#{self.last_id} on {self.at:%Y-%m-%d %H:%M}"

    @classmethod
    def of(cls, target: str, pk: int) -> CleanupSweep | None:
        """The first sweep whose range holds `pk`: the row is gone and this is when it went.

        A row kept back by a sweep (an open dead letter still needed it) and removed by a later
        one lies in both ranges; it is rare, and the earlier date is then the one shown.
        """
        return cls.objects.filter(target=target, first_id__lte=pk, last_id__gte=pk).order_by("at", "pk").first()


class WorkerHeartbeat(models.Model):
    """A drainer's sign of life, so alerts and `heal` can tell a dead worker from an idle one."""

    worker_id = models.CharField(max_length=100, unique=True)
    hostname = models.CharField(max_length=200)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    rows_processed = models.PositiveBigIntegerField(default=0)

    class Meta:
        db_table = "tds_worker_heartbeats"

    def __str__(self) -> str:
        return f"{self.worker_id} seen {self.last_seen_at:%H:%M:%S}"


class WebhookAuthFailures(models.Model):
    """Failed webhook authentications from one address in the current window (webhook_auth.py):
    one count for every process, so the 429 comes at the configured limit however many serve."""

    address = models.CharField(max_length=64, primary_key=True)
    window_started_at = models.DateTimeField()
    failures = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "tds_webhook_auth_failures"

    def __str__(self) -> str:
        return f"{self.address}: {self.failures} since {self.window_started_at:%H:%M:%S}"


class SchemaDrift(models.Model):
    """A field Zoho sends that the mapping does not read, recorded the first time it is seen."""

    entity = models.CharField(max_length=32)
    # Dotted; a line's field as `line_items[].field`.
    path = models.CharField(max_length=255)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    count = models.PositiveBigIntegerField(default=1)
    example_object_id = models.CharField(max_length=100, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.CharField(max_length=150, blank=True)

    class Meta:
        db_table = "tds_schema_drift"
        ordering = ["entity", "path"]
        constraints = [models.UniqueConstraint(fields=["entity", "path"], name="tds_schema_drift_field")]

    def __str__(self) -> str:
        return f"{self.entity}: {self.path}"


class ParentWait(models.Model):
    """A parent that ERP rows reference by Zoho id and that is not stored yet.

    Written when a child is applied without its parent, deleted by the parent's own apply after it
    fills the children's references; only the tables named in `child_tables` are touched then.
    """

    parent_entity = models.CharField(max_length=32)
    parent_id = models.CharField(max_length=100)
    # db_table of each child table holding a reference to it.
    child_tables = models.JSONField(default=list)
    # One child that waits, for the operator's "why".
    example_child = models.CharField(max_length=150, blank=True)
    since = models.DateTimeField(default=timezone.now)
    # The one budgeted fetch from Zoho once `parent_wait_minutes` passed, and what it found.
    fetch_queued_at = models.DateTimeField(null=True, blank=True)
    missing_in_zoho_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "tds_parent_waits"
        constraints = [models.UniqueConstraint(fields=["parent_entity", "parent_id"], name="tds_parent_wait_parent")]
        indexes = [models.Index(fields=["since"], name="tds_parent_wait_since")]

    def __str__(self) -> str:
        return f"{self.parent_entity} {self.parent_id} awaited since {self.since:%Y-%m-%d %H:%M}"

    def explained(self) -> str:
        """For an operator asking why a reference is empty."""
        text = f"{self} by {', '.join(self.child_tables)}"
        if self.missing_in_zoho_at:
            return f"{text}; Zoho does not have it (asked {self.missing_in_zoho_at:%Y-%m-%d %H:%M})"
        if self.fetch_queued_at:
            return f"{text}; fetched from Zoho at {self.fetch_queued_at:%Y-%m-%d %H:%M}, waiting to be applied"
        return f"{text}; heal fetches it from Zoho once it has waited parent_wait_minutes"


class ErasedContact(models.Model):
    """A contact whose personal data was erased; later webhooks about it are redacted on arrival."""

    zoho_id = models.CharField(max_length=100, unique=True)
    requested_by = models.CharField(max_length=150)
    at = models.DateTimeField(default=timezone.now)
    # The field names erased (never their values).
    fields = models.JSONField(default=list)

    class Meta:
        db_table = "tds_erasure_list"

    def __str__(self) -> str:
        return f"contact {self.zoho_id} erased {self.at:%Y-%m-%d}"
