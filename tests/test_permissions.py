"""Who may do what, door by door: every path of the resolver × every kind of user (and an API token of
each) × every method the path accepts, and every admin action through the changelist's POST.

A path the table below does not list fails the walk: a new path is covered from the day it is added.
A refused write must leave the database as it was; a state-changing form must refuse a POST without
its CSRF token.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.contrib.auth.models import AnonymousUser, Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.contrib.sessions.models import Session
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.authtoken.models import Token

from alerts.models import Alert
from sync import queue
from sync.models import DeadLetter, QueueItem, SchemaDrift
from sync.zoho.models import BreakerState
from tdscore import permissions
from tdscore.models import Configuration
from tests import factories


class Kind(StrEnum):
    ANONYMOUS = "anonymous"
    MEMBER = "non-staff"
    STAFF = "staff without permissions"
    VIEWER = "viewer"
    OPERATOR = "operator"
    SUPERUSER = "superuser"


@dataclass(frozen=True)
class Who:
    kind: Kind
    token: bool = False

    def __str__(self) -> str:
        return f"token of {self.kind}" if self.token else str(self.kind)


SESSIONS = [Who(kind) for kind in Kind]
EVERYONE = SESSIONS + [Who(kind, token=True) for kind in Kind if kind is not Kind.ANONYMOUS]

STAFF_UP = {Kind.STAFF, Kind.VIEWER, Kind.OPERATOR, Kind.SUPERUSER}
VIEWERS_UP = {Kind.VIEWER, Kind.OPERATOR, Kind.SUPERUSER}
OPERATORS_UP = {Kind.OPERATOR, Kind.SUPERUSER}
SUPERUSER = {Kind.SUPERUSER}
NOBODY: set[Kind] = set()
ALL = set(Kind)


@dataclass
class People:
    users: dict[Kind, User]
    clients: dict[Who, Client]
    csrf_superuser: Client


@pytest.fixture(scope="module")
def people(django_db_setup, django_db_blocker) -> Iterator[People]:
    """The users, their sessions and their tokens, made once for the module (force_login, no hashing)."""
    with django_db_blocker.unblock():
        permissions.ensure_groups()
        users = {
            Kind.MEMBER: User.objects.create_user("matrix-member"),
            Kind.STAFF: User.objects.create_user("matrix-staff", is_staff=True),
            Kind.VIEWER: User.objects.create_user("matrix-viewer", is_staff=True),
            Kind.OPERATOR: User.objects.create_user("matrix-operator", is_staff=True),
            Kind.SUPERUSER: User.objects.create_superuser("matrix-root", None, None),
        }
        users[Kind.VIEWER].groups.add(Group.objects.get(name=permissions.VIEWERS))
        users[Kind.OPERATOR].groups.add(Group.objects.get(name=permissions.OPERATORS))
        clients: dict[Who, Client] = {Who(Kind.ANONYMOUS): Client()}
        for kind, user in users.items():
            clients[Who(kind)] = Client()
            clients[Who(kind)].force_login(user)
            key = Token.objects.create(user=user).key
            clients[Who(kind, token=True)] = Client(headers={"authorization": f"Token {key}"})
        csrf_superuser = Client(enforce_csrf_checks=True)
        csrf_superuser.force_login(users[Kind.SUPERUSER])
        sessions = [c.session.session_key for c in [*clients.values(), csrf_superuser] if c.session.session_key]
    yield People(users, clients, csrf_superuser)
    with django_db_blocker.unblock():
        Session.objects.filter(session_key__in=sessions).delete()
        User.objects.filter(pk__in=[user.pk for user in users.values()]).delete()


# --- The state of the database a refused request must not change ------------------------------------


def snapshot() -> dict[str, int]:
    """Rows written so far in this transaction, by table: one query, whatever the number of tables.
    PostgreSQL counts them per table (pg_stat_xact_user_tables); SQLite only on the connection."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_xact_user_tables"
                " WHERE n_tup_ins + n_tup_upd + n_tup_del > 0"
            )
            return dict(cursor.fetchall())
        cursor.execute("SELECT total_changes()")
        return {"rows written": cursor.fetchone()[0]}


