from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"

    def ready(self) -> None:
        # Imported here, not at the top: an AppConfig is loaded before the models exist.
        from alerts import checks, config_keys, gauges  # noqa: F401 - register the system checks, the keys
        from monitoring import registry

        registry.add_collector(gauges.open_alerts_by_severity)
        registry.add_figure("open_alerts", gauges.open_alert_count)
        registry.add_status_section("alerts", gauges.open_alerts)
