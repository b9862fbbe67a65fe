"""The DRF API, mounted at /api/ (namespace `api`): the OpenAPI schema, its docs, and the dashboard's
resources under /api/dashboard/."""

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from dashboard.api import actions, alerts, config, dead_letters, history, metrics, runs, schema_drift

app_name = "api"
urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # A person opens the docs in a browser: without a session they get the login page, not a bare 401.
    path(
        "docs/",
        staff_member_required(SpectacularSwaggerView.as_view(url_name="api:schema"), login_url=settings.LOGIN_URL),
        name="swagger-ui",
    ),
    path("dashboard/runs", runs.RunList.as_view(), name="runs"),
    path("dashboard/cursors", runs.CursorList.as_view(), name="cursors"),
    path("dashboard/sync", runs.StartSync.as_view(), name="sync"),
    path("dashboard/alerts", alerts.AlertList.as_view(), name="alerts"),
    path("dashboard/alerts/<int:pk>/acknowledge", alerts.AcknowledgeAlert.as_view(), name="alert-acknowledge"),
    path("dashboard/alerts/<int:pk>/resolve", alerts.ResolveAlert.as_view(), name="alert-resolve"),
    path("dashboard/metrics", metrics.Metrics.as_view(), name="metrics"),
    path("dashboard/queue-stats", metrics.QueueStats.as_view(), name="queue-stats"),
    path("dashboard/recent-events", metrics.RecentEvents.as_view(), name="recent-events"),
    path("dashboard/dead-letter", dead_letters.DeadLetterList.as_view(), name="dead-letters"),
    path("dashboard/dead-letter/retry", dead_letters.BulkRetry.as_view(), name="dead-letter-bulk-retry"),
    path("dashboard/dead-letter/<int:pk>/retry", dead_letters.Retry.as_view(), name="dead-letter-retry"),
    path("dashboard/dead-letter/<int:pk>/discard", dead_letters.Discard.as_view(), name="dead-letter-discard"),
    path("dashboard/config", config.ConfigRows.as_view(), name="config"),
    path("dashboard/schema-drift", schema_drift.DriftList.as_view(), name="schema-drift"),
    path(
        "dashboard/schema-drift/<int:pk>/acknowledge",
        schema_drift.AcknowledgeDrift.as_view(),
        name="schema-drift-acknowledge",
    ),
    path("erp/<str:entity>/<str:zoho_id>/history", history.ObjectHistory.as_view(), name="erp-history"),
    path("dashboard/actions", actions.ActionList.as_view(), name="actions"),
]
