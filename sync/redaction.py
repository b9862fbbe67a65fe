"""Erasure: a contact's personal data, gone from everything TDS Core keeps (`redact_contact`).

What is personal is a contact's name, e-mail, phone numbers and addresses: its own fields, those of
its contact persons and addresses, and the copies documents carry (an invoice's `customer_name`,
`email`, `billing_address`…). Two passes find them:

- **Where they sit.** Inside any JSON object about the contact — one whose `contact_id`,
  `customer_id` or `vendor_id` is its Zoho id, in a stored webhook body, a queue payload, a dead
  letter, an ERP row's `raw`, an archive — every personal key is blanked, however deep.
- **Wherever they were copied.** The distinctive values found that way (names, e-mails, phone
  numbers, street lines; never a city or a postcode, which would erase other people's data too)
  are then searched for as text in every text and JSON column of every table, and replaced: ERP
  columns, sync log lines, alert excerpts, the admin's history, the audit trail's before/after.

The audit trail is append-only; on PostgreSQL its trigger lets this path alone rewrite `before` and
`after`, inside the erasure's one transaction (`tds.redaction`). The erasure itself is audited:
a `redact` row naming the fields erased, never their values. The contact stays on the erasure
list, so a later webhook about it is redacted before it is stored (`redact_on_arrival`).
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Q
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast
from django.utils import timezone

from sync import entities
from sync.models import AuditTrail, ErasedContact, QueueItem
from tdscore.actions import Actor, record
from tdscore.enums import Action

REDACTED = "[redacted]"
# The keys of a contact's personal data whose values are distinctive enough to hunt for in every
# other column: names, e-mails, phone numbers, street lines.
SEARCHED_KEYS = frozenset(
    {"contact_name", "customer_name", "vendor_name", "first_name", "last_name", "attention"}
    | {"email", "phone", "mobile", "fax", "address", "street", "street2"}
)
# All of them, erased wherever an object about the contact holds them: also where it lives, which
# would erase other people's data if hunted across the database (a city, a postcode).
PERSONAL_KEYS = SEARCHED_KEYS | {
    "salutation",
    "contact_salutation",
    "city",
    "state",
    "zip",
    "county",
    "latitude",
    "longitude",
    "twitter",
    "facebook",
    "skype",
}
# A searched value shorter than this would match unrelated text ("Al", "12").
SHORTEST_SEARCHED = 4
# The ERP columns that copy a contact's personal keys (the ERP's own names for them).
ERP_COLUMNS = ("contact_name", "email", "phone")
ID_KEYS = ("contact_id", "customer_id", "vendor_id")
CONTACT_ENTITIES = ("customers", "vendors")
KEPT_FIELDS = (models.CharField, models.TextField, models.JSONField, models.BinaryField)


class UnknownContact(LookupError):
    pass


# --- The values -----------------------------------------------------------------------------------


def is_about(obj: dict[str, Any], ids: frozenset[str]) -> bool:
    return any(str(obj.get(key, "")) in ids for key in ID_KEYS)


def redact_objects(value: Any, ids: frozenset[str], *, erased: set[str], about: bool = False) -> Any:
    """`value` with every personal key blanked inside objects about `ids`; the keys blanked go to `erased`."""
    if isinstance(value, dict):
        about = about or is_about(value, ids)
        out = {}
        for key, item in value.items():
            if about and key in PERSONAL_KEYS and isinstance(item, str | int | float) and item not in ("", REDACTED):
                out[key] = REDACTED
                erased.add(key)
            else:
                out[key] = redact_objects(item, ids, erased=erased, about=about)
        return out
    if isinstance(value, list):
        return [redact_objects(item, ids, erased=erased, about=about) for item in value]
    return value


def personal_values(value: Any, ids: frozenset[str], found: set[str], *, about: bool = False) -> None:
    """Collect into `found` the searched values of the objects about `ids` inside `value`."""
    if isinstance(value, dict):
        about = about or is_about(value, ids)
        for key, item in value.items():
            if about and key in SEARCHED_KEYS and isinstance(item, str):
                if len(item.strip()) >= SHORTEST_SEARCHED and item != REDACTED:
                    found.add(item.strip())
            else:
                personal_values(item, ids, found, about=about)
    elif isinstance(value, list):
        for item in value:
            personal_values(item, ids, found, about=about)


def scrub_text(text: str, values: list[str]) -> str:
    for value in values:  # longest first: a full name goes before the first name inside it
        if value in text:
            text = text.replace(value, REDACTED)
    return text


def scrub(value: Any, values: list[str]) -> Any:
    if isinstance(value, str):
        return scrub_text(value, values)
    if isinstance(value, dict):
        return {scrub_text(k, values): scrub(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(item, values) for item in value]
    return value


@dataclass
class Eraser:
    """One erasure: the contact's ids, the values found so far, and what was changed."""

    zoho_id: str
    values: list[str] = field(default_factory=list)
    erased_keys: set[str] = field(default_factory=set)
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def ids(self) -> frozenset[str]:
        return frozenset({self.zoho_id})

    def learn(self, value: Any) -> None:
        found = set(self.values)
        personal_values(value, self.ids, found)
        self.values = sorted(found, key=len, reverse=True)

    def json(self, value: Any) -> Any:
        return scrub(redact_objects(value, self.ids, erased=self.erased_keys), self.values)

    def text(self, value: str) -> str:
        return scrub_text(value, self.values)

    def body(self, raw: bytes) -> bytes:
        """A stored webhook body: JSON is redacted as JSON (kept as sent where nothing changes)."""
        parsed = _json_body(raw)
        if isinstance(parsed, dict | list):
            redacted = self.json(parsed)
            return raw if redacted == parsed else json.dumps(redacted, ensure_ascii=False).encode()
        for value in self.values:
            raw = raw.replace(value.encode(), REDACTED.encode())
        return raw


