from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "dashboard"

    def ready(self) -> None:
        # Imported here, not at the top: the keys module reads the registry, which an AppConfig precedes.
        from dashboard import config_keys  # noqa: F401 - registers the configuration keys
