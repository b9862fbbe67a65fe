from django.apps import AppConfig

from monitoring.registry import add_collector, add_figure, add_status_section


class AlertsConfig(AppConfig):
    name = "alerts"

    def ready(self) -> None:
        # Imported here, not at the top: these modules use the models, which an AppConfig precedes.
        from alerts import checks, config_keys, gauges  # noqa: F401 - register the system checks, the keys

        add_collector(gauges.open_alerts_by_severity)
        add_figure("open_alerts", gauges.open_alert_count)
        add_status_section("alerts", gauges.open_alerts)
