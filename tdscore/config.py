"""Typed runtime configuration: the mechanism, not the keys.

Each app declares the keys it reads as module-level constants in its `config_keys` module
(`BATCH_SIZE = Key("batch_size", KeyType.INT, 100, ...)`); a Key registers itself when it is
defined, and each app's `AppConfig.ready()` imports its module, so the registry is complete before
`post_migrate` creates the rows and before the admin or the API lists them. Code reads a key by
its constant, `config.get(BATCH_SIZE)`: a misspelt key is an ImportError or a NameError when the
module loads, not a surprise at run time. The admin and the API, which receive names, look keys up
in `REGISTRY`.

Rows in `tds_configuration` override the defaults; a process keeps a copy for
`TDS_CONFIG_CACHE_SECONDS`, so a change made anywhere is seen everywhere within about a second,
without a restart, and one made in this process is seen at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from croniter import croniter
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from tdscore import actions
from tdscore.actions import Actor
from tdscore.enums import Action
from tdscore.models import Configuration


class ConfigError(ValueError):
    """A key that does not exist, or a value of the wrong type or out of range."""


class KeyType(StrEnum):
    """How a key's value is checked; stored as text in `tds_configuration.value_type`."""

    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    STR = "str"  # one of `choices`, when given
    CRON = "cron"
    SLUGS = "slugs"  # a set of names, each one of `choices`, stored sorted
    INTS = "ints"  # a list of whole numbers; min and max apply to each


# Every declared key by name, filled as the apps' `config_keys` modules are imported.
REGISTRY: dict[str, Key] = {}


# eq=False: a key is its own identity (hashable, usable as a dict key), whatever its default holds.
@dataclass(frozen=True, eq=False)
class Key:
    name: str
    type: KeyType
    default: Any
    category: str
    description: str
    min: float | None = None
    max: float | None = None
    # The allowed values of a STR or SLUGS key: a tuple, or a callable returning them, called when a
    # value is checked, so the app that declares the key supplies them without tdscore knowing it.
    choices: tuple[str, ...] | Callable[[], Iterable[str]] | None = None
    # What the items of a SLUGS key are called in a refusal ("unknown entities widgets").
    items: str = "values"

    def __post_init__(self) -> None:
        if not isinstance(self.type, KeyType):
            object.__setattr__(self, "type", KeyType(self.type))
        if self.name in REGISTRY:
            raise ConfigError(f"configuration key {self.name!r} is declared twice")
        self.validate(self.default)  # a default its own key refuses is a mistake in the declaration
        REGISTRY[self.name] = self

    def __repr__(self) -> str:
        return f"<Key {self.name}>"

    def allowed(self) -> tuple[str, ...] | None:
        if self.choices is None:
            return None
        return tuple(self.choices() if callable(self.choices) else self.choices)

    def validate(self, value: Any) -> Any:
        """Return `value` in this key's type, or raise ConfigError saying what is wrong."""
        checker = getattr(self, f"_check_{self.type.value}")
        value = checker(value)
        if self.type == KeyType.INTS:
            return value  # each item was checked against the range
        return self._in_range(value)

    def _in_range(self, value: Any) -> Any:
        if self.min is not None and value < self.min:
            raise ConfigError(f"{self.name}: {value} is below the minimum {self.min:g}")
        if self.max is not None and value > self.max:
            raise ConfigError(f"{self.name}: {value} is above the maximum {self.max:g}")
        return value

    def _check_int(self, value: Any) -> int:
        # bool is an int in Python; `true` for a count is a mistake, not 1.
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, str) and value.strip().lstrip("-").isdigit():
                return int(value)
            raise ConfigError(f"{self.name}: expected a whole number, got {value!r}")
        return value

    def _check_float(self, value: Any) -> float:
        if isinstance(value, bool):
            raise ConfigError(f"{self.name}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{self.name}: expected a number, got {value!r}") from None

    def _check_bool(self, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false"}:
            return value.lower() == "true"
        raise ConfigError(f"{self.name}: expected true or false, got {value!r}")

    def _check_str(self, value: Any) -> str:
        if not isinstance(value, str):
            raise ConfigError(f"{self.name}: expected text, got {value!r}")
        allowed = self.allowed()
        if allowed and value not in allowed:
            raise ConfigError(f"{self.name}: {value!r} is not one of {', '.join(allowed)}")
        return value

    def _check_cron(self, value: Any) -> str:
        if not isinstance(value, str) or not croniter.is_valid(value):
            raise ConfigError(f"{self.name}: {value!r} is not a valid cron expression")
        return value

    def _check_ints(self, value: Any) -> list[int]:
        """A list of whole numbers (or "15,60,360"), each within min and max, which apply per item."""
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list) or not value:
            raise ConfigError(f"{self.name}: expected a list of whole numbers, got {value!r}")
        return [self._in_range(self._check_int(item)) for item in value]

    def _check_slugs(self, value: Any) -> list[str]:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{self.name}: expected a list of {self.items}, got {value!r}")
        allowed = self.allowed()
        unknown = sorted(set(value) - set(allowed)) if allowed is not None else []
        if unknown:
            raise ConfigError(f"{self.name}: unknown {self.items} {', '.join(unknown)}")
        return sorted(set(value))


