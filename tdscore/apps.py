from django.apps import AppConfig
from django.db.models.signals import post_migrate


class TdsCoreConfig(AppConfig):
    name = "tdscore"
    verbose_name = "TDS Core"

    def ready(self) -> None:
        # Imported here, not at the top: these modules use the models, which an AppConfig precedes.
        from tdscore import checks, config, dbpool, storage  # noqa: F401 - checks registers the system checks

        dbpool.forget_pools_in_forked_children()

        def ensure_configuration_rows(sender, using="default", **kwargs) -> None:
            config.ensure_rows()

        def compress_large_columns(sender, using="default", **kwargs) -> None:
            storage.use_lz4(using)

        post_migrate.connect(ensure_configuration_rows, sender=self, weak=False)
        post_migrate.connect(compress_large_columns, sender=self, weak=False)
