from django.apps import AppConfig


class ZohoSimConfig(AppConfig):
    """A stand-in for Zoho Books/Inventory (tests, benchmarks, `make run`); it knows nothing of TDS Core's apps."""

    name = "zohosim"
    verbose_name = "Zoho simulator"