def changed(before: dict, after: dict) -> list[str]:
    """The tables written between two snapshots: any insert, update or delete, even one that restores a value."""
    return sorted(name for name in after if after[name] != before.get(name))


# --- The world each request meets: something to act on ------------------------------------------


@dataclass
class World:
    dead_letter: DeadLetter
    alert: Alert
    breaker: BreakerState
    drift: SchemaDrift
    extra: dict = field(default_factory=dict)


def build_world() -> World:
    item = factories.queue_item()
    QueueItem.objects.filter(pk=item.pk).update(status=QueueItem.Status.DEAD_LETTER)
    item.refresh_from_db()
    return World(
        dead_letter=factories.dead_letter(queue_item=item),
        alert=factories.alert(),
        breaker=factories.breaker_state(state=BreakerState.State.OPEN),
        drift=factories.schema_drift(),
    )


# --- The table: what each path answers, by method, and to whom ----------------------------------------


class Door(StrEnum):
    PAGE = "page"  # HTML behind the admin's login: others go to the login page, staff without the permission 403
    API = "api"  # DRF: anonymous 401, others without the permission 403
    PUBLIC = "public"  # the same answer to everyone, whoever is logged in


@dataclass(frozen=True)
class Rule:
    allowed: set[Kind]
    status: int | tuple[int, ...]  # the answer to an allowed user
    data: dict | None = None
    refused_status: int = 403  # the answer to staff without the permission, where Django says otherwise
    fresh_session: bool = False  # the request ends the session (logout): a throwaway one is used
    as_json: bool = False  # the body is sent as JSON (the API's always is)


@dataclass(frozen=True)
class Route:
    door: Door
    methods: dict[str, Rule]
    reason: str = ""  # for a public path: why it is public


def page(**methods: Rule) -> Route:
    return Route(Door.PAGE, methods)


def api(**methods: Rule) -> Route:
    return Route(Door.API, methods)


def public(reason: str, **methods: Rule) -> Route:
    return Route(Door.PUBLIC, methods, reason)


WEBHOOK = {"item_id": "2002", "name": "Widget", "last_modified_time": "2026-11-01T10:00:00+0000"}