def _json_body(raw: bytes) -> Any:
    """A stored body's JSON, or None for one that is not (a form, or what was rejected)."""
    try:
        return json.loads(raw)
    except ValueError:
        return None


# --- The database ---------------------------------------------------------------------------------


def _columns(model: type[models.Model]) -> list[models.Field]:
    return [f for f in model._meta.concrete_fields if not f.primary_key and isinstance(f, KEPT_FIELDS)]


def _models() -> Iterator[type[models.Model]]:
    for model in apps.get_models(include_auto_created=True):
        if model._meta.managed and not model._meta.proxy and _columns(model):
            yield model


def _holding(model: type[models.Model], needles: list[str]) -> models.QuerySet:
    """The rows of `model` with any needle in any of its text, JSON or binary columns."""
    rows = model._base_manager.all()
    wanted = Q()
    for f in _columns(model):
        for needle in needles:
            if isinstance(f, models.BinaryField):
                alias = f"_has_{f.column}_{len(wanted)}"
                if connection.vendor == "postgresql":
                    sql = f'position(%s::bytea in "{f.column}") > 0'
                else:
                    sql = f'instr("{f.column}", %s) > 0'
                rows = rows.annotate(**{alias: RawSQL(sql, [needle.encode()], output_field=models.BooleanField())})
                wanted |= Q(**{alias: True})
            elif isinstance(f, models.JSONField):
                alias = f"_text_{f.column}"
                if alias not in rows.query.annotations:
                    rows = rows.annotate(**{alias: Cast(f.name, models.TextField())})
                # JSON text escapes non-ASCII on some databases: look for the ASCII-safe spelling too.
                wanted |= Q(**{f"{alias}__contains": needle})
                escaped = json.dumps(needle)[1:-1]
                if escaped != needle:
                    wanted |= Q(**{f"{alias}__contains": escaped})
            else:
                wanted |= Q(**{f"{f.name}__contains": needle})
    return rows.filter(wanted).only("pk", *(f.name for f in _columns(model)))


def _rewrite(model: type[models.Model], row: models.Model, eraser: Eraser) -> bool:
    changes = {}
    for f in _columns(model):
        value = getattr(row, f.attname)
        if value is None:
            continue
        if isinstance(f, models.BinaryField):
            new = eraser.body(bytes(value))
        elif isinstance(f, models.JSONField):
            new = eraser.json(value)
        else:
            new = eraser.text(value)
            if f.max_length:
                new = new[: f.max_length]
        if new != value and not (isinstance(f, models.BinaryField) and new == bytes(value)):
            changes[f.attname] = new
    if changes:
        model._base_manager.filter(pk=row.pk).update(**changes)
    return bool(changes)


