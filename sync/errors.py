"""How an apply can fail, and what the queue does about it (SPEC §6 "Attempts").

- permanent (validation, unknown entity, Zoho 400/404): dead-letter at once with `reason`;
- transient (data): retry with backoff until max_retry_attempts, then `retries_exhausted`;
- infrastructure wait (Zoho 429/5xx/auth, breaker open, quota spent, deadlock): retry until it
  clears, the attempt refunded.
"""


class ApplyError(Exception):
    permanent = False
    infrastructure = False
    reason = "retries_exhausted"


class ValidationFailed(ApplyError):
    permanent = True
    reason = "validation"


class UnknownEntityError(ApplyError):
    permanent = True
    reason = "unknown_entity"


class TransientError(ApplyError):
    """A data problem that may clear on its own (a parent not there yet, a lock timeout)."""


class InfrastructureWait(ApplyError):
    """Something outside the row is down; the row is fine and must not use up its attempts."""

    infrastructure = True
