"""The pipeline's tables in the console: read-only pages linked to each other, and the actions that
move rows through the queue's state machine (the same functions as the CLI and the dashboard)."""

import functools
from collections.abc import Callable

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import Truncator
from django.views.decorators.http import require_http_methods
from django_q.admin import FailAdmin, ScheduleAdmin, TaskAdmin, resubmit_task
from django_q.models import Failure, Schedule, Success

from erp import admin as erp_admin
from sync import entities, history, parents, queue, redaction, replay_preview, schedules, schema_drift
from sync.models import (
    AuditTrail,
    DeadLetter,
    ErasedContact,
    InboxEvent,
    ParentWait,
    QueueItem,
    SchemaDrift,
    SyncCursor,
    SyncLog,
    SyncRun,
    WorkerHeartbeat,
)
from tdscore.actions import Actor, Via
from tdscore.admin import (
    ReadOnlyAdmin,
    change_link,
    changelist_link,
    link_list,
    may,
    pretty_json,
    pretty_text,
    shown_as,
)
from tdscore.permissions import Perm, allows


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


class ErrorFilter(HasErrorFilter):
    field = "error"


def _short(text: str, width: int = 60) -> str:
    return Truncator(text.splitlines()[0] if text else "").chars(width) or "—"


# The whole text on hover, to this length: the detail page shows all of it.
HOVER_CHARS = 2000


def _shortened(text: str, width: int = 90) -> str:
    """A list's cell: the first line cut to `width`, the whole text in its title (shown on hover)."""
    if not text:
        return "—"
    return format_html('<span title="{}">{}</span>', Truncator(text).chars(HOVER_CHARS), _short(text, width))


def _audit_rows(**filters) -> QuerySet:
    return AuditTrail.objects.filter(**filters).order_by("at")[:20]


def _audit_links(**filters) -> str:
    rows = list(_audit_rows(**filters))
    if not rows:
        return "—"
    return format_html(
        "{}<br>{}",
        link_list(rows),
        changelist_link(AuditTrail, "all audit rows of this object →", **filters),
    )


def _history_link(obj) -> str:
    if not obj.object_id:
        return "—"
    return format_html(
        "{} · {} · {} · {}",
        _object_history_link(obj.entity, obj.object_id, "every version"),
        changelist_link(QueueItem, "queue rows", entity=obj.entity, object_id=obj.object_id),
        changelist_link(DeadLetter, "dead letters", entity=obj.entity, object_id=obj.object_id),
        changelist_link(AuditTrail, "audit trail", entity=obj.entity, object_id=obj.object_id),
    )


def _object_history_link(entity: str, object_id: str, text: str) -> str:
    url = reverse("admin:sync_audittrail_object", args=[entity, object_id])
    return format_html('<a href="{}">{}</a>', url, text)


# The admin page of each row an audit row links to (sync.history.Link.kind).
LINKED_PAGES = {
    "queue": "admin:sync_queueitem_change",
    "inbox": "admin:sync_inboxevent_change",
    "run": "admin:sync_syncrun_change",
}


def _linked(link: history.Link | None, text: str = "") -> str:
    """A link while the row exists; once cleanup removed it, when it did."""
    if link is None:
        return ""
    if not link.exists:
        return str(link)
    return format_html('<a href="{}">{}</a>', reverse(LINKED_PAGES[link.kind], args=[link.pk]), text or str(link))


def _provenance(version: history.Version) -> str:
    """Queue row → its webhook body (inbox row) or its run, and who started it."""
    parts = [
        _linked(version.queue, f"queue row #{version.row.queue_item_id}"),
        _linked(version.inbox, f"webhook body (inbox #{version.row.inbox_event_id})"),
        _linked(version.run, f"run #{version.row.run_id}"),
    ]
    shown = format_html_join(" → ", "{}", ((part,) for part in parts if part)) or "—"
    if version.row.actor:
        return format_html("{} · by {}", shown, version.row.actor)
    return shown