def key_named(name: str) -> Key:
    """The registered key called `name` (for the admin and the API, which receive names)."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown configuration key {name!r}") from None


def _registered(key: Key) -> Key:
    if isinstance(key, Key) and REGISTRY.get(key.name) is key:
        return key
    if isinstance(key, str) and key in REGISTRY:
        raise ConfigError(f"read configuration key {key!r} by its constant from its app's config_keys")
    raise ConfigError(f"unknown configuration key {key!r}")


_lock = threading.Lock()
_cache: dict[str, Any] = {}
_loaded_at = float("-inf")


def _load() -> dict[str, Any]:
    stored = dict(Configuration.objects.values_list("key", "value"))
    return {name: stored.get(name, key.default) for name, key in REGISTRY.items()}


def get(key: Key) -> Any:
    """The current value of a key: stored row, else its default."""
    global _cache, _loaded_at
    name = _registered(key).name
    if time.monotonic() - _loaded_at > settings.TDS_CONFIG_CACHE_SECONDS or name not in _cache:
        with _lock:
            _cache, _loaded_at = _load(), time.monotonic()
    return _cache[name]


def invalidate() -> None:
    global _loaded_at
    _loaded_at = float("-inf")


def update_many(values: Mapping[Key | str, Any], *, actor: Actor | None = None, logged: bool = True) -> dict[str, Any]:
    """Validate every value first, then store them all in one transaction (all or nothing).

    Keys are constants, or names as the admin and the API receive them; the answer is by name.
    With an `actor` (an operator, from any door), each key whose value changed is one row of the
    action log, old and new value; without one (TDS Core's own settings, tests) nothing is logged.
    `logged=False`: the caller records the action in its own words (a pause is not a key's edit).
    """
    keys = {}
    unknown = []
    for key in values:
        try:
            keys[key] = key_named(key) if isinstance(key, str) else _registered(key)
        except ConfigError:
            unknown.append(str(key))
    if unknown:
        raise ConfigError(f"unknown configuration keys: {', '.join(sorted(unknown))}")
    cleaned = {keys[key].name: keys[key].validate(value) for key, value in values.items()}
    now = timezone.now()
    with transaction.atomic():
        for name, value in cleaned.items():
            _store(REGISTRY[name], value, actor=actor, logged=logged, now=now)
    invalidate()
    return cleaned


def _store(key: Key, value: Any, *, actor: Actor | None, logged: bool, now) -> None:
    before = Configuration.objects.select_for_update().filter(key=key.name).values_list("value", flat=True).first()
    old = key.default if before is None else before
    row, _ = Configuration.objects.update_or_create(
        key=key.name,
        defaults={
            "value": value,
            "value_type": key.type.value,
            "category": key.category,
            "description": key.description,
            "updated_at": now,
            "updated_by": actor.user if actor else None,
        },
    )
    if actor is not None and logged and old != value:
        actions.record(actor, Action.CONFIG_CHANGE, key.name, before=old, after=value, at=now, obj=row)


def update(key: Key, value: Any, *, actor: Actor | None = None, logged: bool = True) -> Any:
    return update_many({_registered(key): value}, actor=actor, logged=logged)[key.name]


def ensure_rows() -> int:
    """Create a row for every registered key that has none, so the admin lists them all."""
    existing = set(Configuration.objects.values_list("key", flat=True))
    missing = [
        Configuration(
            key=key.name,
            value=key.default,
            value_type=key.type.value,
            category=key.category,
            description=key.description,
        )
        for key in REGISTRY.values()
        if key.name not in existing
    ]
    Configuration.objects.bulk_create(missing, ignore_conflicts=True)
    invalidate()
    return len(missing)
