"""The DRF API under /api/: its views by resource, their serializers, filters, throttle, pagination
and schema hook, and the URL module that routes them (namespace `api`)."""
