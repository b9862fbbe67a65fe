"""Sending queued notifications: each channel on its own thread, retried with backoff.

A channel that is slow or failing never delays the others: channels send side by side, and a
channel that fails transiently stops for this round (its other messages wait for its retry time)
instead of timing out once per message. The threads only talk HTTP or SMTP; every database read
and write happens here on the calling thread, so this works inside a test's transaction too.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connections
from django.utils import timezone

from alerts import channels
from alerts.channels import ChannelError, Event
from alerts.config_keys import ALERT_DELIVERY_BACKOFF_SECONDS, ALERT_DELIVERY_MAX_ATTEMPTS
from alerts.models import AlertDelivery
from tdscore import config

logger = logging.getLogger(__name__)
# A claimed delivery whose process died mid-send is tried again after this.
CLAIM = timedelta(minutes=2)
MAX_BACKOFF = timedelta(hours=1)
ROUND = 200  # deliveries claimed per round at most


@dataclass
class SendResult:
    delivery: AlertDelivery
    error: ChannelError | None = None
    skipped: bool = False  # its channel failed earlier in this round: not tried


def event_of(delivery: AlertDelivery) -> Event:
    return Event(kind=delivery.event, id=f"tds-alert-delivery-{delivery.pk}", at=delivery.created_at)


def claim(now: datetime) -> list[AlertDelivery]:
    """Due pending deliveries, taken with one conditional update so two rounds never send one twice:
    the rows this round moved are the ones now due at its own claim time."""
    due = AlertDelivery.objects.filter(status=AlertDelivery.Status.PENDING, next_attempt_at__lte=now)
    ids = list(due.order_by("next_attempt_at", "id").values_list("pk", flat=True)[:ROUND])
    if not ids:
        return []
    until = now + CLAIM
    due.filter(pk__in=ids).update(next_attempt_at=until)
    taken = AlertDelivery.objects.filter(pk__in=ids, status=AlertDelivery.Status.PENDING, next_attempt_at=until)
    return list(taken.select_related("alert").order_by("next_attempt_at", "id"))


def send_channel(channel: str, deliveries: list[AlertDelivery]) -> list[SendResult]:
    """One channel's deliveries in order; after a transient failure the rest wait for the retry."""
    outcomes: list[SendResult] = []
    stopped = False
    for delivery in deliveries:
        if stopped:
            outcomes.append(SendResult(delivery, skipped=True))
            continue
        try:
            channels.send(channel, delivery.alert, event_of(delivery))
        except ChannelError as exc:
            outcomes.append(SendResult(delivery, exc))
            stopped = not exc.permanent
        except Exception as exc:  # a bug in a channel must not stop the other channels
            logger.exception("channel %s crashed", channel)
            outcomes.append(SendResult(delivery, ChannelError(f"{type(exc).__name__}: {exc}", permanent=False)))
            stopped = True
        else:
            outcomes.append(SendResult(delivery))
    return outcomes


def backoff(attempts: int) -> timedelta:
    return min(timedelta(seconds=config.get(ALERT_DELIVERY_BACKOFF_SECONDS) * 2 ** (attempts - 1)), MAX_BACKOFF)


FINISH_FIELDS = ["status", "attempts", "next_attempt_at", "error", "sent_at"]


def finish(outcome: SendResult, now: datetime, *, retry_at: datetime | None) -> str:
    """Set the delivery's outcome on it (saved by `send` in one statement for the round)."""
    delivery = outcome.delivery
    if outcome.skipped:
        # Not tried: it waits with its channel, its attempts untouched.
        delivery.next_attempt_at = retry_at or now
        return "waiting"
    delivery.attempts += 1
    if outcome.error is None:
        delivery.status, delivery.sent_at, delivery.error = AlertDelivery.Status.SENT, now, ""
        return "sent"
    delivery.error = str(outcome.error)[:2000]
    if (
        outcome.error.permanent
        or delivery.attempts >= config.get(ALERT_DELIVERY_MAX_ATTEMPTS)
        or delivery.event == AlertDelivery.Event.TEST  # a test reports on one try; nobody waits for a retry
    ):
        delivery.status = AlertDelivery.Status.FAILED
        return "failed"
    delivery.next_attempt_at = now + backoff(delivery.attempts)
    return "retry"


def deliver_due(now: datetime | None = None) -> Counter:
    """Send every due delivery once; returns counts of sent, retry, failed and waiting."""
    return send(claim(now or timezone.now()))


def _send_in_thread(item: tuple[str, list[AlertDelivery]]) -> list[SendResult]:
    try:
        return send_channel(*item)
    finally:
        # A channel may read the database (e-mail looks up the admin users): a connection this
        # thread opened is closed with it, never left holding the database.
        connections.close_all()


def send(deliveries: list[AlertDelivery]) -> Counter:
    """Send claimed deliveries, one thread per channel, and record each outcome."""
    by_channel: dict[str, list[AlertDelivery]] = defaultdict(list)
    for delivery in deliveries:
        by_channel[delivery.channel].append(delivery)
    tally: Counter = Counter()
    if not by_channel:
        return tally
    with ThreadPoolExecutor(max_workers=len(by_channel), thread_name_prefix="alert-channel") as pool:
        results = list(pool.map(_send_in_thread, by_channel.items()))
    finished_at = timezone.now()
    for outcomes in results:
        retry_at = None
        for outcome in outcomes:
            tally[finish(outcome, finished_at, retry_at=retry_at)] += 1
            if outcome.error is not None:
                retry_at = outcome.delivery.next_attempt_at
    AlertDelivery.objects.bulk_update(deliveries, FINISH_FIELDS)
    return tally