def _record_key(record) -> tuple[str, str] | None:
    entity = history.entity_of(record)
    return (entity.slug, history.object_id_of(entity, record)) if entity else None


def written_by(record) -> str:
    """The ERP row's current version: its audit row, then where that change came from."""
    key = _record_key(record)
    version = history.written_by(*key) if key else None
    if version is None:
        return "—"
    row = version.row
    audit = change_link(row, f"audit #{row.pk}: {row.operation} ({row.source}) at {row.at:%Y-%m-%d %H:%M:%S}")
    return format_html("{} → {}", audit, _provenance(version))


def object_history(record) -> str:
    key = _record_key(record)
    return _object_history_link(*key, "every version: what changed, when, from where, who →") if key else "—"


def references_awaited(record) -> str:
    """Why a reference of this row is empty: its parent is not stored yet (and what heal did about it)."""
    link = parents.links().get(record._meta.db_table)
    parent_id = getattr(record, link.id_field) if link else ""
    if not parent_id or getattr(record, f"{link.ref}_id") is not None:
        return "—"
    wait = ParentWait.objects.filter(parent_entity=link.parent, parent_id=parent_id).first()
    if wait is None:
        # A contact awaited as a customer that landed as a vendor (or the reverse) answered its wait.
        return f"{link.parent} {parent_id} is not stored, nor awaited: Zoho files that contact as the other type"
    return wait.explained()


erp_admin.ROW_PANELS.update(
    written_by=("current version written by", written_by),
    object_history=("sync history", object_history),
    references_awaited=("parent awaited", references_awaited),
)


@admin.register(InboxEvent)
class InboxEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "entity", "object_id", "status", "source", "duplicate_count", "received_at"]
    list_filter = ["status", "entity", "source", ErrorFilter]
    search_fields = ["object_id", "idempotency_key", "content_hash"]
    date_hierarchy = "received_at"
    fields = [
        ("entity", "object_id", "status"),
        ("source", "method", "content_type"),
        ("received_at", "remote_addr"),
        ("duplicate_count", "last_duplicate_at"),
        "idempotency_key",
        "content_hash",
        "error",
        "queue_rows",
        "dead_letters",
        "audit_rows",
        "history",
        "headers_shown",
        "body_shown",
    ]
    readonly_fields = ["queue_rows", "dead_letters", "audit_rows", "history", "headers_shown", "body_shown"]

    headers_shown = shown_as(pretty_json, "headers", "headers")

    @admin.display(description="body")
    def body_shown(self, obj: InboxEvent) -> str:
        return pretty_text(obj.body_text)

    @admin.display(description="queue rows")
    def queue_rows(self, obj: InboxEvent) -> str:
        return link_list(obj.queue_items.order_by("pk"))

    @admin.display(description="dead letters")
    def dead_letters(self, obj: InboxEvent) -> str:
        return link_list(obj.dead_letters.order_by("pk"))

    @admin.display(description="audit rows")
    def audit_rows(self, obj: InboxEvent) -> str:
        return _audit_links(inbox_event_id=obj.pk)

    @admin.display(description="this object's history")
    def history(self, obj: InboxEvent) -> str:
        return _history_link(obj)