def _sweep(eraser: Eraser, needles: list[str], *, learn: bool, progress: Callable[[str], None]) -> None:
    for model in _models():
        label = model._meta.db_table
        progress(label)
        for row in _holding(model, needles).iterator(chunk_size=500):
            if learn:
                for f in _columns(model):
                    value = getattr(row, f.attname)
                    if isinstance(f, models.JSONField):
                        eraser.learn(value)
                    elif isinstance(f, models.BinaryField) and value is not None:
                        eraser.learn(_json_body(bytes(value)))
                continue
            if _rewrite(model, row, eraser):
                eraser.rows[label] = eraser.rows.get(label, 0) + 1


def _erp_values(eraser: Eraser) -> set[str]:
    """The contact's ERP columns, as its row holds them and as every audit copy held them, are
    personal values too, even where no stored body shows them any more; returns the columns held."""
    found, columns = set(eraser.values), set()
    states = []
    for slug in CONTACT_ENTITIES:
        model = apps.get_model(entities.get(slug).erp_model)
        states += model._base_manager.filter(zoho_id=eraser.zoho_id).values(*ERP_COLUMNS)
    for before, after in AuditTrail.objects.filter(entity__in=CONTACT_ENTITIES, object_id=eraser.zoho_id).values_list(
        "before", "after"
    ):
        states += [state for state in (before, after) if isinstance(state, dict)]
    for state in states:
        for column in ERP_COLUMNS:
            value = state.get(column)
            if isinstance(value, str) and value.strip() and value != REDACTED:
                columns.add(column)
                if len(value.strip()) >= SHORTEST_SEARCHED:
                    found.add(value.strip())
    eraser.values = sorted(found, key=len, reverse=True)
    return columns


def _archive_row(row: dict[str, Any], eraser: Eraser) -> dict[str, Any]:
    out = {}
    for key, value in row.items():
        if key == "raw_body" and isinstance(value, str):
            try:
                out[key] = base64.b64encode(eraser.body(base64.b64decode(value, validate=True))).decode()
                continue
            except binascii.Error:
                pass
        out[key] = eraser.json(value)
    return out


def redact_archives(directories: Iterable[Path], eraser: Eraser, *, progress: Callable[[str], None]) -> int:
    """Rewrite every `cleanup --archive` file that holds the contact; returns how many were rewritten."""
    rewritten = 0
    for directory in directories:
        for path in sorted(Path(directory).glob("*.jsonl.gz")):
            progress(str(path))
            with gzip.open(path, "rt", encoding="utf-8") as lines:
                rows = [json.loads(line) for line in lines]
            for row in rows:
                eraser.learn(row)
            redacted = [_archive_row(row, eraser) for row in rows]
            if redacted == rows:
                continue
            partial = path.with_name(path.name + ".partial")
            with open(partial, "wb") as raw:
                with gzip.open(raw, "wt", encoding="utf-8") as out:
                    for row in redacted:
                        out.write(json.dumps(row, ensure_ascii=False) + "\n")
                raw.flush()
                os.fsync(raw.fileno())
            os.replace(partial, path)
            rewritten += 1
    return rewritten


def steps(archives: Iterable[Path]) -> int:
    """How many times `erase` calls its `progress`: each table four times (two sweeps of a read
    and a rewrite each), and each archive file once."""
    files = sum(1 for directory in archives for _ in Path(directory).glob("*.jsonl.gz"))
    return 4 * sum(1 for _ in _models()) + files


def _archives_learn(directories: Iterable[Path], eraser: Eraser) -> None:
    for directory in directories:
        for path in sorted(Path(directory).glob("*.jsonl.gz")):
            with gzip.open(path, "rt", encoding="utf-8") as lines:
                for line in lines:
                    if eraser.zoho_id in line:
                        eraser.learn(json.loads(line))


# --- The erasure ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Erasure:
    zoho_id: str
    fields: list[str]
    rows: dict[str, int]
    archives_rewritten: int


