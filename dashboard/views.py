"""The HTML dashboard at /dashboard/: tiles, 24-hour charts, what is stuck and the buttons to fix it.

Reads come from `monitoring.stats` (the same figures as the API); every button posts to a small view
here that calls the same function as the admin, the API and the CLI (`sync.queue.replay` / `discard`,
`sync.queue.pause` / `resume`, `Alert.acknowledge`, and the API's `start_sync` for runs). The page refreshes its panels itself through htmx (bundled with django-htmx).
Who may see the page and press each button is tdscore.permissions' answer, the admin's; a button the
user may not press is not shown.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from alerts.models import Alert, AlertStateError
from dashboard import charts
from dashboard.api.runs import start_sync
from dashboard.config_keys import DASHBOARD_REFRESH_SECONDS
from monitoring import stats
from monitoring.rollups import Lag
from sync import entities, queue
from sync.models import DeadLetter, QueueItem, SchemaDrift, SyncCursor, SyncRun
from tdscore import config, permissions
from tdscore.actions import Actor, Via
from tdscore.enums import Action
from tdscore.humane import duration
from tdscore.models import OperatorAction
from tdscore.permissions import Perm

TABLE_ROWS = 15


class Tone(StrEnum):
    """A tile's colour: its CSS class in dashboard.css (PLAIN, no class, keeps the neutral border)."""

    PLAIN = ""
    GOOD = "good"
    WARN = "warn"
    BAD = "bad"


@dataclass(frozen=True)
class Tile:
    label: str
    value: str
    detail: str = ""
    tone: Tone = Tone.PLAIN


def _count(n: int) -> str:
    return f"{n:,}"


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate:.1%}"


def _latency(seconds: float | None) -> str:
    return "—" if seconds is None else (f"{seconds:.2f} s" if seconds < 120 else duration(seconds))


def _success_tone(rate: float | None) -> Tone:
    if rate is None:
        return Tone.PLAIN
    return Tone.GOOD if rate >= 0.99 else Tone.WARN if rate >= 0.9 else Tone.BAD


def paused_tile(held: dict[str, int]) -> Tile:
    if not held:
        return Tile("Paused", "none", "every entity is applied")
    rows = ", ".join(f"{entity} ({_count(n)} held)" for entity, n in held.items())
    return Tile("Paused", _count(len(held)), f"{rows}: received, not applied", Tone.WARN)


@dataclass(frozen=True)
class EntityRow:
    """A row of the entities panel: paused or applied, and the rows a pause holds back."""

    slug: str
    paused: bool
    held: int


class Mode(StrEnum):
    """What the run buttons start, as `start_sync` takes it, and the words a button and a message use."""

    FULL = SyncRun.RunType.FULL
    INCREMENTAL = SyncRun.RunType.INCREMENTAL
    RECONCILIATION = SyncRun.RunType.RECONCILIATION

    @property
    def words(self) -> str:
        return {Mode.FULL: "full pull", Mode.INCREMENTAL: "incremental pull", Mode.RECONCILIATION: "reconciliation"}[
            self
        ]


def tiles(overview: dict) -> list[Tile]:
    hour, day, zoho = overview["last_hour"], overview["last_day"], overview["zoho"]
    cap = zoho["daily_cap"]
    used = zoho["calls_today"] / cap if cap else 0
    return [
        Tile("Received", _count(hour["received"]), f"last hour · {_count(day['received'])} today"),
        Tile("Applied", _count(hour["applied"]), f"last hour · {_count(day['applied'])} today"),
        Tile(
            "Failed",
            _count(hour["failed"]),
            f"last hour · {_count(day['failed'])} today",
            Tone.BAD if hour["failed"] else Tone.PLAIN,
        ),
        Tile(
            "Success rate",
            _percent(hour["success_rate"]),
            f"last hour · {_percent(day['success_rate'])} today",
            _success_tone(hour["success_rate"]),
        ),
        Tile("Latency p95", _latency(hour["latency_p95_seconds"]), f"p50 {_latency(hour['latency_p50_seconds'])}"),
        Tile("Queue depth", _count(overview["queue_depth"]), "pending and retry rows"),
        Tile("Oldest pending", duration(overview["oldest_pending_age_seconds"]), "waiting to be applied"),
        Tile(
            "Dead letters", _count(overview["dlq_size"]), "unresolved", Tone.BAD if overview["dlq_size"] else Tone.GOOD
        ),
        Tile(
            "Parents awaited",
            _count(overview["parents_waiting"]),
            "references still empty: filled when they land",
        ),
        Tile(
            "Open alerts",
            _count(overview["open_alerts"]),
            "open or acknowledged",
            Tone.WARN if overview["open_alerts"] else Tone.GOOD,
        ),
        Tile(
            "Zoho calls today",
            _count(zoho["calls_today"]),
            f"of {_count(cap)} · {_percent(used)} used",
            Tone.BAD if used >= 0.9 else Tone.WARN if used >= 0.7 else Tone.PLAIN,
        ),
    ]


