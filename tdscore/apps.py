from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_configuration_rows(sender, using="default", **kwargs) -> None:
    from tdscore import config

    config.ensure_rows()


def _compress_large_columns(sender, using="default", **kwargs) -> None:
    from tdscore import storage

    storage.use_lz4(using)


class TdsCoreConfig(AppConfig):
    name = "tdscore"
    verbose_name = "TDS Core"

    def ready(self) -> None:
        from tdscore import checks, dbpool  # noqa: F401 - checks registers the system checks

        dbpool.forget_pools_in_forked_children()

        post_migrate.connect(_ensure_configuration_rows, sender=self)
        post_migrate.connect(_compress_large_columns, sender=self)
