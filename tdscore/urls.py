from django.contrib import admin
from django.urls import include, path

from monitoring import health, metrics

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health", health.health, name="health"),
    path("health/ready", health.ready, name="health-ready"),
    path("metrics", metrics.metrics, name="metrics"),
    path("webhooks/", include("sync.urls")),
    path("api/", include("dashboard.api.urls")),
    path("dashboard/", include("dashboard.urls")),
]
