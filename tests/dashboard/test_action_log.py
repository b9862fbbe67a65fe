"""The operator action log: each action, through each door it has (admin, API, dashboard page,
command), is exactly one row of tds_operator_actions naming who, from where, what, before and after;
the object's admin history lists it; TDS Core's own resolutions (heal, the engine) are no row."""

from __future__ import annotations

import importlib
from datetime import timedelta
from io import StringIO

import pytest
from django.apps import apps
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from alerts import engine
from alerts.config_keys import ALERT_CLEAR_EVALUATIONS
from alerts.models import Alert, AlertSilence
from sync import healing, tasks
from sync.config_keys import PAUSED_ENTITIES
from sync.models import DeadLetter, QueueItem, SyncRun
from sync.zoho.models import BreakerState
from tdscore import config, permissions
from tdscore.actions import Actor, Via
from tdscore.enums import Action
from tdscore.models import Configuration, OperatorAction
from tests import factories

from .conftest import dead_lettered

pytestmark = pytest.mark.django_db

COMMAND = Actor.command().name


@pytest.fixture
def admin(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def token_client(staff_user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=staff_user).key}")
    return client


def only_row() -> OperatorAction:
    rows = list(OperatorAction.objects.all())
    assert len(rows) == 1, [str(row) for row in rows]
    return rows[0]


def logged(action: Action, actor: str, via: Via, target: str = "") -> OperatorAction:
    """The one action row, checked for what every door must say."""
    row = only_row()
    assert (row.action, row.actor, row.via) == (action, actor, via)
    assert target in row.target
    return row


def changelist_action(client, model: str, action: str, ids: list[int]):
    url = reverse(f"admin:{model}_changelist")
    # `post=yes`: past the confirmation page the replays and erasures show first.
    chosen = {"action": action, "_selected_action": [str(pk) for pk in ids], "post": "yes"}
    return client.post(url, chosen, follow=True)


# --- Configuration ---------------------------------------------------------------------------------


def test_a_configuration_change_in_the_admin_is_one_row_with_old_and_new_value(admin, staff_user):
    row = Configuration.objects.get(key="batch_size")
    answer = admin.post(reverse("admin:tdscore_configuration_change", args=[row.pk]), {"value": "250"})
    assert answer.status_code == 302
    action = logged(Action.CONFIG_CHANGE, "operator", Via.ADMIN, "batch_size")
    assert (action.before, action.after, action.user) == (100, 250, staff_user)


def test_a_configuration_patch_is_one_row_per_key_changed_and_names_the_token(token_client, superuser):
    # PATCH needs change_configuration, which the operators' group holds.
    answer = token_client.patch(
        "/api/dashboard/config", {"batch_size": 300, "max_retry_attempts": 3, "lock_timeout_seconds": 60}, format="json"
    )
    assert answer.status_code == 200, answer.content
    rows = {row.target: row for row in OperatorAction.objects.all()}
    assert sorted(rows) == ["batch_size", "lock_timeout_seconds"]  # max_retry_attempts was 3 already
    assert {(row.actor, row.via) for row in rows.values()} == {("operator (token)", Via.API)}
    assert (rows["lock_timeout_seconds"].before, rows["lock_timeout_seconds"].after) == (300, 60)


def test_the_configuration_page_shows_the_keys_history(admin):
    row = Configuration.objects.get(key="batch_size")
    page = reverse("admin:tdscore_configuration_change", args=[row.pk])
    admin.post(page, {"value": "250"})
    config.update(config.key_named("batch_size"), 260, actor=factories.actor("alice", Via.API))
    text = admin.get(page).content.decode()
    history = text[text.index("tds-key-history") :]
    assert history.index("alice (api)") < history.index("operator (admin)")  # newest first
    assert "<code>250</code> → <code>260</code>" in history
    assert "<code>100</code> → <code>250</code>" in history


# --- Dead letters and queue rows -------------------------------------------------------------------


def test_replay_in_the_admin_is_one_row_per_dead_letter_and_sends_the_row_back_as_requested(admin):
    first, second = dead_lettered("products", "1"), dead_lettered("products", "2")
    changelist_action(admin, "sync_deadletter", "replay_selected", [first.pk, second.pk])
    rows = OperatorAction.objects.order_by("target")
    assert [(r.action, r.actor, r.via, r.target) for r in rows] == [
        (Action.REPLAY, "operator", Via.ADMIN, f"dead letter #{first.pk} (products 1)"),
        (Action.REPLAY, "operator", Via.ADMIN, f"dead letter #{second.pk} (products 2)"),
    ]
    assert set(QueueItem.objects.values_list("requested_by", flat=True)) == {"operator"}


