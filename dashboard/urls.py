from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from alerts import api as alerts_api
from dashboard import runs

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("dashboard/runs", runs.RunList.as_view(), name="dashboard-runs"),
    path("dashboard/cursors", runs.CursorList.as_view(), name="dashboard-cursors"),
    path("dashboard/sync", runs.StartSync.as_view(), name="dashboard-sync"),
    path("dashboard/alerts", alerts_api.AlertList.as_view(), name="dashboard-alerts"),
    path("dashboard/alerts/<int:pk>/acknowledge", alerts_api.AcknowledgeAlert.as_view(), name="dashboard-alert-ack"),
    path("dashboard/alerts/<int:pk>/resolve", alerts_api.ResolveAlert.as_view(), name="dashboard-alert-resolve"),
]
