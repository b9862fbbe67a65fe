"""The operator action log: one row for each thing an operator does, whichever door it came through.

Every action function below the doors (replay, discard, configuration, pause…) takes an `Actor` and
calls `record` inside its own transaction, so the row exists exactly when the action happened.
"""

from __future__ import annotations

import getpass
import json
import socket
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import AbstractBaseUser
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone

from tdscore.enums import Action
from tdscore.models import OperatorAction

Via = OperatorAction.Via
# Every column that names who acted holds this many characters (a username's own limit).
NAME_LENGTH = OperatorAction._meta.get_field("actor").max_length


@dataclass(frozen=True)
class Actor:
    """Who acts, and through which door."""

    name: str
    # None: a part of TDS Core itself (heal, the engine), not an operator: see `process`.
    via: Via | None
    user: AbstractBaseUser | None = None

    @classmethod
    def of_user(cls, user: AbstractBaseUser, via: Via) -> Actor:
        return cls(user.get_username(), via, user)

    @classmethod
    def of_request(cls, request, via: Via) -> Actor:
        """The request's user; one who came with an API token is named so (`alice (token)`), since a
        token may sit in a script long after its owner last logged in."""
        actor = cls.of_user(request.user, via)
        if getattr(request, "auth", None) is not None:  # DRF sets it for token logins, None for sessions
            return cls(f"{actor.name} (token)", via, request.user)
        return actor

    @classmethod
    def command(cls) -> Actor:
        """A management command: the system user who ran it, on this host."""
        return cls(f"{getpass.getuser()}@{socket.gethostname()}", Via.COMMAND)

    @classmethod
    def process(cls, name: str) -> Actor:
        """TDS Core acting on its own (heal redriving a dead letter): the stamped columns name it, but
        it is no operator's action, so `record` writes no row for it."""
        return cls(name, None)

    def __post_init__(self) -> None:
        # A username at its limit plus " (token)" would not fit the stamped columns: cut once here.
        object.__setattr__(self, "name", self.name[:NAME_LENGTH])

    def __str__(self) -> str:
        return self.name


def _json(value: Any) -> Any:
    """A value as JSON stores it (dates, decimals and UUIDs as DjangoJSONEncoder writes them)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def record(
    actor: Actor,
    action: Action,
    target: str = "",
    *,
    before: Any = None,
    after: Any = None,
    at: datetime | None = None,
    obj: models.Model | None = None,
) -> OperatorAction | None:
    """Write one action row (none for a `process` actor).

    `obj`, the model row acted on, also goes to Django's admin history (a LogEntry) when a user
    acted, so the row's "History" in the admin lists what was done to it from any door.
    """
    if actor.via is None:
        return None
    row = OperatorAction.objects.create(
        at=at or timezone.now(),
        actor=actor.name,
        user=actor.user,
        via=actor.via,
        action=Action(action),
        target=str(target)[:200],
        before=_json(before),
        after=_json(after),
    )
    if obj is not None and actor.user is not None:
        _admin_history(actor, row, obj)
    return row


def _admin_history(actor: Actor, row: OperatorAction, obj: models.Model) -> None:
    LogEntry.objects.log_actions(
        actor.user.pk,
        [obj],
        CHANGE,
        change_message=f"{row.action} via {row.via}" + (f": {row.target}" if row.target else ""),
        single_object=True,
    )
