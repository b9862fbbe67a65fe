"""What a replay would do, before it is done: each dead letter applied inside a transaction that is
rolled back.

The dead letters are applied one after the other through the apply path itself
(`sync.handlers.apply_batch`), in the order a replay sends them back, in ONE transaction, so each
sees what the ones before it would have written, as the drain would (two dead letters of one
object: the second is judged against the first). Each runs in a savepoint of its own, so one that
fails again is undone alone, as the drain leaves a failing row on its own. Then everything is rolled
back: ERP rows, lines, audit rows, schema drift, dead letters the apply would resolve. What each
came to is read from the audit row the apply wrote: the fields that change, before and after.

The transaction holds the ERP rows it touches locked until it ends, as a drain's batch does, so a
preview of thousands of dead letters keeps drainers of those rows waiting for as long.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from django.db import transaction

from sync import queue
from sync.handlers import ApplyOutcome, apply_batch
from sync.models import AuditTrail, DeadLetter, QueueItem


class Outcome(StrEnum):
    APPLY = "apply"  # the ERP row would change as `changes` says
    UNCHANGED = "unchanged"  # it holds this content already (or a detail of the same version)
    STALE = "stale"  # it holds a newer version
    FAIL = "fail"  # the apply would fail again, or the dead letter cannot be replayed: `error` says why


OUTCOMES = {
    ApplyOutcome.APPLIED: Outcome.APPLY,
    ApplyOutcome.UNCHANGED: Outcome.UNCHANGED,
    ApplyOutcome.SUMMARY: Outcome.UNCHANGED,
    ApplyOutcome.STALE: Outcome.STALE,
}


@dataclass(frozen=True)
class Preview:
    dead_letter_id: int
    entity: str
    object_id: str
    outcome: Outcome
    changes: dict[str, list[Any]] = field(default_factory=dict)  # field -> [before, after]
    error: str = ""
    # False: a replay would refuse it (resolved meanwhile, or no queue row), not fail at the apply.
    replayable: bool = True

    @property
    def summary(self) -> str:
        """The outcome in words, as the command and the admin's confirmation page show it."""
        match self.outcome:
            case Outcome.APPLY:
                return f"would apply: {len(self.changes)} field(s) change"
            case Outcome.FAIL if self.replayable:
                return f"would fail again: {self.error}"
            case Outcome.FAIL:
                return f"cannot be replayed: {self.error}"
            case Outcome.STALE:
                return "would be skipped as stale: the ERP holds a newer version"
            case _:
                return "would change nothing: the ERP holds this already"

    def shown_changes(self) -> list[tuple[str, str, str]]:
        """Each change as (field, before, after) in JSON text, a long value cut short."""
        return [(name, _shown(before), _shown(after)) for name, (before, after) in self.changes.items()]

    def as_dict(self) -> dict[str, Any]:
        return {
            "dead_letter_id": self.dead_letter_id,
            "entity": self.entity,
            "object_id": self.object_id,
            "outcome": str(self.outcome),
            "changes": self.changes,
            "error": self.error,
        }


def preview(dead_letters: Iterable[DeadLetter], *, now: datetime) -> list[Preview]:
    """What replaying `dead_letters` (in primary-key order) and draining them would do; writes nothing.

    Every dead letter is checked first, then applied, as a replay sends them all back before the
    drain applies any: an apply may resolve a later dead letter it overtakes, which must not make
    that one look unreplayable.
    """
    dead_letters = sorted(dead_letters, key=lambda d: d.pk)
    with transaction.atomic():
        items: dict[int, QueueItem | queue.DeadLetterError] = {}
        for dead_letter in dead_letters:
            try:
                items[dead_letter.pk] = queue.check_replay(dead_letter)
            except queue.DeadLetterError as exc:
                items[dead_letter.pk] = exc
        previews = [_one(dead_letter, items[dead_letter.pk], now) for dead_letter in dead_letters]
        transaction.set_rollback(True)
    return previews


def _one(dead_letter: DeadLetter, item: QueueItem | queue.DeadLetterError, now: datetime) -> Preview:
    if isinstance(item, queue.DeadLetterError):
        return _preview(dead_letter, Outcome.FAIL, error=str(item), replayable=False)
    try:
        with transaction.atomic():
            outcome = apply_batch([item], now=now)[item.pk]
    except Exception as exc:
        return _preview(dead_letter, Outcome.FAIL, error=f"{type(exc).__name__}: {exc}")
    return _preview(dead_letter, OUTCOMES[outcome], changes=_changes(item) if outcome == ApplyOutcome.APPLIED else {})


def _changes(item: QueueItem) -> dict[str, list[Any]]:
    """The fields the apply changed on the dead letter's own object, from the audit row it wrote."""
    audit = (
        AuditTrail.objects.filter(queue_item_id=item.pk, entity=item.entity, object_id=item.object_id)
        .order_by("-pk")
        .first()
    )
    if audit is None:
        return {}
    before, after = audit.before or {}, audit.after or {}
    return {name: [before.get(name), after.get(name)] for name in audit.changed_fields}


# A value as a person reads it: whole up to this length (a document's lines can run to pages).
SHOWN_CHARS = 200


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


def _preview(dead_letter: DeadLetter, outcome: Outcome, **fields: Any) -> Preview:
    return Preview(dead_letter.pk, dead_letter.entity, dead_letter.object_id, outcome, **fields)