def known(zoho_id: str) -> bool:
    """A contact TDS Core has seen: an ERP row, a queue row or a stored webhook of it."""
    from_erp = any(
        apps.get_model(entities.get(slug).erp_model)._base_manager.filter(zoho_id=zoho_id).exists()
        for slug in CONTACT_ENTITIES
    )
    return from_erp or QueueItem.objects.filter(entity__in=CONTACT_ENTITIES, object_id=zoho_id).exists()


def erase(
    zoho_id: str,
    *,
    actor: Actor,
    archives: Iterable[Path] = (),
    progress: Callable[[str], None] = lambda label: None,
) -> Erasure:
    """Erase the contact's personal data everywhere; raises UnknownContact for an id never seen.

    One transaction for the database (all or nothing), then the archives. The contact joins the
    erasure list inside it; webhook receivers learn of the list within TDS_CONFIG_CACHE_SECONDS, so
    the database is swept once more after that, for what arrived in between.
    """
    zoho_id = zoho_id.strip()
    if not zoho_id or not known(zoho_id):
        raise UnknownContact(f"no contact with Zoho id {zoho_id!r} in the ERP or the queue")
    archives = [Path(d) for d in archives]
    eraser = Eraser(zoho_id)
    _archives_learn(archives, eraser)
    now = timezone.now()
    with transaction.atomic():
        columns = _sweep_database(eraser, progress)
        fields = sorted(eraser.erased_keys | columns)
        slug, row = _filed_as(zoho_id)
        ErasedContact.objects.update_or_create(
            zoho_id=zoho_id, defaults={"requested_by": actor.name, "at": now, "fields": fields}
        )
        AuditTrail.objects.create(
            entity=slug,
            object_id=zoho_id,
            operation=AuditTrail.Operation.REDACT,
            changed_fields=fields,
            actor=actor.name,
            at=now,
        )
        record(
            actor,
            Action.REDACT,
            f"contact {zoho_id}",
            after={"fields": fields, "rows": dict(eraser.rows)},
            at=now,
            obj=row,
        )
    forget_cached()
    rewritten = redact_archives(archives, eraser, progress=progress)
    time.sleep(settings.TDS_CONFIG_CACHE_SECONDS)
    with transaction.atomic():
        _sweep_database(eraser, progress)
    return Erasure(zoho_id, fields, dict(eraser.rows), rewritten)


def _sweep_database(eraser: Eraser, progress: Callable[[str], None]) -> set[str]:
    with _audit_rewritable():
        columns = _erp_values(eraser)
        _sweep(eraser, [eraser.zoho_id], learn=True, progress=progress)
        _sweep(eraser, [eraser.zoho_id, *eraser.values], learn=False, progress=progress)
    return columns


@contextmanager
def _audit_rewritable() -> Iterator[None]:
    """The audit trail's trigger lets this block, and only it, rewrite before/after (PostgreSQL).

    Set for the transaction and switched off again at the end of the block, so an erasure run
    inside a longer transaction leaves the rest of it as append-only as ever.
    """
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('tds.redaction', 'on', true)")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('tds.redaction', 'off', true)")


def _filed_as(zoho_id: str) -> tuple[str, models.Model | None]:
    """The entity the contact is filed under and its ERP row (none yet: only queued)."""
    for slug in CONTACT_ENTITIES:
        row = apps.get_model(entities.get(slug).erp_model)._base_manager.filter(zoho_id=zoho_id).first()
        if row is not None:
            return slug, row
    return CONTACT_ENTITIES[0], None


# --- On arrival -----------------------------------------------------------------------------------

_erased: frozenset[str] = frozenset()
_erased_at = float("-inf")


def erased_ids() -> frozenset[str]:
    """The erasure list, read at most once per TDS_CONFIG_CACHE_SECONDS in a process."""
    global _erased, _erased_at
    if time.monotonic() - _erased_at > settings.TDS_CONFIG_CACHE_SECONDS:
        _erased, _erased_at = frozenset(ErasedContact.objects.values_list("zoho_id", flat=True)), time.monotonic()
    return _erased


def forget_cached() -> None:
    global _erased_at
    _erased_at = float("-inf")


def on_arrival(obj: Any) -> tuple[Any, bool]:
    """A received object with the personal keys of erased contacts blanked, and whether any was."""
    ids = erased_ids()
    if not ids:
        return obj, False
    erased: set[str] = set()
    out = redact_objects(obj, ids, erased=erased)
    return out, bool(erased)
