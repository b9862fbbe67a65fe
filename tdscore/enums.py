"""Vocabularies shared by every layer, so a lower app can answer in them without importing a higher one."""

from enum import StrEnum


class Readiness(StrEnum):
    """The state of one readiness check, and of /health/ready as a whole."""

    OK = "ok"
    DEGRADED = "degraded"
    PAUSED = "paused"  # a check's state only: an operator stopped applying some entities on purpose
    DOWN = "down"  # the database only: the one state that answers 503