def _freshness(overview: dict) -> list[tuple[str, str, str | None]]:
    """The freshness tile's rows: (entity, p95 after Zoho's change, p95 after the webhook or None).
    Backfill (old records a pull brought) is history, not lag: not shown as freshness."""
    rows = []
    for entity, lags in overview["freshness"].items():
        modified, received = lags.get(Lag.SINCE_MODIFIED), lags.get(Lag.SINCE_RECEIVED)
        if modified or received:
            rows.append(
                (
                    entity,
                    _latency(modified["p95_seconds"] if modified else None),
                    _latency(received["p95_seconds"]) if received else None,
                )
            )
    return rows


def context(now: datetime, user) -> dict:
    overview = stats.overview(now)
    held = queue.held_rows()
    return {
        "now": now,
        "can": permissions.granted(user),
        "refresh_seconds": config.get(DASHBOARD_REFRESH_SECONDS),
        "tiles": [*tiles(overview), paused_tile(held)],
        "entities": [EntityRow(slug, slug in held, held.get(slug, 0)) for slug in entities.ENTITIES],
        "modes": list(Mode),
        "freshness": _freshness(overview),
        "charts": charts.day_charts(now),
        # Newest first by id, which follows arrival: the primary key answers it at any table size,
        # where ordering by a timestamp would sort a million queue rows (or 100,000 dead letters).
        "events": QueueItem.objects.order_by("-id")[:TABLE_ROWS],
        "dead_letters": DeadLetter.objects.unresolved().order_by("-id")[:TABLE_ROWS],
        "dlq_size": overview["dlq_size"],
        "alerts": Alert.objects.exclude(status=Alert.Status.RESOLVED).order_by("-last_seen")[:TABLE_ROWS],
        # Read only when shown: the panel is for those who may view schema drift, and only while some is new.
        "schema_drift": SchemaDrift.objects.filter(acknowledged_at__isnull=True).order_by("-last_seen")[:TABLE_ROWS],
        "runs": SyncRun.objects.order_by("-id")[:TABLE_ROWS],
        "cursors": SyncCursor.objects.order_by("entity", "run_type"),
    }


@require_GET
@permissions.required(*permissions.DASHBOARD)
def dashboard(request):
    # htmx asks for the panels alone every `dashboard_refresh_seconds`; a browser gets the whole page.
    template = "dashboard/_panels.html" if request.htmx else "dashboard/index.html"
    return render(request, template, context(timezone.now(), request.user))


def _actor(request) -> Actor:
    return Actor.of_user(request.user, Via.DASHBOARD)


def _act(request, action, done: str, refused: type[Exception]):
    try:
        action()
    except refused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, done)
    return redirect("dashboard:index")


@require_POST
@permissions.required(Perm.REPLAY_DEADLETTER)
def retry_dead_letter(request, pk: int):
    dead_letter = get_object_or_404(DeadLetter, pk=pk)
    actor = _actor(request)
    return _act(
        request,
        lambda: queue.replay(dead_letter, actor=actor),
        f"Dead letter #{pk} replayed: its queue row is pending again.",
        queue.DeadLetterError,
    )


@require_POST
@permissions.required(Perm.DISCARD_DEADLETTER)
def discard_dead_letter(request, pk: int):
    dead_letter = get_object_or_404(DeadLetter, pk=pk)
    actor = _actor(request)
    return _act(
        request, lambda: queue.discard(dead_letter, actor=actor), f"Dead letter #{pk} discarded.", queue.DeadLetterError
    )