ROUTES: dict[str, Route] = {
    "home": public("the address make run prints: a redirect, to the dashboard or to the login", GET=Rule(ALL, 302)),
    "favicon": public("browsers ask for it on every page, logged in or not", GET=Rule(ALL, 301)),
    "health": public("a load balancer's liveness probe", GET=Rule(ALL, 200)),
    "health-ready": public("a load balancer's readiness probe", GET=Rule(ALL, 200)),
    "metrics": public("Prometheus scrapes it; nginx keeps it to private addresses", GET=Rule(ALL, 200)),
    "webhook": public(
        "Zoho posts here; the webhook token or signature authenticates, not a user",
        POST=Rule(ALL, 202, WEBHOOK, as_json=True),
        PUT=Rule(ALL, 202, WEBHOOK, as_json=True),
        DELETE=Rule(ALL, 202, WEBHOOK, as_json=True),
    ),
    "dashboard:index": page(GET=Rule(VIEWERS_UP, 200)),
    "dashboard:dead-letter-retry": page(POST=Rule(OPERATORS_UP, 302)),
    "dashboard:dead-letter-discard": page(POST=Rule(OPERATORS_UP, 302)),
    "dashboard:alert-acknowledge": page(POST=Rule(OPERATORS_UP, 302)),
    "dashboard:entity-pause": page(POST=Rule(OPERATORS_UP, 302)),
    "dashboard:entity-resume": page(POST=Rule(OPERATORS_UP, 302)),
    "dashboard:run-start": page(POST=Rule(OPERATORS_UP, 302, {"entity": "products", "mode": "incremental"})),
    "dashboard:actions": page(GET=Rule(VIEWERS_UP, 200)),
    # The schema describes the API and holds no data: any staff member may read it.
    "api:schema": api(GET=Rule(STAFF_UP, 200)),
    "api:swagger-ui": page(GET=Rule(STAFF_UP, 200)),
    "api:runs": api(GET=Rule(VIEWERS_UP, 200)),
    "api:cursors": api(GET=Rule(VIEWERS_UP, 200)),
    "api:sync": api(POST=Rule(OPERATORS_UP, (202, 409), {"entity": "products", "mode": "incremental"})),
    "api:alerts": api(GET=Rule(VIEWERS_UP, 200)),
    "api:alert-acknowledge": api(POST=Rule(OPERATORS_UP, 200)),
    "api:alert-resolve": api(POST=Rule(OPERATORS_UP, 200)),
    "api:metrics": api(GET=Rule(VIEWERS_UP, 200)),
    "api:queue-stats": api(GET=Rule(VIEWERS_UP, 200)),
    "api:recent-events": api(GET=Rule(VIEWERS_UP, 200)),
    "api:dead-letters": api(GET=Rule(VIEWERS_UP, 200)),
    "api:dead-letter-bulk-retry": api(POST=Rule(OPERATORS_UP, 202, {"all": True})),
    "api:dead-letter-retry": api(POST=Rule(OPERATORS_UP, 202)),
    "api:dead-letter-discard": api(POST=Rule(OPERATORS_UP, 200)),
    "api:config": api(GET=Rule(VIEWERS_UP, 200), PATCH=Rule(OPERATORS_UP, 200, {"batch_size": 200})),
    "api:schema-drift": api(GET=Rule(VIEWERS_UP, 200)),
    "api:schema-drift-acknowledge": api(POST=Rule(OPERATORS_UP, 200)),
    # View permission on the entity's ERP model; the sampled object was never applied: 404 to those allowed.
    "api:erp-history": api(GET=Rule(VIEWERS_UP, 404)),
    "api:actions": api(GET=Rule(VIEWERS_UP, 200)),
    # The admin's own pages (its model pages are sampled below, kind by kind).
    "admin:index": page(GET=Rule(STAFF_UP, 200)),
    "admin:login": public("the login form itself", GET=Rule(ALL, (200, 302))),
    # Ends one's own session (200); without a staff session it sends the visitor back to the console (302).
    "admin:logout": public("ends only the caller's own session", POST=Rule(ALL, (200, 302), fresh_session=True)),
    "admin:password_change": page(GET=Rule(STAFF_UP, 200), POST=Rule(STAFF_UP, 200, {})),
    "admin:password_change_done": page(GET=Rule(STAFF_UP, 200)),
    "admin:jsi18n": page(GET=Rule(STAFF_UP, 200)),
    # Without its query the autocomplete refuses everyone; it answers only for a field the user may see.
    "admin:autocomplete": page(GET=Rule(NOBODY, 403)),
    # No TDS model has a public page of its own to be viewed on.
    "admin:view_on_site": page(GET=Rule(NOBODY, 404, refused_status=404)),
    "admin:app_list": page(GET=Rule(VIEWERS_UP, 200, refused_status=404)),
    "admin:catch_all": page(GET=Rule(NOBODY, 404, refused_status=404)),
    "admin:alerts_alert_send_test": page(POST=Rule(OPERATORS_UP, 302, {"channel": "slack"})),
    "admin:auth_user_password_change": page(GET=Rule(SUPERUSER, 200)),
    "admin:sync_audittrail_object": page(GET=Rule(VIEWERS_UP, 200)),
    "admin:sync_queueitem_entities": page(
        GET=Rule(VIEWERS_UP, 200), POST=Rule(OPERATORS_UP, 302, {"entity": "products", "action": "pause"})
    ),
}