def test_discard_and_mark_fixed_in_the_admin_are_one_row_each(admin):
    discarded, fixed = dead_lettered("products", "1"), dead_lettered("products", "2")
    changelist_action(admin, "sync_deadletter", "discard_selected", [discarded.pk])
    changelist_action(admin, "sync_deadletter", "mark_fixed_selected", [fixed.pk])
    rows = OperatorAction.objects.order_by("id")
    assert [(r.action, r.target, r.after) for r in rows] == [
        (Action.DISCARD, f"dead letter #{discarded.pk} (products 1)", "discarded"),
        (Action.MARK_FIXED, f"dead letter #{fixed.pk} (products 2)", "fixed"),
    ]


def test_requeue_from_the_queue_list_is_a_requeue_of_the_queue_row(admin):
    dead = dead_lettered("invoices", "7")
    changelist_action(admin, "sync_queueitem", "requeue_selected", [dead.queue_item_id])
    row = logged(Action.REQUEUE, "operator", Via.ADMIN, f"queue row #{dead.queue_item_id} (invoices 7)")
    assert (row.before, row.after) == ("dead_letter", "pending")
    assert QueueItem.objects.get(pk=dead.queue_item_id).requested_by == "operator"


def test_replay_and_discard_through_the_api_name_the_user(api_client):
    replayed, discarded = dead_lettered("products", "1"), dead_lettered("products", "2")
    assert api_client.post(f"/api/dashboard/dead-letter/{replayed.pk}/retry").status_code == 202
    assert api_client.post(f"/api/dashboard/dead-letter/{discarded.pk}/discard").status_code == 200
    rows = OperatorAction.objects.order_by("id")
    assert [(r.action, r.actor, r.via) for r in rows] == [
        (Action.REPLAY, "operator", Via.API),
        (Action.DISCARD, "operator", Via.API),
    ]


def test_a_bulk_replay_of_five_is_five_rows_each_with_its_target(token_client):
    letters = [dead_lettered("bills", str(n)) for n in range(5)]
    answer = token_client.post("/api/dashboard/dead-letter/retry", {"entity": "bills"}, format="json")
    assert answer.json()["count"] == 5
    rows = OperatorAction.objects.filter(action=Action.REPLAY)
    assert sorted(rows.values_list("target", flat=True)) == sorted(
        f"dead letter #{d.pk} (bills {d.object_id})" for d in letters
    )
    assert set(rows.values_list("actor", "via")) == {("operator (token)", Via.API)}


def test_a_token_of_a_username_at_its_limit_replays_and_is_named_within_every_stamped_column(staff_user):
    staff_user.username = "u" * 150  # Django's own limit; " (token)" would take it past 150
    staff_user.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=staff_user).key}")
    letter = dead_lettered("bills", "1")

    assert client.post(f"/api/dashboard/dead-letter/{letter.pk}/retry").status_code == 202

    letter.refresh_from_db()
    named = (letter.resolved_by, letter.queue_item.requested_by, only_row().actor)
    assert named == ("u" * 150,) * 3


def test_replay_and_discard_from_the_dashboard_buttons(admin):
    replayed, discarded = dead_lettered("products", "1"), dead_lettered("products", "2")
    admin.post(reverse("dashboard:dead-letter-retry", args=[replayed.pk]))
    admin.post(reverse("dashboard:dead-letter-discard", args=[discarded.pk]))
    rows = OperatorAction.objects.order_by("id")
    assert [(r.action, r.actor, r.via) for r in rows] == [
        (Action.REPLAY, "operator", Via.DASHBOARD),
        (Action.DISCARD, "operator", Via.DASHBOARD),
    ]


def test_replay_dlq_records_the_system_user_who_ran_it():
    dead = dead_lettered("products", "1")
    call_command("replay_dlq", "--id", str(dead.pk), stdout=StringIO())
    row = logged(Action.REPLAY, COMMAND, Via.COMMAND, f"dead letter #{dead.pk}")
    assert row.user is None
    assert QueueItem.objects.get(pk=dead.queue_item_id).requested_by == COMMAND