@require_POST
@permissions.required(Perm.ACKNOWLEDGE_ALERT)
def acknowledge_alert(request, pk: int):
    alert = get_object_or_404(Alert, pk=pk)
    actor = _actor(request)
    return _act(
        request,
        lambda: alert.acknowledge(actor=actor, now=timezone.now()),
        f"Alert #{pk} acknowledged.",
        AlertStateError,
    )


def _entity_or_404(slug: str) -> str:
    if slug not in entities.ENTITIES:
        raise Http404(f"no entity {slug}")
    return slug


@require_POST
@permissions.required(Perm.PAUSE_ENTITY)
def pause_entity(request, entity: str):
    paused = queue.pause([_entity_or_404(entity)], actor=_actor(request))
    return _paused_now(request, f"Paused {entity}: its changes are received and queued, not applied.", paused)


@require_POST
@permissions.required(Perm.PAUSE_ENTITY)
def resume_entity(request, entity: str):
    paused = queue.resume([_entity_or_404(entity)], actor=_actor(request))
    return _paused_now(request, f"Resumed {entity}: its waiting rows are applied.", paused)


def _paused_now(request, done: str, paused: list[str]):
    messages.success(request, f"{done} Paused now: {', '.join(paused) or 'none'}.")
    return redirect("dashboard:index")


@require_POST
@permissions.required(Perm.START_RUN)
def start_run(request):
    """Start a run of one entity or of `all`, as POST /api/dashboard/sync does; each refusal in words."""
    entity, mode = request.POST.get("entity", ""), request.POST.get("mode", "")
    if mode not in set(Mode) or (entity != "all" and entity not in entities.ENTITIES):
        messages.error(request, f"Nothing started: no {mode or '?'} run of {entity or '?'} to start.")
        return redirect("dashboard:index")
    words = Mode(mode).words
    outcome = start_sync(entity, mode, trigger="dashboard", actor=_actor(request))
    if outcome.run_ids:
        runs = ", ".join(f"#{pk}" for pk in outcome.run_ids)
        messages.success(request, f"Started {words} of {entity}: run {runs}, in the worker cluster.")
    for slug, reason in outcome.refused.items():
        messages.error(request, f"{words.capitalize()} of {slug} not started: {reason}.")
    return redirect("dashboard:index")


# The action log's page: rows a page, newest first.
ACTION_ROWS = 50


@dataclass(frozen=True)
class ActionRow:
    """An action-log row as the page prints it: before and after as compact JSON (None: not shown)."""

    at: datetime
    actor: str
    via: str
    action: str
    target: str
    before: str | None
    after: str

    @classmethod
    def of(cls, row: OperatorAction) -> ActionRow:
        before = None if row.before is None else _compact(row.before)
        return cls(row.at, row.actor, row.via, row.action, row.target, before, _compact(row.after))


def _compact(value) -> str:
    if isinstance(value, str):
        return value  # a state (open, replayed): words, not a JSON string in quotes
    return "—" if value is None else json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


@require_GET
@permissions.required(Perm.VIEW_OPERATORACTION)
def action_log(request):
    """Every operator action from every door, filtered by actor, action or target (a key's history)."""
    wanted = {name: request.GET.get(name, "").strip() for name in ("actor", "action", "target")}
    rows = OperatorAction.objects.filter(**{name: value for name, value in wanted.items() if value})
    page = Paginator(rows.order_by("-at", "-id"), ACTION_ROWS).get_page(request.GET.get("page"))
    page.object_list = [ActionRow.of(row) for row in page.object_list]
    context = {
        "can": permissions.granted(request.user),
        "page": page,
        "wanted": wanted,
        "filtered": any(wanted.values()),
        "query": urlencode({name: value for name, value in wanted.items() if value}),
        "action_names": [action.value for action in Action],
        "actors": OperatorAction.objects.order_by("actor").values_list("actor", flat=True).distinct()[:100],
    }
    return render(request, "dashboard/actions.html", context)


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """`/`, the address `make run` prints: an operator goes to the dashboard, anyone else to the login."""
    dashboard = reverse("dashboard:index")
    if request.user.is_authenticated and request.user.is_staff:
        return redirect(dashboard)
    return redirect_to_login(dashboard, settings.LOGIN_URL)
