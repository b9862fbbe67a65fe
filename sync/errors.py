"""How an apply can fail, and what the queue does about it (sync.queue.classify).

- permanent: an ApplyError (validation, unknown entity), or a value the column cannot hold
  (DataError): dead-letter at once with its reason;
- infrastructure wait (the database: deadlock, lock timeout, lost connection): retry until it
  clears, the attempt refunded;
- anything else (data that may clear, a bug a deploy fixes): retry with backoff until
  max_retry_attempts, then `retries_exhausted`.

The apply path makes no call to Zoho (pulls fetch before they queue), so no ZohoError reaches the
queue; an apply that ever calls Zoho must map ZohoError.permanent onto these kinds in classify().
"""

from sync.models import DeadLetter


class ApplyError(Exception):
    """A row the apply refuses for good: dead-lettered at once with `reason`."""

    reason = DeadLetter.Reason.VALIDATION


class ValidationFailed(ApplyError):
    reason = DeadLetter.Reason.VALIDATION


class UnknownEntityError(ApplyError):
    reason = DeadLetter.Reason.UNKNOWN_ENTITY