def test_a_refused_replay_writes_no_row(api_client):
    dead = dead_lettered("products", "1")
    api_client.post(f"/api/dashboard/dead-letter/{dead.pk}/discard")
    assert api_client.post(f"/api/dashboard/dead-letter/{dead.pk}/retry").status_code == 409
    assert list(OperatorAction.objects.values_list("action", flat=True)) == [Action.DISCARD]


def test_heal_redriving_a_dead_letter_is_no_operator_action():
    dead = dead_lettered("products", "1", reason=DeadLetter.Reason.RETRIES_EXHAUSTED)
    DeadLetter.objects.filter(pk=dead.pk).update(next_redrive_at=timezone.now() - timedelta(minutes=1))
    healing.heal(now=timezone.now())
    dead.refresh_from_db()
    assert (dead.resolution, dead.resolved_by) == ("replayed", "heal")
    assert not OperatorAction.objects.exists()


# --- Alerts ---------------------------------------------------------------------------------------


def test_acknowledge_resolve_and_silence_in_the_admin(admin):
    alert = factories.alert()
    changelist_action(admin, "alerts_alert", "acknowledge", [alert.pk])
    changelist_action(admin, "alerts_alert", "resolve", [alert.pk])
    changelist_action(admin, "alerts_alert", "silence_hour", [alert.pk])
    rows = OperatorAction.objects.order_by("id")
    assert [(r.action, r.before, r.after) for r in rows][:2] == [
        (Action.ACKNOWLEDGE, "open", "acknowledged"),
        (Action.RESOLVE, "acknowledged", "resolved"),
    ]
    assert [r.action for r in rows][2:] == [Action.SILENCE]
    assert {(r.actor, r.via, r.target) for r in rows} == {("operator", Via.ADMIN, f"alert #{alert.pk} (queue_backlog)")}


def test_a_silence_written_in_the_admins_form_is_one_row(client, superuser):
    # Adding rows by hand is the superuser's: the operators' group holds no add_ permission.
    client.force_login(superuser)
    until = timezone.now() + timedelta(hours=2)
    form = {"rule": "dlq_size", "fingerprint": "", "until_0": f"{until:%Y-%m-%d}", "until_1": f"{until:%H:%M:%S}"}
    form |= {"created_at_0": f"{until:%Y-%m-%d}", "created_at_1": "00:00:00"}
    answer = client.post(reverse("admin:alerts_alertsilence_add"), {**form, "reason": "deploy", "created_by": ""})
    assert answer.status_code == 302, answer.content
    silence = AlertSilence.objects.get()
    row = logged(Action.SILENCE, "root", Via.ADMIN, f"silence #{silence.pk} (dlq_size")
    assert row.after["reason"] == "deploy"
    assert silence.created_by == "root"


def test_acknowledge_and_resolve_through_the_api_and_the_dashboard(api_client, admin):
    first, second = factories.alert(fingerprint="a"), factories.alert(fingerprint="b")
    api_client.post(f"/api/dashboard/alerts/{first.pk}/acknowledge")
    api_client.post(f"/api/dashboard/alerts/{first.pk}/resolve")
    admin.post(reverse("dashboard:alert-acknowledge", args=[second.pk]))
    rows = OperatorAction.objects.order_by("id")
    assert [(r.action, r.via, r.target.split(" ")[1]) for r in rows] == [
        (Action.ACKNOWLEDGE, Via.API, f"#{first.pk}"),
        (Action.RESOLVE, Via.API, f"#{first.pk}"),
        (Action.ACKNOWLEDGE, Via.DASHBOARD, f"#{second.pk}"),
    ]
    assert Alert.objects.get(pk=first.pk).resolved_by == "operator"


def test_the_engine_resolving_a_cleared_alert_is_no_operator_action():
    cleared = factories.alert(rule="dlq_size", fingerprint="dlq_size", last_seen=timezone.now() - timedelta(hours=1))
    config.update(ALERT_CLEAR_EVALUATIONS, 1)
    engine.evaluate(timezone.now())
    assert Alert.objects.get(pk=cleared.pk).status == Alert.Status.RESOLVED
    assert not OperatorAction.objects.exists()


