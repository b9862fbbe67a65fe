from collections.abc import Callable

from django.contrib import admin, messages
from django.utils import timezone
from django_q.admin import ScheduleAdmin
from django_q.models import Schedule

from sync import queue, schedules
from sync.models import AuditTrail, DeadLetter, InboxEvent, QueueItem, SyncCursor, SyncLog, SyncRun, WorkerHeartbeat
from tdscore.admin import ReadOnlyAdmin


class HasErrorFilter(admin.SimpleListFilter):
    title = "has error"
    parameter_name = "has_error"
    field = "last_error"

    def lookups(self, request, model_admin):
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(**{self.field: ""})
        if self.value() == "no":
            return queryset.filter(**{self.field: ""})
        return queryset


@admin.register(InboxEvent)
class InboxEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "entity", "object_id", "status", "source", "method", "duplicate_count", "received_at"]
    list_filter = ["status", "entity", "source"]
    search_fields = ["object_id", "idempotency_key", "content_hash"]
    date_hierarchy = "received_at"
    exclude = ["raw_body"]
    readonly_fields = ["body_text"]


@admin.register(QueueItem)
class QueueItemAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "entity",
        "object_id",
        "operation",
        "status",
        "skip_reason",
        "source",
        "attempts",
        "version",
        "created_at",
    ]
    list_filter = ["status", "entity", "source", "operation", "skip_reason", HasErrorFilter]
    list_select_related = ["inbox_event", "sync_run"]
    search_fields = ["object_id"]
    raw_id_fields = ["inbox_event", "sync_run"]
    date_hierarchy = "created_at"
    actions = ["pause_entities", "resume_entities"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Pause the entities of the selected rows (queued, not applied)")
    def pause_entities(self, request, queryset):
        paused = queue.pause(_entities(queryset), by=request.user)
        self.message_user(request, f"Paused now: {', '.join(paused) or 'none'}.")

    @admin.action(description="Resume the entities of the selected rows")
    def resume_entities(self, request, queryset):
        paused = queue.resume(_entities(queryset), by=request.user)
        self.message_user(request, f"Paused now: {', '.join(paused) or 'none'}.")


def _entities(queryset) -> list[str]:
    return sorted(set(queryset.values_list("entity", flat=True)))


class DeadLetterHasErrorFilter(HasErrorFilter):
    field = "error"


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "entity",
        "object_id",
        "reason",
        "error_class",
        "attempts",
        "last_failed_at",
        "resolution",
        "resolved_at",
    ]
    list_filter = [
        "reason",
        "entity",
        "resolution",
        ("resolved_at", admin.EmptyFieldListFilter),
        DeadLetterHasErrorFilter,
    ]
    list_select_related = ["queue_item", "inbox_event"]
    search_fields = ["object_id", "error"]
    raw_id_fields = ["queue_item", "inbox_event"]
    date_hierarchy = "last_failed_at"
    actions = ["replay_selected", "discard_selected", "mark_fixed_selected"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Replay the selected dead letters")
    def replay_selected(self, request, queryset):
        self._resolve_each(request, queryset, queue.replay, "replayed")

    @admin.action(description="Discard the selected dead letters")
    def discard_selected(self, request, queryset):
        self._resolve_each(request, queryset, queue.discard, "discarded")

    @admin.action(description="Mark the selected dead letters fixed")
    def mark_fixed_selected(self, request, queryset):
        self._resolve_each(request, queryset, queue.mark_fixed, "marked fixed")

    def _resolve_each(self, request, queryset, action: Callable, done: str) -> None:
        """One row at a time: a row that cannot take the action is reported, the others go on."""
        now, ok, problems = timezone.now(), 0, []
        for dead_letter in queryset.order_by("pk"):
            try:
                action(dead_letter, by=request.user.get_username(), now=now)
            except queue.DeadLetterError as exc:
                problems.append(str(exc))
            else:
                ok += 1
        if ok:
            self.message_user(request, f"{ok} dead letter(s) {done}.", messages.SUCCESS)
        for problem in problems:
            self.message_user(request, problem, messages.ERROR)


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "run_type",
        "entity",
        "status",
        "started_at",
        "duration",
        "calls",
        "fetched",
        "queued",
        "failed",
    ]
    list_filter = ["status", "run_type", "entity"]
    date_hierarchy = "created_at"


@admin.register(SyncLog)
class SyncLogAdmin(ReadOnlyAdmin):
    list_display = ["at", "level", "message", "sync_run", "queue_item"]
    list_filter = ["level"]
    list_select_related = ["sync_run", "queue_item"]
    raw_id_fields = ["sync_run", "queue_item"]
    search_fields = ["message"]
    date_hierarchy = "at"


@admin.register(SyncCursor)
class SyncCursorAdmin(admin.ModelAdmin):
    list_display = ["entity", "run_type", "watermark", "last_run_at", "last_success_at"]
    list_filter = ["run_type", "entity"]
    raw_id_fields = ["last_run"]


@admin.register(AuditTrail)
class AuditTrailAdmin(ReadOnlyAdmin):
    list_display = ["at", "entity", "object_id", "operation", "version", "source", "queue_item_id"]
    list_filter = ["operation", "entity", "source"]
    search_fields = ["object_id"]
    date_hierarchy = "at"


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(ReadOnlyAdmin):
    list_display = ["worker_id", "hostname", "pid", "started_at", "last_seen_at", "rows_processed"]


# --- django-q2's schedules: which ones the Zoho budget stretched, and why (sync.schedules) ---------


class FittedScheduleAdmin(ScheduleAdmin):
    def changelist_view(self, request, extra_context=None):
        for stretch in schedules.plan().stretches:
            messages.warning(request, stretch.line())
        return super().changelist_view(request, extra_context)


admin.site.unregister(Schedule)
admin.site.register(Schedule, FittedScheduleAdmin)
