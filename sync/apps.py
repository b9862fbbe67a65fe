from django.apps import AppConfig
from django.db.backends.signals import connection_created


class SyncConfig(AppConfig):
    name = "sync"
    verbose_name = "Sync pipeline"

    def ready(self) -> None:
        # Imported here, not at the top: these modules (and django-q2's signals) use models, which an
        # AppConfig precedes.
        from django.db.models import Field, ForeignObject
        from django_q.signals import post_spawn

        from sync import config_keys, tasks, timestamps, worker  # noqa: F401 - config_keys registers the keys
        from sync.lookups import AnyOf

        # Relations keep lookups of their own (Django's RelatedIn…): `<fk>_id__any_of` takes ids there.
        for fields in (Field, ForeignObject):
            fields.register_lookup(AnyOf)

        # No row, whatever it holds, may make a read fail: see sync.timestamps.
        connection_created.connect(timestamps.install, dispatch_uid="sync.timestamps")
        # A cluster worker hears the cluster's stop from the moment it starts (sync.worker).
        post_spawn.connect(worker.listen_for_cluster_stop, dispatch_uid="sync.worker.cluster_stop")
        # A starting (or restarted) cluster starts its drainers at once, not on the watchdog's minute.
        post_spawn.connect(tasks.start_drainers_on_spawn, dispatch_uid="sync.tasks.drainers_on_spawn")