# Model pages of the admin, by kind, for models standing for each kind of ModelAdmin: a read-only
# record, the editable configuration, and alerts (changed by operators, deleted by superusers).
MODEL_PAGES: dict[str, dict[type, dict[str, Rule]]] = {
    "changelist": {model: {"GET": Rule(VIEWERS_UP, 200)} for model in (DeadLetter, Configuration, Alert)},
    "add": {model: {"GET": Rule(NOBODY, 403)} for model in (DeadLetter, Configuration, Alert)},
    "change": {
        DeadLetter: {"GET": Rule(VIEWERS_UP, 200), "POST": Rule(NOBODY, 403, {"reason": "validation"})},
        Configuration: {"GET": Rule(VIEWERS_UP, 200), "POST": Rule(OPERATORS_UP, 302, {"value": "200"})},
        # Every field of an alert is read-only: the form comes back (200) to those who may change it.
        Alert: {"GET": Rule(VIEWERS_UP, 200), "POST": Rule(OPERATORS_UP, 200, {})},
    },
    "delete": {
        DeadLetter: {"POST": Rule(NOBODY, 403, {"post": "yes"})},
        Configuration: {"POST": Rule(NOBODY, 403, {"post": "yes"})},
        Alert: {"GET": Rule(SUPERUSER, 200), "POST": Rule(SUPERUSER, 302, {"post": "yes"})},
    },
    "history": {model: {"GET": Rule(VIEWERS_UP, 200)} for model in (DeadLetter, Configuration, Alert)},
}
MODEL_PAGE_KINDS = tuple(MODEL_PAGES)


# --- Walking the resolver ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    name: str
    params: tuple[str, ...]


def walk(patterns, namespace: str = "") -> Iterator[Found]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from walk(pattern.url_patterns, inner)
        elif isinstance(pattern, URLPattern):
            params = tuple(pattern.pattern.regex.groupindex)
            # The admin's last pattern has no name: it answers every path it does not know.
            yield Found(f"{namespace}{pattern.name or 'catch_all'}", params)


FOUND = sorted(set(walk(get_resolver().url_patterns)), key=lambda found: found.name)


def model_page(name: str) -> tuple[type, str] | None:
    """admin:<app>_<model>_<kind> → (model, kind) for the model pages of the admin."""
    for model in admin.site._registry:
        prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}_"
        if name.startswith(prefix) and name.removeprefix(prefix) in MODEL_PAGE_KINDS:
            return model, name.removeprefix(prefix)
    return None


def cases() -> Iterator[tuple[str, str, Rule, Door]]:
    for found in FOUND:
        listed = model_page(found.name)
        if listed is not None:
            model, kind = listed
            for method, rule in MODEL_PAGES[kind].get(model, {}).items():
                yield found.name, method, rule, Door.PAGE
            continue
        route = ROUTES.get(found.name)
        if route is None:
            yield found.name, "", Rule(NOBODY, 0), Door.PAGE  # fails in the test, naming the path
            continue
        for method, rule in route.methods.items():
            yield found.name, method, rule, route.door


CASES = list(cases())


def url_of(name: str, world: World) -> str:
    if name == "admin:catch_all":
        return "/admin/no-such-page/"
    listed = model_page(name)
    if listed is not None:
        model, kind = listed
        if kind in ("changelist", "add"):
            return reverse(name)
        row = {DeadLetter: world.dead_letter, Alert: world.alert}.get(model) or Configuration.objects.get(
            key="batch_size"
        )
        return reverse(name, args=[quote(row.pk)])
    samples = {
        "entity": "products",
        "pk": world.alert.pk if "alert" in name else world.drift.pk if "drift" in name else world.dead_letter.pk,
        "app_label": "sync",
        "content_type_id": ContentType.objects.get_for_model(DeadLetter).pk,
        "object_id": world.dead_letter.pk,
        "id": world.extra.get("user_pk", 0),
        "zoho_id": "1001",
    }
    params = next(found.params for found in FOUND if found.name == name)
    return reverse(name, kwargs={param: samples[param] for param in params})


def expected(who: Who, rule: Rule, door: Door) -> tuple[int | tuple[int, ...], str]:
    """The answer `who` must get, and what it means."""
    if door is Door.PUBLIC:
        return rule.status, "public"
    if door is Door.API:
        if who.kind in rule.allowed:
            return rule.status, "allowed"
        return (401 if who.kind is Kind.ANONYMOUS else 403), "refused"
    # A page: only a session is a login there; a token opens no page.
    if who.token or who.kind in (Kind.ANONYMOUS, Kind.MEMBER):
        return 302, "to the login page"
    return (rule.status, "allowed") if who.kind in rule.allowed else (rule.refused_status, "refused")


def request(client: Client, method: str, url: str, data: dict | None, door: Door, as_json: bool = False):
    if door is Door.API or as_json or method in ("PUT", "PATCH", "DELETE"):
        return client.generic(method, url, data=_json(data), content_type="application/json")
    if method == "GET":
        return client.get(url)
    return client.post(url, data or {})


