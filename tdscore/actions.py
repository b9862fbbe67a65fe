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

from django.contrib.auth.models import AbstractBaseUser
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from tdscore.enums import Action
from tdscore.models import OperatorAction

Via = OperatorAction.Via


@dataclass(frozen=True)
class Actor:
    """Who acts, and through which door."""

    name: str
    via: Via
    user: AbstractBaseUser | None = None

    @classmethod
    def of_user(cls, user: AbstractBaseUser, via: Via) -> Actor:
        return cls(user.get_username(), via, user)

    @classmethod
    def command(cls) -> Actor:
        """A management command: the system user who ran it, on this host."""
        return cls(f"{getpass.getuser()}@{socket.gethostname()}", Via.COMMAND)

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
) -> OperatorAction:
    """Write one action row."""
    return OperatorAction.objects.create(
        at=at or timezone.now(),
        actor=actor.name[:150],
        user=actor.user,
        via=actor.via,
        action=Action(action),
        target=str(target)[:200],
        before=_json(before),
        after=_json(after),
    )