# --- Pause, resume, runs, Zoho --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("door", "via"),
    [("admin_page", Via.ADMIN), ("admin_action", Via.ADMIN), ("dashboard", Via.DASHBOARD), ("command", Via.COMMAND)],
)
def test_pause_then_resume_is_one_row_each_from_every_door(admin, door, via):
    for verb in ("pause", "resume"):
        if door == "admin_page":
            admin.post(reverse("admin:sync_queueitem_entities"), {"entity": "invoices", "action": verb})
        elif door == "admin_action":
            item = factories.queue_item("invoices", "1")
            changelist_action(admin, "sync_queueitem", f"{verb}_entities", [item.pk])
        elif door == "dashboard":
            admin.post(reverse(f"dashboard:entity-{verb}", args=["invoices"]))
        else:
            call_command(f"{verb}_entity", "invoices", stdout=StringIO())
    rows = OperatorAction.objects.order_by("id")
    actor = COMMAND if door == "command" else "operator"
    assert [(r.action, r.actor, r.via, r.target) for r in rows] == [
        (Action.PAUSE, actor, via, "invoices"),
        (Action.RESUME, actor, via, "invoices"),
    ]
    assert (rows[0].before, rows[0].after, rows[1].after) == ([], ["invoices"], [])
    assert config.get(PAUSED_ENTITIES) == []


def test_starting_a_run_from_the_api_and_the_dashboard_stamps_who_started_it(api_client, admin):
    api_client.post("/api/dashboard/sync", {"entity": "products", "mode": "incremental"}, format="json")
    SyncRun.objects.update(status=SyncRun.Status.COMPLETED)  # let the next one start
    admin.post(reverse("dashboard:run-start"), {"entity": "products", "mode": "incremental"})
    runs = list(SyncRun.objects.order_by("id"))
    rows = OperatorAction.objects.order_by("id")
    assert [(r.action, r.via, r.target) for r in rows] == [
        (Action.RUN_START, Via.API, f"sync run #{runs[0].pk} (incremental products)"),
        (Action.RUN_START, Via.DASHBOARD, f"sync run #{runs[1].pk} (incremental products)"),
    ]
    assert [run.started_by for run in runs] == ["operator", "operator"]


def test_a_scheduled_run_is_no_operator_action():
    tasks.scheduled_pull("incremental", ["products"])
    assert SyncRun.objects.get().started_by == "schedule"  # what started it, for its changes' provenance
    assert not OperatorAction.objects.exists()


def test_sync_zoho_and_zoho_connect_record_the_system_user(zoho_sim, settings):
    zoho_sim.seed("users", 2)
    call_command("sync_zoho", "--entity", "users", "--mode", "incremental", stdout=StringIO())
    run = SyncRun.objects.get()
    assert run.started_by == COMMAND
    logged(Action.RUN_START, COMMAND, Via.COMMAND, f"sync run #{run.pk}")
    OperatorAction.objects.all().delete()

    settings.ZOHO_REFRESH_TOKEN = ""
    call_command("zoho_connect", "--code", zoho_sim.grant_code(), stdout=StringIO())
    row = logged(Action.ZOHO_CONNECT, COMMAND, Via.COMMAND, "Zoho account at")
    assert "refresh" not in str(row.after)  # the account, never a token


def test_resetting_the_breaker_in_the_admin_is_one_row(admin):
    breaker = factories.breaker_state(state=BreakerState.State.OPEN)
    changelist_action(admin, "zoho_breakerstate", "reset_breaker", [breaker.pk])
    row = logged(Action.BREAKER_RESET, "operator", Via.ADMIN, breaker.organization_id)
    assert row.after == "closed"


# --- The object's admin history ---------------------------------------------------------------------


def test_the_dead_letters_admin_history_lists_an_action_taken_through_the_api(api_client, admin):
    dead = dead_lettered("products", "1")
    api_client.post(f"/api/dashboard/dead-letter/{dead.pk}/discard")
    entry = LogEntry.objects.get()
    assert (entry.action_flag, entry.object_id, entry.user.username) == (CHANGE, str(dead.pk), "operator")
    history = admin.get(reverse("admin:sync_deadletter_history", args=[dead.pk])).content.decode()
    assert "dead_letter.discard via api" in history


def test_a_configuration_change_in_the_admin_leaves_one_history_entry(admin):
    row = Configuration.objects.get(key="batch_size")
    admin.post(reverse("admin:tdscore_configuration_change", args=[row.pk]), {"value": "250"})
    assert list(LogEntry.objects.values_list("change_message", flat=True)) == [
        "configuration.change via admin: batch_size"
    ]


# --- Reading the log --------------------------------------------------------------------------------