def _json(data: dict | None) -> str:
    return json.dumps(data or {})


@pytest.fixture
def webhook_token(settings):
    settings.TDS_WEBHOOK_TOKEN = ["matrix-webhook-token"]
    return "matrix-webhook-token"


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "method", "rule", "door"), CASES, ids=[f"{c[1] or '?'} {c[0]}" for c in CASES])
def test_every_path_answers_each_user_as_the_table_says(people, webhook_token, name, method, rule, door):
    assert method, f"{name} is not in the table of tests/test_permissions.py: say who may use it, and how"
    wrong = []
    for who in EVERYONE:
        with transaction.atomic():
            world = build_world()
            world.extra["user_pk"] = people.users[Kind.MEMBER].pk
            url = url_of(name, world)
            if name == "webhook":
                url += f"?token={webhook_token}"
            client = people.clients[who]
            if rule.fresh_session:
                client = Client()
                if who.kind is not Kind.ANONYMOUS and not who.token:
                    client.force_login(people.users[who.kind])
            before = snapshot() if method != "GET" else None
            response = request(client, method, url, rule.data, door, rule.as_json)
            want, meaning = expected(who, rule, door)
            wants = want if isinstance(want, tuple) else (want,)
            problem = ""
            if response.status_code not in wants:
                problem = f"answered {response.status_code}, expected {want} ({meaning})"
            elif meaning == "to the login page" and "/admin/login/" not in response["Location"]:
                problem = f"redirected to {response['Location']}, not to the login page"
            elif (
                before is not None
                and meaning != "allowed"
                and door is not Door.PUBLIC
                and (touched := changed(before, snapshot()))
            ):
                problem = f"was refused ({response.status_code}) yet changed {', '.join(touched)}"
            if problem:
                wrong.append(f"{who}: {method} {url} {problem}")
            transaction.set_rollback(True)
    assert not wrong, "\n".join(wrong)


OTHER_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@pytest.mark.django_db
@pytest.mark.parametrize("name", [name for name in ROUTES if not name.startswith("admin:")])
def test_a_path_refuses_the_methods_the_table_does_not_list(people, webhook_token, name):
    """So the table lists every method each path accepts: the superuser gets 405 for the others."""
    route = ROUTES[name]
    client = people.clients[Who(Kind.SUPERUSER, token=route.door is Door.API)]
    url = url_of(name, build_world())
    answers = {
        method: request(client, method, url, {}, route.door).status_code
        for method in OTHER_METHODS
        if method not in route.methods
    }
    assert all(status == 405 for status in answers.values()), answers


# --- Admin actions, through the changelist's POST ----------------------------------------------------

# Every action of every ModelAdmin, with the permission it needs. delete_selected needs the model's
# delete permission, which neither group holds, and is not offered at all on read-only records.
ACTIONS: dict[tuple[str, str], str] = {
    ("sync.queueitem", "requeue_selected"): "sync.replay_deadletter",
    ("sync.queueitem", "pause_entities"): "sync.pause_entity",
    ("sync.queueitem", "resume_entities"): "sync.pause_entity",
    ("sync.deadletter", "replay_selected"): "sync.replay_deadletter",
    ("sync.deadletter", "discard_selected"): "sync.discard_deadletter",
    ("sync.deadletter", "mark_fixed_selected"): "sync.discard_deadletter",
    ("sync.schemadrift", "acknowledge_selected"): "sync.change_schemadrift",
    ("alerts.alert", "acknowledge"): "alerts.acknowledge_alert",
    ("alerts.alert", "resolve"): "alerts.acknowledge_alert",
    ("alerts.alert", "silence_hour"): "alerts.acknowledge_alert",
    ("alerts.alert", "silence_day"): "alerts.acknowledge_alert",
    ("zoho.breakerstate", "reset_breaker"): "zoho.change_breakerstate",
    ("erp.customer", "erase_personal_data"): "erp.redact_contact",
    ("erp.vendor", "erase_personal_data"): "erp.redact_contact",
    ("django_q.success", "resubmit"): "django_q.change_success",
    ("django_q.failure", "resubmit"): "django_q.change_failure",
}
GROUP_HOLDS = {
    Kind.VIEWER: set(),
    Kind.OPERATOR: {
        "sync.replay_deadletter",
        "sync.discard_deadletter",
        "sync.pause_entity",
        "alerts.acknowledge_alert",
        "zoho.change_breakerstate",
        "sync.change_schemadrift",
        "erp.redact_contact",
    },
}


