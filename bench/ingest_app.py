"""Bench-only WSGI application for bench/ingest.py: the project's URLs plus a bare baseline view.

`/bench/bare` inserts one row through the ORM and answers, with nothing else: the yardstick the
webhook receiver is measured against in the same run, on the same server and database. It lives
here, never in the production URLconf.
"""

from __future__ import annotations

import os
import uuid

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tdscore.settings")

from django.conf import settings

settings.ROOT_URLCONF = __name__

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()

from django.http import JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402

from sync.models import InboxEvent  # noqa: E402
from tdscore.urls import urlpatterns as project_urlpatterns  # noqa: E402

BARE_ENTITY = "bench-bare"


@csrf_exempt
def bare(request):
    row = InboxEvent.objects.create(
        entity=BARE_ENTITY,
        source=InboxEvent.Source.TOKEN,
        method=request.method,
        raw_body=request.body,
        idempotency_key=uuid.uuid4().hex,
        content_hash="",
    )
    return JsonResponse({"status": "accepted", "event_id": row.pk}, status=202)


urlpatterns = [path("bench/bare", bare), *project_urlpatterns]