@pytest.fixture
def three_actions():
    earlier = timezone.now() - timedelta(hours=2)
    factories.operator_action(Action.PAUSE, "invoices", at=earlier)
    config.update(config.key_named("batch_size"), 150, actor=factories.actor("alice", Via.API))
    config.update(config.key_named("batch_size"), 160, actor=factories.actor("bob", Via.ADMIN))
    return earlier


def test_the_api_lists_actions_newest_first_with_their_fields(api_client, three_actions):
    body = api_client.get("/api/dashboard/actions").json()
    assert body["count"] == 3
    assert [row["actor"] for row in body["results"]] == ["bob", "alice", "ops"]
    assert set(body["results"][0]) == {"at", "actor", "via", "action", "target", "before", "after"}
    assert (body["results"][0]["before"], body["results"][0]["after"]) == (150, 160)


@pytest.mark.parametrize(
    ("query", "actors"),
    [
        ({"actor": "alice"}, ["alice"]),
        ({"action": "entity.pause"}, ["ops"]),
        ({"since": "HOUR_AGO"}, ["bob", "alice"]),
        ({"action": "configuration.change", "actor": "bob"}, ["bob"]),
    ],
)
def test_the_api_filters_by_actor_action_and_since(api_client, three_actions, query, actors):
    if query.get("since") == "HOUR_AGO":
        query["since"] = (timezone.now() - timedelta(hours=1)).isoformat()
    body = api_client.get("/api/dashboard/actions", query).json()
    assert [row["actor"] for row in body["results"]] == actors


@pytest.mark.parametrize("query", [{"since": "yesterday"}, {"action": "entity.explode"}])
def test_a_filter_value_that_cannot_be_read_is_400_in_the_error_body(api_client, query):
    answer = api_client.get("/api/dashboard/actions", query)
    assert answer.status_code == 400
    body = answer.json()
    assert (body["status"], body["error"]) == ("error", "invalid_filter")
    assert body["detail"].startswith(next(iter(query)))


def test_a_viewer_reads_the_log_and_staff_without_the_permission_may_not(viewer, django_user_model):
    reader = APIClient()
    reader.force_authenticate(viewer)
    assert reader.get("/api/dashboard/actions").status_code == 200
    bare = django_user_model.objects.create_user("bare", is_staff=True)
    reader.force_authenticate(bare)
    assert reader.get("/api/dashboard/actions").status_code == 403


def test_the_admin_shows_the_log_and_refuses_add_change_and_delete(admin, three_actions):
    row = OperatorAction.objects.first()
    assert admin.get(reverse("admin:tdscore_operatoraction_changelist")).status_code == 200
    assert admin.get(reverse("admin:tdscore_operatoraction_add")).status_code == 403
    change = reverse("admin:tdscore_operatoraction_change", args=[row.pk])
    assert admin.post(change, {"actor": "mallory"}).status_code == 403
    assert admin.post(reverse("admin:tdscore_operatoraction_delete", args=[row.pk]), {"post": "yes"}).status_code == 403
    assert OperatorAction.objects.filter(actor="mallory").count() == 0
    assert OperatorAction.objects.count() == 3


def test_the_admin_filters_the_log_by_action_via_and_actor(admin, three_actions):
    page = admin.get(reverse("admin:tdscore_operatoraction_changelist"), {"via__exact": "api"}).content.decode()
    assert "alice" in page and "bob" not in page.split("result_list")[1]


def test_the_dashboard_page_lists_the_log_and_a_keys_history(admin, three_actions):
    page = admin.get(reverse("dashboard:actions")).content.decode().split("<tbody>")[1]
    assert page.index("bob") < page.index("alice") < page.index("invoices")
    history = admin.get(reverse("dashboard:actions"), {"target": "batch_size"}).content.decode()
    assert "150 → 160" in history and "100 → 150" in history and "invoices" not in history
    assert f'href="{reverse("dashboard:actions")}"' in admin.get(reverse("dashboard:index")).content.decode()


def test_groups_made_before_the_log_get_its_view_permission():
    permissions.ensure_groups()
    view = Permission.objects.get(codename="view_operatoraction")
    for group in Group.objects.filter(name__in=[permissions.OPERATORS, permissions.VIEWERS]):
        group.permissions.remove(view)
    migration = importlib.import_module("tdscore.migrations.0008_action_log_view_permission")
    migration.grant(apps, None)  # the live registry stands in for the migration's
    for name in (permissions.OPERATORS, permissions.VIEWERS):
        assert Group.objects.get(name=name).permissions.filter(pk=view.pk).exists()
