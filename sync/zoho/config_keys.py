"""The configuration keys of the Zoho boundary: the breaker and the rate limiter.

Registered with tdscore.config when this module is imported (ZohoConfig.ready).
"""

from tdscore.config import Key, KeyType

# The breaker.
ZOHO_BREAKER_COOLDOWN_SECONDS = Key(
    "zoho_breaker_cooldown_seconds", KeyType.INT, 60, "zoho", "How long the Zoho breaker stays open.", min=1, max=3600
)
ZOHO_BREAKER_WINDOW_SECONDS = Key(
    "zoho_breaker_window_seconds",
    KeyType.INT,
    60,
    "zoho",
    "Recent calls the breaker's failure rate reads.",
    min=1,
    max=3600,
)
ZOHO_BREAKER_MIN_CALLS = Key(
    "zoho_breaker_min_calls",
    KeyType.INT,
    10,
    "zoho",
    "Calls in the window before the rate can open it.",
    min=1,
    max=1000,
)
ZOHO_BREAKER_FAILURE_RATE = Key(
    "zoho_breaker_failure_rate",
    KeyType.FLOAT,
    0.5,
    "zoho",
    "Failure share of the window that opens it.",
    min=0.01,
    max=1,
)
ZOHO_BREAKER_CONSECUTIVE_FAILURES = Key(
    "zoho_breaker_consecutive_failures", KeyType.INT, 5, "zoho", "Failures in a row that open it.", min=1, max=1000
)
ZOHO_AUTH_RETRY_SECONDS = Key(
    "zoho_auth_retry_seconds",
    KeyType.INT,
    300,
    "zoho",
    "In the auth state, one caller retries after this.",
    min=1,
    max=86_400,
)

# The rate limiter.
ZOHO_RATE_LIMIT_MAX_WAIT_SECONDS = Key(
    "zoho_rate_limit_max_wait_seconds",
    KeyType.INT,
    90,
    "zoho",
    "Longest a call waits for a rate slot.",
    min=0,
    max=3600,
)
