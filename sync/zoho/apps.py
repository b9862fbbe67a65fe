from django.apps import AppConfig


class ZohoConfig(AppConfig):
    """The Zoho boundary: client and the state all processes share (token, limiter, breaker)."""

    name = "sync.zoho"
    label = "zoho"
    verbose_name = "Zoho"

    def ready(self) -> None:
        # Imported here, not at the top: the keys module reads the registry, which an AppConfig precedes.
        from sync.zoho import config_keys  # noqa: F401 - registers the configuration keys
