from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"

    def ready(self) -> None:
        from alerts import checks, config_keys  # noqa: F401 - register the system checks, the configuration keys
