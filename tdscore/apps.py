from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_configuration_rows(sender, using="default", **kwargs) -> None:
    from tdscore import config

    config.ensure_rows()


class TdsCoreConfig(AppConfig):
    name = "tdscore"
    verbose_name = "TDS Core"

    def ready(self) -> None:
        from tdscore import checks  # noqa: F401 - registers the system checks

        post_migrate.connect(_ensure_configuration_rows, sender=self)
