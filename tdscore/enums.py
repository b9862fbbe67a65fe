"""Vocabularies shared by every layer, so a lower app can answer in them without importing a higher one."""

from enum import StrEnum


class Readiness(StrEnum):
    """The state of one readiness check, and of /health/ready as a whole."""

    OK = "ok"
    DEGRADED = "degraded"
    PAUSED = "paused"  # a check's state only: an operator stopped applying some entities on purpose
    DOWN = "down"  # the database only: the one state that answers 503


class Action(StrEnum):
    """What an operator did, as the action log (tds_operator_actions) names it."""

    CONFIG_CHANGE = "configuration.change"
    REPLAY = "dead_letter.replay"
    DISCARD = "dead_letter.discard"
    MARK_FIXED = "dead_letter.mark_fixed"
    REQUEUE = "queue.requeue"
    ACKNOWLEDGE = "alert.acknowledge"
    RESOLVE = "alert.resolve"
    SILENCE = "alert.silence"
    PAUSE = "entity.pause"
    RESUME = "entity.resume"
    RUN_START = "run.start"
    ZOHO_CONNECT = "zoho.connect"
    BREAKER_RESET = "zoho.breaker_reset"
    REDACT = "contact.redact"
    DRIFT_ACKNOWLEDGE = "schema_drift.acknowledge"
