"""One round of alerting, as the schedule and `check_alerts` run it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from django.utils import timezone

from alerts import delivery, engine


@dataclass
class RoundResult:
    evaluation: engine.Evaluation
    deliveries: Counter


def run() -> RoundResult:
    """Send the retries that are due, evaluate the rules, then send what the evaluation queued.

    Retries go first so a channel that failed permanently is seen by this evaluation's channel rule.
    """
    retried = delivery.deliver_due(timezone.now())
    evaluation = engine.evaluate(timezone.now())
    return RoundResult(evaluation, retried + delivery.deliver_due(timezone.now()))
