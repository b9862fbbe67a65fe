"""Waking idle drainers when work commits, so a change need not wait out `queue_poll_interval_ms`.

Sending. After the transaction that queues rows (a webhook, a pull page, a replay, a repair, a
released batch) commits, `after_commit()` pokes the process's sender thread, which sends one
wake-up: PostgreSQL `NOTIFY tds_queue`, or a Redis `PUBLISH` when Redis is configured (REDIS_URL
or Q_BROKER=redis). Never from a trigger or inside the transaction: NOTIFY takes a database-wide
lock held through its commit, so a notify inside each ingest transaction would serialise every
ingest commit, and a drainer woken before the rows are visible would find nothing and sleep. The
poke is free for the request (it sets an event); pokes that arrive while a wake-up is being sent,
or within COALESCE_SECONDS after it, become one more wake-up, so a burst of webhooks costs the
database a few hundred notifications a second at most, not one per webhook. The sender borrows a
connection from the process's pool for each send.

Waiting. Each drainer process keeps one listening connection of its own, outside the pool
(`LISTEN tds_queue`, or a Redis subscription to `tds_queue:<database name>`), named
`tds-drainer <host>:<pid>` in pg_stat_activity (`tds-drainer/<host>:<pid>` in Redis's CLIENT LIST), and waits on it with the poll interval as the backstop. A wake-up is a hint,
never the record of a change: one lost (a dropped connection, a pooler in transaction mode that
forgets LISTEN) costs at most one poll. After (re)connecting the drainer looks at the queue again
before it sleeps, since what committed before the LISTEN was announced to nobody. A broken
connection is dropped and opened again, at most once per poll interval.

TDS_WAKEUPS=false turns both sides off (drainers poll), for PgBouncer in transaction mode. SQLite
without Redis polls: its one writer is in this machine anyway.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from enum import StrEnum
from typing import Any, Protocol

import psycopg
import redis
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction

logger = logging.getLogger(__name__)

CHANNEL = "tds_queue"
# After sending a wake-up the sender waits this long before the next, so pokes in a burst coalesce.
COALESCE_SECONDS = 0.005
# A waiting drainer checks its stop event this often (a SIGTERM must not wait out a 30 s poll).
STOP_CHECK_SECONDS = 0.2
CONNECT_TIMEOUT_SECONDS = 5


class Transport(StrEnum):
    POSTGRES = "postgres"
    REDIS = "redis"


def transport() -> tuple[Transport, str] | None:
    """How wake-ups travel in this process, and where (the Redis URL, or the database's name); None:
    drainers poll."""
    if not settings.TDS_WAKEUPS:
        return None
    if settings.TDS_WAKEUP_REDIS_URL:
        return Transport.REDIS, settings.TDS_WAKEUP_REDIS_URL
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor == "postgresql":
        return Transport.POSTGRES, db.settings_dict["NAME"]
    return None


def after_commit() -> None:
    """Wake the drainers once the current transaction commits (at once in autocommit)."""
    if transport() is not None:
        transaction.on_commit(_poke)


def _poke() -> None:
    way = transport()
    if way is not None:
        _sender(way).poke()


def _connection_params(application_name: str) -> dict[str, Any]:
    """The default database's connection parameters for a psycopg connection of our own."""
    params = connections[DEFAULT_DB_ALIAS].get_connection_params()
    for django_only in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(django_only, None)
    return {**params, "application_name": application_name, "connect_timeout": CONNECT_TIMEOUT_SECONDS}


def _process_name(kind: str) -> str:
    return f"tds-{kind} {socket.gethostname()}:{os.getpid()}"[:63]  # PostgreSQL keeps 63 bytes


# --- Sending -----------------------------------------------------------------------------------------


class _Channel(Protocol):
    def send(self) -> None: ...

    def close(self) -> None: ...


class _PostgresChannel:
    """NOTIFY on the sender thread's own Django connection: from the process's pool, given back after
    each send, so waking costs no connection of its own."""

    # Asynchronous commit for this one statement: a notification is worth no disk flush, and a lost
    # one costs a poll.
    NOTIFY = "SELECT pg_notify(%s, ''), set_config('synchronous_commit', 'off', true)"

    def send(self) -> None:
        db = connections[DEFAULT_DB_ALIAS]  # this thread's
        try:
            with db.cursor() as cursor:
                cursor.execute(self.NOTIFY, [CHANNEL])
        except DatabaseError as exc:
            logger.info("wake-up not sent (%s); drainers find the work at their next poll", exc)
        finally:
            db.close_if_unusable_or_obsolete()  # back to the pool (or kept, as conn_max_age says)

    def close(self) -> None:
        pass


def _redis_channel() -> str:
    """Redis's channels are one namespace for every database number and every installation using
    that Redis: the database's name keeps ours apart."""
    return f"{CHANNEL}:{connections[DEFAULT_DB_ALIAS].settings_dict['NAME']}"


class _RedisChannel:
    def __init__(self, url: str) -> None:
        self._channel = _redis_channel()
        self._client = redis.Redis.from_url(
            url, socket_connect_timeout=CONNECT_TIMEOUT_SECONDS, socket_timeout=CONNECT_TIMEOUT_SECONDS
        )

    def send(self) -> None:
        try:
            self._client.publish(self._channel, b"")
        except redis.RedisError as exc:
            logger.info("wake-up not sent (%s); drainers find the work at their next poll", exc)

    def close(self) -> None:
        self._client.close()


class _Sender:
    """A thread of the process that sends wake-ups when poked, one for any pokes meanwhile."""

    def __init__(self, channel: _Channel) -> None:
        self.channel = channel
        self.lock = threading.Lock()  # a send, or a close from another thread
        self.poked = threading.Event()
        threading.Thread(target=self._run, name="tds wake-up sender", daemon=True).start()

    def poke(self) -> None:
        self.poked.set()

    def _run(self) -> None:
        while True:
            self.poked.wait()
            # Cleared before sending: a commit poking after this is covered by the next send, one
            # before it by this send, which follows its commit.
            self.poked.clear()
            with self.lock:
                self.channel.send()
            time.sleep(COALESCE_SECONDS)

    def close(self) -> None:
        with self.lock:
            self.channel.close()


_senders: dict[tuple[int, Transport, str], _Sender] = {}
_senders_lock = threading.Lock()


def _sender(way: tuple[Transport, str]) -> _Sender:
    key = (os.getpid(), *way)  # after a fork (gunicorn's workers) the parent's thread is not ours
    with _senders_lock:
        sender = _senders.get(key)
        if sender is None:
            channel = _PostgresChannel() if way[0] is Transport.POSTGRES else _RedisChannel(way[1])
            sender = _senders[key] = _Sender(channel)
        return sender


# --- Waiting -----------------------------------------------------------------------------------------


class _Listener(Protocol):
    def wait(self, seconds: float) -> bool: ...

    def discard_pending(self) -> None: ...

    def close(self) -> None: ...


class _PostgresListener:
    def __init__(self) -> None:
        params = _connection_params(_process_name("drainer"))
        self._conn = psycopg.Connection.connect(**params, autocommit=True)
        self._conn.execute(f"LISTEN {CHANNEL}")

    def wait(self, seconds: float) -> bool:
        return any(True for _ in self._conn.notifies(timeout=seconds, stop_after=1))

    def discard_pending(self) -> None:
        for _ in self._conn.notifies(timeout=0):
            pass

    def close(self) -> None:
        self._conn.close()


class _RedisListener:
    def __init__(self, url: str) -> None:
        client = redis.Redis.from_url(
            url, socket_connect_timeout=CONNECT_TIMEOUT_SECONDS, client_name=_process_name("drainer").replace(" ", "/")
        )
        self._pubsub = client.pubsub()
        self._pubsub.subscribe(_redis_channel())
        # Subscribed only once Redis confirms: a wake-up published before that reaches nobody.
        deadline = time.monotonic() + CONNECT_TIMEOUT_SECONDS
        while (message := self._pubsub.get_message(timeout=CONNECT_TIMEOUT_SECONDS)) is None or message[
            "type"
        ] != "subscribe":
            if time.monotonic() > deadline:
                raise redis.TimeoutError("no confirmation of the subscription")

    def wait(self, seconds: float) -> bool:
        message = self._pubsub.get_message(timeout=seconds)
        return message is not None and message["type"] == "message"

    def discard_pending(self) -> None:
        while self._pubsub.get_message(timeout=0) is not None:
            pass

    def close(self) -> None:
        self._pubsub.close()


_LISTENER_ERRORS = (psycopg.Error, redis.RedisError, OSError)


class Waiter:
    """A drainer process's wait for work: its listening connection, kept and reopened."""

    def __init__(self, way: tuple[Transport, str]) -> None:
        self.way = way
        self.listener: _Listener | None = None
        self._connect_after = 0.0  # monotonic

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        """Until a wake-up, `stop`, or `seconds` (the poll interval). True when the caller should look
        at the queue before the poll was due: woken, or listening afresh."""
        deadline = time.monotonic() + seconds
        if self.listener is None:
            if time.monotonic() >= self._connect_after and self._listen(seconds):
                return True
            stop.wait(seconds)
            return False
        while not stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                if self.listener.wait(min(left, STOP_CHECK_SECONDS)):
                    self.listener.discard_pending()  # one look serves every wake-up received so far
                    return True
            except _LISTENER_ERRORS as exc:
                logger.warning("wake-up connection lost (%s); listening again, polling meanwhile", exc)
                self.close()
                return self.wait(max(deadline - time.monotonic(), 0.0), stop)
        return False

    def _listen(self, seconds: float) -> bool:
        self._connect_after = time.monotonic() + seconds  # one attempt per poll interval at most
        try:
            self.listener = _PostgresListener() if self.way[0] is Transport.POSTGRES else _RedisListener(self.way[1])
        except _LISTENER_ERRORS as exc:
            logger.warning("cannot listen for wake-ups (%s); polling every %.3g s", exc, seconds)
            return False
        return True

    def close(self) -> None:
        listener, self.listener = self.listener, None
        if listener is not None:
            with contextlib.suppress(*_LISTENER_ERRORS):
                listener.close()


_waiters: dict[tuple[int, Transport, str], Waiter] = {}


def wait(seconds: float, *, stop: threading.Event) -> bool:
    """An idle drainer's wait: woken when work commits, else after `seconds` (the poll interval);
    returns early when `stop` is set. True when woken."""
    way = transport()
    if way is None:
        stop.wait(seconds)
        return False
    key = (os.getpid(), *way)
    waiter = _waiters.get(key)
    if waiter is None:
        waiter = _waiters[key] = Waiter(way)
    return waiter.wait(seconds, stop)


def close_all() -> None:
    """Close this process's wake-up connections (a test run, before its database is dropped)."""
    for waiter in list(_waiters.values()):
        waiter.close()
    _waiters.clear()
    with _senders_lock:
        for sender in _senders.values():
            sender.close()