def every_action() -> Iterator[tuple[type, str]]:
    for model, model_admin in sorted(admin.site._registry.items(), key=lambda pair: pair[0]._meta.label_lower):
        if model_admin.actions is None:
            continue  # an admin that declares no actions (the API tokens') is offered none, not even delete
        for _func, name, _description in model_admin._get_base_actions():
            yield model, name


ADMIN_ACTIONS = list(every_action())


def may_act(kind: Kind, model: type, action: str) -> bool:
    if kind is Kind.SUPERUSER:
        return action != "delete_selected" or admin.site._registry[model].has_delete_permission(_root_request())
    if kind in (Kind.ANONYMOUS, Kind.MEMBER, Kind.STAFF):
        return False
    needed = ACTIONS.get((model._meta.label_lower, action))
    return needed in GROUP_HOLDS[kind]


def _root_request():
    root = User(is_superuser=True, is_staff=True, is_active=True)
    return type("Request", (), {"user": root})()


def arrange(model: type) -> list:
    """Rows to select, in a state the action changes: a dead-lettered row with its open dead letter,
    an open alert, an open breaker; two queue rows of entities one paused, one not."""
    if model is QueueItem:
        world = build_world()
        other = factories.queue_item("invoices", "9")
        queue.pause(["invoices"], actor=factories.actor())
        return [world.dead_letter.queue_item, other]
    if model is DeadLetter:
        return [build_world().dead_letter]
    if model is BreakerState:
        return [factories.breaker_state(state=BreakerState.State.OPEN)]
    return [factories.ADMIN_ROWS[model]()]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("model", "action"), ADMIN_ACTIONS, ids=[f"{m._meta.label_lower}.{a}" for m, a in ADMIN_ACTIONS]
)
def test_every_admin_action_runs_only_for_those_who_may_and_needs_the_csrf_token(people, model, action):
    label = model._meta.label_lower
    assert action == "delete_selected" or (label, action) in ACTIONS, (
        f"{label}: action {action} is not in ACTIONS of tests/test_permissions.py: name the permission it needs"
    )
    changelist = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    wrong = []
    for who in [*SESSIONS, Who(Kind.OPERATOR, token=True)]:
        with transaction.atomic():
            rows = arrange(model)
            data = {"action": action, "_selected_action": [str(row.pk) for row in rows], "post": "yes"}
            before = snapshot()
            response = people.clients[who].post(changelist, data)
            touched = changed(before, snapshot())
            allowed = not who.token and may_act(who.kind, model, action)
            if allowed and not touched:
                wrong.append(f"{who}: may {action} but nothing changed ({response.status_code})")
            if not allowed and touched:
                wrong.append(f"{who}: may not {action}, yet {', '.join(touched)} changed ({response.status_code})")
            offered = action in admin.site._registry[model].get_actions(_request_of(people, who))
            if offered != allowed:
                wrong.append(f"{who}: {action} is {'offered' if offered else 'not offered'} in the list")
            transaction.set_rollback(True)
    with transaction.atomic():
        rows = arrange(model)
        before = snapshot()
        data = {"action": action, "_selected_action": [str(row.pk) for row in rows], "post": "yes"}
        response = people.csrf_superuser.post(changelist, data)
        if response.status_code != 403 or changed(before, snapshot()):
            wrong.append(f"a POST without the CSRF token answered {response.status_code}")
        transaction.set_rollback(True)
    assert not wrong, "\n".join(wrong)


def _request_of(people: People, who: Who):
    user = AnonymousUser() if who.token or who.kind is Kind.ANONYMOUS else people.users[who.kind]
    user = User.objects.get(pk=user.pk) if user.pk else user  # a fresh copy: no cached permissions
    return type("Request", (), {"user": user, "GET": {}, "POST": {}})()


