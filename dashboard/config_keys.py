"""The configuration keys of the HTML dashboard, registered when DashboardConfig.ready imports this."""

from tdscore.config import Key, KeyType

DASHBOARD_REFRESH_SECONDS = Key(
    "dashboard_refresh_seconds",
    KeyType.INT,
    15,
    "dashboard",
    "How often /dashboard/ refreshes its panels.",
    min=1,
    max=3600,
)