@admin.register(QueueItem)
class QueueItemAdmin(ReadOnlyAdmin):
    list_display = ["id", "entity", "object_id", "operation", "state", "source", "attempts", "created_at", "error"]
    list_filter = ["status", "entity", "source", "operation", "skip_reason", HasErrorFilter]
    list_select_related = ["inbox_event", "sync_run"]
    search_fields = ["object_id"]
    date_hierarchy = "created_at"
    fields = [
        ("entity", "object_id", "operation"),
        ("status", "skip_reason", "source"),
        ("version", "is_summary", "priority"),
        ("attempts", "lease_expiries", "next_attempt_at"),
        ("locked_by", "locked_until", "lease_token"),
        ("created_at", "updated_at", "finished_at"),
        "failing_since",
        "inbox_event",
        "sync_run",
        "dead_letters",
        "audit_rows",
        "history",
        "last_error_shown",
        "payload_shown",
        "content_hash",
    ]
    readonly_fields = ["dead_letters", "audit_rows", "history", "last_error_shown", "payload_shown"]
    actions = ["requeue_selected", "pause_entities", "resume_entities"]
    has_replay_permission = may(Perm.REPLAY_DEADLETTER)
    has_pause_permission = may(Perm.PAUSE_ENTITY)

    payload_shown = shown_as(pretty_json, "payload", "payload")
    last_error_shown = shown_as(pretty_text, "last_error", "last error")

    @admin.display(description="status", ordering="status")
    def state(self, obj: QueueItem) -> str:
        return f"{obj.status} ({obj.skip_reason})" if obj.skip_reason else obj.status

    @admin.display(description="last error")
    def error(self, obj: QueueItem) -> str:
        return _shortened(obj.last_error)

    @admin.display(description="dead letters")
    def dead_letters(self, obj: QueueItem) -> str:
        return link_list(obj.dead_letters.order_by("pk"))

    @admin.display(description="audit rows")
    def audit_rows(self, obj: QueueItem) -> str:
        return _audit_links(queue_item_id=obj.pk)

    @admin.display(description="this object's history")
    def history(self, obj: QueueItem) -> str:
        return _history_link(obj)

    @admin.action(
        description="Requeue the selected dead-lettered rows (replays their dead letters)", permissions=["replay"]
    )
    def requeue_selected(self, request, queryset):
        # A row leaves dead_letter only by replaying its open dead letter: that resets it, logs who
        # did it and resolves the episode, exactly as the DLQ's replay does.
        open_letters = DeadLetter.objects.unresolved().filter(queue_item__in=queryset)
        stuck = queryset.exclude(pk__in=open_letters.values("queue_item_id")).order_by("pk")
        problems = [
            f"queue row #{item.pk} is {item.status} with no open dead letter: only a dead-lettered row can be requeued"
            for item in stuck
        ]
        if request.POST.get("post") != "yes":
            return _confirm_replay(self, request, open_letters, action="requeue_selected", selected=queryset)
        _resolve_each(self, request, open_letters, functools.partial(queue.replay, requeue=True), "requeued", problems)

    def get_urls(self):
        page = self.admin_site.admin_view(require_http_methods(["GET", "POST"])(self.entities_view))
        return [path("entities/", page, name="sync_queueitem_entities"), *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        extra = {"held_rows": queue.held_rows(), **(extra_context or {})}
        return super().changelist_view(request, extra_context=extra)

    def entities_view(self, request):
        """Every entity, paused or applied, with a Pause or Resume button: no queue row to select first."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        may_pause = allows(request.user, Perm.PAUSE_ENTITY)
        if request.method == "POST":
            if not may_pause:
                raise PermissionDenied("Pausing and resuming an entity needs the permission to pause entities.")
            slug, verb = request.POST.get("entity", ""), request.POST.get("action", "")
            if slug not in entities.ENTITIES or verb not in ("pause", "resume"):
                self.message_user(request, f"Nothing changed: cannot {verb or '?'} {slug or '?'}.", messages.ERROR)
            else:
                paused = (queue.pause if verb == "pause" else queue.resume)([slug], actor=_actor(request))
                self.message_user(
                    request,
                    f"{verb.capitalize()}d {slug}. Paused now: {', '.join(paused) or 'none'}.",
                    messages.SUCCESS,
                )
            return HttpResponseRedirect(reverse("admin:sync_queueitem_entities"))
        held = queue.held_rows()
        context = {
            **self.admin_site.each_context(request),
            "title": "Entities: paused or applied",
            "opts": self.model._meta,
            "rows": [(slug, slug in held, held.get(slug, 0)) for slug in entities.ENTITIES],
            "may_pause": may_pause,
        }
        return TemplateResponse(request, "admin/sync/queueitem/entities.html", context)

    @admin.action(description="Pause the entities of the selected rows (queued, not applied)", permissions=["pause"])
    def pause_entities(self, request, queryset):
        paused = queue.pause(_entities(queryset), actor=_actor(request))
        self.message_user(request, f"Paused now: {', '.join(paused) or 'none'}.")

    @admin.action(description="Resume the entities of the selected rows", permissions=["pause"])
    def resume_entities(self, request, queryset):
        paused = queue.resume(_entities(queryset), actor=_actor(request))
        self.message_user(request, f"Paused now: {', '.join(paused) or 'none'}.")


def _actor(request) -> Actor:
    return Actor.of_user(request.user, Via.ADMIN)


def _entities(queryset) -> list[str]:
    return sorted(set(queryset.values_list("entity", flat=True)))


def _resolve_each(
    model_admin: admin.ModelAdmin, request, dead_letters, action: Callable, done: str, problems=()
) -> None:
    """One dead letter at a time: one that cannot take the action is reported, the others go on."""
    now, ok, problems = timezone.now(), 0, list(problems)
    for dead_letter in dead_letters.order_by("pk"):
        try:
            action(dead_letter, actor=_actor(request), now=now)
        except queue.DeadLetterError as exc:
            problems.append(str(exc))
        else:
            ok += 1
    if ok:
        model_admin.message_user(request, f"{ok} dead letter(s) {done}.", messages.SUCCESS)
    for problem in problems:
        model_admin.message_user(request, problem, messages.ERROR)


def _confirm_replay(model_admin: admin.ModelAdmin, request, dead_letters, *, action: str, selected) -> TemplateResponse:
    """The page between choosing a replay and doing it: what each would do to the ERP, and a button
    posting the same action and selection back with `post=yes`."""
    previews = replay_preview.preview(dead_letters, now=timezone.now())
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Replay these dead letters?",
        "opts": model_admin.model._meta,
        "previews": previews,
        "replayable": sum(p.replayable for p in previews),
        "action": action,
        "selected": sorted(selected.values_list("pk", flat=True)),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/sync/deadletter/replay_preview.html", context)


class ResolvedFilter(admin.SimpleListFilter):
    title = "resolved"
    parameter_name = "resolved"

    def lookups(self, request, model_admin):
        return [("no", "Open"), ("yes", "Resolved")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(resolved_at__isnull=self.value() == "no")
        return queryset


@admin.register(DeadLetter)
class DeadLetterAdmin(ReadOnlyAdmin):
    list_display = ["id", "entity", "object_id", "reason", "error_summary", "attempts", "last_failed_at", "state"]
    list_filter = [ResolvedFilter, "reason", "entity", "resolution", "error_class", ErrorFilter]
    list_select_related = ["queue_item", "inbox_event"]
    search_fields = ["object_id", "error"]
    date_hierarchy = "last_failed_at"
    fields = [
        ("entity", "object_id", "reason"),
        ("error_class", "attempts", "redrive_count"),
        ("first_failed_at", "last_failed_at", "next_redrive_at"),
        ("resolution", "resolved_by", "resolved_at"),
        "queue_item",
        "inbox_event",
        "audit_rows",
        "history",
        "error_shown",
        "payload_shown",
        "traceback_shown",
    ]
    readonly_fields = ["audit_rows", "history", "error_shown", "payload_shown", "traceback_shown"]
    actions = ["replay_selected", "discard_selected", "mark_fixed_selected"]
    has_replay_permission = may(Perm.REPLAY_DEADLETTER)
    has_discard_permission = may(Perm.DISCARD_DEADLETTER)

    payload_shown = shown_as(pretty_json, "payload", "payload")
    error_shown = shown_as(pretty_text, "error", "error")
    traceback_shown = shown_as(pretty_text, "traceback", "traceback")

    @admin.display(description="error")
    def error_summary(self, obj: DeadLetter) -> str:
        return _shortened(f"{obj.error_class}: {obj.error}" if obj.error_class else obj.error)

    @admin.display(description="state", ordering="resolved_at")
    def state(self, obj: DeadLetter) -> str:
        if obj.resolved_at is None:
            return mark_safe('<strong class="tds-open">open</strong>')
        return f"{obj.resolution} by {obj.resolved_by or '?'}"

    @admin.display(description="audit rows of its queue row")
    def audit_rows(self, obj: DeadLetter) -> str:
        return _audit_links(queue_item_id=obj.queue_item_id) if obj.queue_item_id else "—"

    @admin.display(description="this object's history")
    def history(self, obj: DeadLetter) -> str:
        return _history_link(obj)

    @admin.action(description="Replay the selected dead letters", permissions=["replay"])
    def replay_selected(self, request, queryset):
        # As Django's delete confirmation: nothing is written until the operator has seen what each
        # replay would do to the ERP and confirmed (the page posts back with `post=yes`).
        if request.POST.get("post") != "yes":
            return _confirm_replay(self, request, queryset, action="replay_selected", selected=queryset)
        _resolve_each(self, request, queryset, queue.replay, "replayed")

    @admin.action(description="Discard the selected dead letters", permissions=["discard"])
    def discard_selected(self, request, queryset):
        _resolve_each(self, request, queryset, queue.discard, "discarded")

    @admin.action(description="Mark the selected dead letters fixed", permissions=["discard"])
    def mark_fixed_selected(self, request, queryset):
        _resolve_each(self, request, queryset, queue.mark_fixed, "marked fixed")


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyAdmin):
    list_display = ["id", "run_type", "entity", "status", "started_at", "duration", "calls", "fetched", "queued"]
    list_filter = ["status", "run_type", "entity", ErrorFilter]
    date_hierarchy = "created_at"
    exclude = ["checkpoint", "drift_report"]
    readonly_fields = ["queue_rows", "checkpoint_shown", "drift_report_shown"]

    checkpoint_shown = shown_as(pretty_json, "checkpoint", "checkpoint")
    drift_report_shown = shown_as(pretty_json, "drift_report", "drift report")

    @admin.display(description="queue rows")
    def queue_rows(self, obj: SyncRun) -> str:
        return changelist_link(QueueItem, "queue rows of this run →", sync_run=obj.pk)


@admin.register(SyncLog)
class SyncLogAdmin(ReadOnlyAdmin):
    list_display = ["at", "level", "summary", "sync_run", "queue_item"]
    list_filter = ["level"]
    list_select_related = ["sync_run", "queue_item"]
    search_fields = ["message"]
    date_hierarchy = "at"
    exclude = ["context"]
    readonly_fields = ["context_shown"]

    context_shown = shown_as(pretty_json, "context", "context")

    @admin.display(description="message")
    def summary(self, obj: SyncLog) -> str:
        return _short(obj.message, 80)


@admin.register(SyncCursor)
class SyncCursorAdmin(admin.ModelAdmin):
    list_display = ["entity", "run_type", "watermark", "last_run_at", "last_success_at"]
    list_filter = ["run_type", "entity"]
    raw_id_fields = ["last_run"]


@admin.register(AuditTrail)
class AuditTrailAdmin(ReadOnlyAdmin):
    list_display = ["at", "entity", "object_id", "operation", "fields_changed", "version", "source", "queue_item_id"]
    list_filter = ["operation", "entity", "source"]
    search_fields = ["object_id"]
    date_hierarchy = "at"
    fields = [
        ("entity", "object_id", "operation"),
        ("version", "source", "at"),
        ("run_id", "actor"),
        "provenance",
        "queue_row",
        "inbox_row",
        "history",
        "diff",
        "before_shown",
        "after_shown",
    ]
    readonly_fields = ["provenance", "queue_row", "inbox_row", "history", "diff", "before_shown", "after_shown"]

    before_shown = shown_as(pretty_json, "before", "before")
    after_shown = shown_as(pretty_json, "after", "after")

    @admin.display(description="changed")
    def fields_changed(self, obj: AuditTrail) -> str:
        return Truncator(", ".join(obj.changed_fields or [])).chars(40) or "—"

    @admin.display(description="queue row", ordering="queue_item_id")
    def queue_row(self, obj: AuditTrail) -> str:
        return _linked(history.Version.of(obj).queue) or "—"

    @admin.display(description="inbox event")
    def inbox_row(self, obj: AuditTrail) -> str:
        return _linked(history.Version.of(obj).inbox, f"webhook body (inbox #{obj.inbox_event_id})") or "—"

    @admin.display(description="written by")
    def provenance(self, obj: AuditTrail) -> str:
        return _provenance(history.Version.of(obj))

    def get_urls(self):
        page = self.admin_site.admin_view(require_http_methods(["GET"])(self.object_view))
        return [path("object/<str:entity>/<path:object_id>/", page, name="sync_audittrail_object"), *super().get_urls()]

    def object_view(self, request, entity: str, object_id: str):
        """Every version of one object, oldest first: what changed, when, from where, who."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        versions = history.versions(entity, object_id)
        context = {
            **self.admin_site.each_context(request),
            "title": f"History of {entity} {object_id}",
            "opts": self.model._meta,
            "entity": entity,
            "object_id": object_id,
            "versions": [(v.row, self.diff(v.row), _provenance(v)) for v in reversed(versions)],
        }
        return TemplateResponse(request, "admin/sync/audittrail/object_history.html", context)

    @admin.display(description="this object's history")
    def history(self, obj: AuditTrail) -> str:
        return _history_link(obj)

    @admin.display(description="changes")
    def diff(self, obj: AuditTrail) -> str:
        before, after = obj.before or {}, obj.after or {}
        names = obj.changed_fields or sorted(set(before) | set(after))
        if not names:
            return "—"
        rows = format_html_join(
            "",
            "<tr><th>{}</th><td>{}</td><td>{}</td></tr>",
            ((name, pretty_json(before.get(name)), pretty_json(after.get(name))) for name in names),
        )
        return format_html(
            '<table class="tds-diff"><thead><tr><th>field</th><th>before</th><th>after</th></tr></thead>'
            "<tbody>{}</tbody></table>",
            rows,
        )


class MissingInZohoFilter(HasErrorFilter):
    title = "missing in Zoho"
    parameter_name = "missing_in_zoho"

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(missing_in_zoho_at__isnull=self.value() == "no")
        return queryset


@admin.register(ParentWait)
class ParentWaitAdmin(ReadOnlyAdmin):
    """Parents that stored rows reference and that are not stored yet: why a reference is empty."""

    list_display = [
        "parent_entity",
        "parent_id",
        "tables",
        "example_child",
        "since",
        "fetch_queued_at",
        "missing_in_zoho_at",
    ]
    list_filter = ["parent_entity", MissingInZohoFilter]
    search_fields = ["parent_id", "example_child"]
    date_hierarchy = "since"

    @admin.display(description="waiting tables")
    def tables(self, obj: ParentWait) -> str:
        return ", ".join(obj.child_tables)


class AcknowledgedFilter(admin.SimpleListFilter):
    title = "acknowledged"
    parameter_name = "acknowledged"

    def lookups(self, request, model_admin):
        return [("no", "Not yet"), ("yes", "Acknowledged")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(acknowledged_at__isnull=self.value() == "no")
        return queryset


@admin.register(SchemaDrift)
class SchemaDriftAdmin(ReadOnlyAdmin):
    """Fields Zoho sends that the mapping does not read: map them (a column, then `rebuild_erp`) or
    list them as unread on purpose (sync.handlers.unread), then acknowledge."""

    list_display = ["entity", "path", "count", "first_seen", "last_seen", "example", "state"]
    list_filter = [AcknowledgedFilter, "entity"]
    search_fields = ["path", "example_object_id"]
    date_hierarchy = "first_seen"
    actions = ["acknowledge_selected"]
    has_acknowledge_permission = may(Perm.ACKNOWLEDGE_DRIFT)

    @admin.display(description="example object", ordering="example_object_id")
    def example(self, obj: SchemaDrift) -> str:
        if not obj.example_object_id:
            return "—"
        return changelist_link(QueueItem, obj.example_object_id, entity=obj.entity, object_id=obj.example_object_id)

    @admin.display(description="state", ordering="acknowledged_at")
    def state(self, obj: SchemaDrift) -> str:
        if obj.acknowledged_at is None:
            return mark_safe('<strong class="tds-open">new</strong>')
        return f"acknowledged by {obj.acknowledged_by or '?'}"

    @admin.action(description="Acknowledge the selected fields", permissions=["acknowledge"])
    def acknowledge_selected(self, request, queryset):
        actor, now, done = Actor.of_user(request.user, Via.ADMIN), timezone.now(), 0
        for row in queryset.order_by("pk"):
            try:
                schema_drift.acknowledge(row, actor=actor, now=now)
            except schema_drift.AlreadyAcknowledged as exc:
                self.message_user(request, str(exc), messages.WARNING)
            else:
                done += 1
        if done:
            self.message_user(request, f"{done} field(s) acknowledged.", messages.SUCCESS)


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


# django-q2's own action resubmits a task to anyone who may view the list; here it needs a permission.
@admin.action(description="Resubmit selected tasks to queue", permissions=["resubmit"])
def resubmit(model_admin, request, queryset):
    resubmit_task(model_admin, request, queryset)


class SuccessAdmin(TaskAdmin):
    actions = [resubmit]
    has_resubmit_permission = may(Perm.RESUBMIT_SUCCESSFUL_TASK)


class FailureAdmin(FailAdmin):
    actions = [resubmit]
    has_resubmit_permission = may(Perm.RESUBMIT_FAILED_TASK)


admin.site.unregister(Success)
admin.site.register(Success, SuccessAdmin)
admin.site.unregister(Failure)
admin.site.register(Failure, FailureAdmin)


# --- Erasure, offered on the contact tables' own pages ---------------------------------------------


@admin.action(description="Erase personal data of the selected contacts…", permissions=["redact"])
def erase_personal_data(model_admin: admin.ModelAdmin, request, queryset):
    """A confirmation page first, as a delete has: the erasure cannot be undone."""
    contacts = list(queryset.order_by("zoho_id"))
    if request.POST.get("post") != "yes":  # the field Django's own delete confirmation posts
        context = {
            **model_admin.admin_site.each_context(request),
            "title": "Erase personal data?",
            "opts": model_admin.model._meta,
            "contacts": contacts,
            "personal_keys": sorted(redaction.PERSONAL_KEYS),
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/erp/erase_confirmation.html", context)
    actor = Actor.of_user(request.user, Via.ADMIN)
    for contact in contacts:
        erasure = redaction.erase(contact.zoho_id, actor=actor)
        model_admin.message_user(
            request,
            f"Erased {contact.zoho_id}: {', '.join(erasure.fields) or 'no personal fields held'} "
            f"({sum(erasure.rows.values())} rows). Archives on disk are erased with `redact_contact --archive`.",
            messages.SUCCESS,
        )
    return None


@admin.register(ErasedContact)
class ErasedContactAdmin(ReadOnlyAdmin):
    list_display = ["zoho_id", "at", "requested_by", "erased_fields"]
    search_fields = ["zoho_id"]
    date_hierarchy = "at"

    @admin.display(description="fields erased")
    def erased_fields(self, obj: ErasedContact) -> str:
        return ", ".join(obj.fields)


for _contact_admin in erp_admin.contact_admins():
    _contact_admin.actions = [*(_contact_admin.actions or []), erase_personal_data]