# --- CSRF on the dashboard's buttons and the admin's own forms ----------------------------------------

FORMS = ["dashboard:dead-letter-retry", "dashboard:dead-letter-discard", "dashboard:alert-acknowledge"]
ENTITY_FORMS = ["dashboard:entity-pause", "dashboard:entity-resume", "dashboard:run-start"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name", [*FORMS, *ENTITY_FORMS, "admin:alerts_alert_send_test", "admin:sync_queueitem_entities"]
)
def test_a_form_post_without_the_csrf_token_is_refused_and_changes_nothing(people, name):
    world = build_world()
    before = snapshot()
    response = people.csrf_superuser.post(url_of(name, world), {"channel": "slack"})
    assert response.status_code == 403
    assert changed(before, snapshot()) == []


# --- What each user is shown ---------------------------------------------------------------------------


def test_the_dashboard_shows_a_viewer_no_button_and_an_operator_every_one(people, db):
    world = build_world()
    buttons = [reverse(name, args=[world.alert.pk if "alert" in name else world.dead_letter.pk]) for name in FORMS]
    buttons += [reverse("dashboard:entity-pause", args=["products"]), reverse("dashboard:run-start")]
    as_viewer = people.clients[Who(Kind.VIEWER)].get(reverse("dashboard:index")).content.decode()
    as_operator = people.clients[Who(Kind.OPERATOR)].get(reverse("dashboard:index")).content.decode()
    assert [url for url in buttons if url in as_viewer] == []
    assert [url for url in buttons if url not in as_operator] == []


def test_a_dead_letters_admin_page_shows_only_the_buttons_its_user_may_press(people, db):
    world = build_world()
    url = reverse("admin:sync_deadletter_change", args=[world.dead_letter.pk])
    buttons = ['value="replay_selected"', 'value="discard_selected"', 'value="mark_fixed_selected"']
    as_viewer = people.clients[Who(Kind.VIEWER)].get(url).content.decode()
    as_operator = people.clients[Who(Kind.OPERATOR)].get(url).content.decode()
    assert [button for button in buttons if button in as_viewer] == []
    assert [button for button in buttons if button not in as_operator] == []


# --- The groups ------------------------------------------------------------------------------------------


def test_the_groups_are_made_on_a_database_without_permission_rows_and_making_them_again_changes_nothing(db):
    """As on a fresh database, where the migration runs before post_migrate has made any permission."""
    Group.objects.filter(name__in=[permissions.OPERATORS, permissions.VIEWERS]).delete()
    Permission.objects.filter(content_type__app_label__in=permissions.TDS_APPS).delete()
    state = MigrationExecutor(connection).loader.project_state(("dashboard", "0001_groups"), at_end=False)

    permissions.ensure_groups(state.apps)
    first = {g.name: sorted(g.permissions.values_list("codename", flat=True)) for g in Group.objects.all()}
    permissions.ensure_groups(state.apps)
    again = {g.name: sorted(g.permissions.values_list("codename", flat=True)) for g in Group.objects.all()}

    assert first == again
    operators, viewers = set(first[permissions.OPERATORS]), set(first[permissions.VIEWERS])
    custom = {"replay_deadletter", "discard_deadletter", "start_run", "pause_entity", "acknowledge_alert"}
    assert custom | {"redact_contact", "change_configuration", "view_deadletter"} <= operators
    assert {"view_deadletter", "view_alert", "view_configuration", "view_customer"} <= viewers
    assert [name for name in viewers if not name.startswith("view_")] == []
    assert [name for name in operators if name.startswith(("add_", "delete_"))] == []


def test_every_custom_permission_is_named_by_the_enum_and_listed_in_the_reference():
    reference = (Path(settings.BASE_DIR) / "docs" / "REFERENCE.md").read_text()
    declared = {
        f"{model._meta.app_label}.{codename}"
        for label in permissions.TDS_APPS
        for model in apps.get_app_config(label).get_models()
        for codename, _name in model._meta.permissions
    }
    assert sorted(declared - {str(perm) for perm in permissions.Perm}) == []
    assert [str(perm) for perm in permissions.Perm if f"`{perm}`" not in reference] == []
