"""Plain builders with overridable defaults."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from django.apps import apps as django_apps
from django.contrib.auth.models import Group, User
from django.db.models import DecimalField
from django.utils import timezone
from django_q.models import Failure, OrmQ, Schedule, Success, Task
from django_q.signing import SignedPackage
from rest_framework.authtoken.models import Token, TokenProxy

from alerts.models import Alert, AlertDelivery, AlertSilence
from erp.models import ZohoRecord
from sync import queue
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
from sync.payloads import content_hash
from sync.zoho.models import BreakerState, LimiterState, ZohoCall, ZohoToken
from tdscore.actions import Actor, Via, record
from tdscore.enums import Action
from tdscore.models import Configuration, Metric, OperatorAction


def product_payload(item_id: str = "1001", **fields: Any) -> dict[str, Any]:
    return {
        "item_id": item_id,
        "name": f"Widget {item_id}",
        "sku": f"W-{item_id}",
        "rate": 10.5,
        "status": "active",
        "last_modified_time": "2026-11-01T10:00:00+0000",
        **fields,
    }


def inbox_event(entity: str = "products", **fields: Any) -> InboxEvent:
    defaults = {
        "entity": entity,
        "source": InboxEvent.Source.TOKEN,
        "method": "POST",
        "raw_body": b"{}",
        "idempotency_key": f"test:{InboxEvent.objects.count()}:{timezone.now().timestamp()}",
        "content_hash": "0" * 64,
    }
    return InboxEvent.objects.create(**{**defaults, **fields})


def queue_item(
    entity: str = "products",
    object_id: str = "1001",
    *,
    payload: dict[str, Any] | None = None,
    version: datetime | None = datetime(2026, 11, 1, 10, tzinfo=UTC),
    now: datetime | None = None,
    **fields: Any,
) -> QueueItem:
    """A pending queue row made the way the webhook view and pulls make them (`queue.enqueue`)."""
    payload = payload if payload is not None else product_payload(object_id)
    return queue.enqueue(
        entity=entity,
        object_id=object_id,
        payload=payload,
        content_hash=content_hash(payload),
        version=version,
        source=fields.pop("source", QueueItem.Source.WEBHOOK),
        now=now or timezone.now(),
        **fields,
    )


# --- One row of every model the admin shows (tests/test_admin.py loads its pages with these).
# Registering a model in the admin? Add a builder here with @builds(Model), or that test fails.
ADMIN_ROWS: dict[type, Callable[[], Any]] = {}


def builds(model: type) -> Callable:
    def register(builder: Callable) -> Callable:
        ADMIN_ROWS[model] = builder
        return builder

    return register


@builds(Configuration)
def configuration_row() -> Configuration:
    return Configuration.objects.get(key="batch_size")  # seeded by the migrations


def actor(name: str = "ops", via: Via = Via.COMMAND, user: User | None = None) -> Actor:
    return Actor(name, via, user)


@builds(OperatorAction)
def operator_action(action: Action = Action.CONFIG_CHANGE, target: str = "batch_size", **fields: Any) -> OperatorAction:
    return record(actor(), action, target, **{"before": 100, "after": 200, **fields})


@builds(Metric)
def metric(name: str = "tds_queue_depth", value: float = 3, **fields: Any) -> Metric:
    return Metric.objects.create(name=name, value=value, labels={"entity": "products"}, **fields)


ADMIN_ROWS[InboxEvent] = inbox_event
ADMIN_ROWS[QueueItem] = queue_item


@builds(SyncRun)
def sync_run(entity: str = "products", **fields: Any) -> SyncRun:
    defaults = {"run_type": SyncRun.RunType.INCREMENTAL, "status": SyncRun.Status.COMPLETED, "fetched": 200}
    return SyncRun.objects.create(entity=entity, **{**defaults, **fields})


@builds(SchemaDrift)
def schema_drift(entity: str = "invoices", path: str = "loyalty_tier", **fields: Any) -> SchemaDrift:
    return SchemaDrift.objects.create(entity=entity, path=path, example_object_id="1001", **fields)


@builds(DeadLetter)
def dead_letter(**fields: Any) -> DeadLetter:
    item = fields.pop("queue_item", None) or queue_item()
    defaults = {
        "entity": item.entity,
        "object_id": item.object_id,
        "payload": item.payload,
        "reason": DeadLetter.Reason.RETRIES_EXHAUSTED,
        "error": "Zoho answered 500",
        "error_class": "ZohoError",
        "attempts": 3,
    }
    return DeadLetter.objects.create(queue_item=item, inbox_event=item.inbox_event, **{**defaults, **fields})


@builds(ParentWait)
def parent_wait(parent_entity: str = "customers", parent_id: str = "4815000000044001", **fields: Any) -> ParentWait:
    defaults = {"child_tables": ["erp_invoice"], "example_child": "invoices 4815000000051234"}
    return ParentWait.objects.create(parent_entity=parent_entity, parent_id=parent_id, **{**defaults, **fields})


@builds(SyncLog)
def sync_log(message: str = "page 1 queued", **fields: Any) -> SyncLog:
    return SyncLog.objects.create(sync_run=fields.pop("sync_run", None) or sync_run(), message=message, **fields)


@builds(SyncCursor)
def sync_cursor(entity: str = "products", **fields: Any) -> SyncCursor:
    run = fields.pop("last_run", None) or sync_run(entity)
    defaults = {"run_type": run.run_type, "watermark": timezone.now(), "last_run_at": timezone.now()}
    return SyncCursor.objects.create(entity=entity, last_run=run, **{**defaults, **fields})


@builds(AuditTrail)
def audit_row(entity: str = "products", object_id: str = "1001", **fields: Any) -> AuditTrail:
    defaults = {"operation": AuditTrail.Operation.CREATE, "after": product_payload(object_id), "source": "webhook"}
    return AuditTrail.objects.create(entity=entity, object_id=object_id, **{**defaults, **fields})


@builds(ErasedContact)
def erased_contact(zoho_id: str = "460000000077001", **fields: Any) -> ErasedContact:
    return ErasedContact.objects.create(zoho_id=zoho_id, requested_by="operator", fields=["email"], **fields)


@builds(WorkerHeartbeat)
def worker_heartbeat(worker_id: str = "host:1", **fields: Any) -> WorkerHeartbeat:
    return WorkerHeartbeat.objects.create(worker_id=worker_id, **{"hostname": "host", "pid": 1, **fields})


@builds(Alert)
def alert(rule: str = "queue_backlog", **fields: Any) -> Alert:
    defaults = {
        "fingerprint": f"{rule}:products",
        "severity": Alert.Severity.WARNING,
        "title": "Queue backlog over threshold",
        "value": 1200,
        "threshold": 1000,
    }
    row = Alert.objects.create(rule=rule, **{**defaults, **fields})
    AlertDelivery.objects.create(alert=row, channel="email")
    return row


@builds(AlertSilence)
def alert_silence(rule: str = "queue_backlog", **fields: Any) -> AlertSilence:
    return AlertSilence.objects.create(rule=rule, until=timezone.now() + timedelta(hours=1), **fields)


def erp_row(model: type[ZohoRecord], zoho_id: str = "4815000000044208", **fields: Any) -> ZohoRecord:
    """A row of any ERP model, with one line (item 1001, every amount 1) when the model has lines."""
    row = model.objects.create(zoho_id=zoho_id, synced_at=timezone.now(), **fields)
    lines = next((r for r in model._meta.related_objects if r.get_accessor_name() == "lines"), None)
    if lines is not None:
        line_model = lines.related_model
        amounts = {f.name: Decimal(1) for f in line_model._meta.fields if isinstance(f, DecimalField)}
        ids = {
            f.name: "1001" for f in line_model._meta.fields if f.name in ("item_id", "invoice_id") and not f.is_relation
        }
        line_model.objects.create(**{lines.field.name: row, **amounts, **ids})
    return row


for _model in django_apps.get_app_config("erp").get_models():
    if issubclass(_model, ZohoRecord):
        ADMIN_ROWS[_model] = partial(erp_row, _model)


@builds(User)
def user(username: str = "clerk", **fields: Any) -> User:
    # No password: hashing one costs half a second; tests log in with force_login.
    return User.objects.create_user(username, f"{username}@example.com", None, **fields)


@builds(Group)
def group(name: str = "operators") -> Group:
    return Group.objects.create(name=name)


@builds(TokenProxy)
def api_token() -> TokenProxy:
    return TokenProxy.objects.get(pk=Token.objects.create(user=user("integrator")).pk)


@builds(Schedule)
def q_schedule(name: str = "drain-watchdog", **fields: Any) -> Schedule:
    defaults = {"func": "sync.tasks.watchdog", "schedule_type": Schedule.MINUTES, "minutes": 1}
    return Schedule.objects.create(name=name, **{**defaults, **fields})


def q_task(model: type[Task], name: str = "drain", **fields: Any) -> Task:
    now = timezone.now()
    defaults = {"func": "sync.tasks.drain", "started": now, "stopped": now, "result": None}
    return model.objects.create(id=uuid.uuid4().hex, name=name, success=model is Success, **{**defaults, **fields})


ADMIN_ROWS[Success] = partial(q_task, Success)
ADMIN_ROWS[Failure] = partial(q_task, Failure)


@builds(OrmQ)
def q_queued(name: str = "drain") -> OrmQ:
    payload = SignedPackage.dumps({"id": uuid.uuid4().hex, "name": name, "func": "sync.tasks.drain", "group": None})
    return OrmQ.objects.create(key="tdscore", payload=payload, lock=timezone.now())


@builds(ZohoToken)
def zoho_token(**fields: Any) -> ZohoToken:
    now = timezone.now()
    defaults = {"account": "0" * 64, "access_token": "1000.secret", "expires_at": now + timedelta(hours=1)}
    return ZohoToken.objects.create(**{**defaults, "refreshed_at": now, **fields})


@builds(ZohoCall)
def zoho_call(path: str = "/books/v3/items", **fields: Any) -> ZohoCall:
    now = timezone.now()
    defaults = {"organization_id": "60012345", "started_at": now, "lease_until": now, "finished_at": now}
    return ZohoCall.objects.create(path=path, **{**defaults, "outcome": "ok", "status": 200, **fields})


@builds(LimiterState)
def limiter_state(organization_id: str = "60012345", **fields: Any) -> LimiterState:
    return LimiterState.objects.create(organization_id=organization_id, **{"calls_today": 12, **fields})


@builds(BreakerState)
def breaker_state(organization_id: str = "60012345", **fields: Any) -> BreakerState:
    return BreakerState.objects.create(organization_id=organization_id, **fields)
