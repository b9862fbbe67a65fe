from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from dashboard.views import home
from monitoring import health, metrics

urlpatterns = [
    path("", home, name="home"),
    # Browsers ask for /favicon.ico whatever the page links; answer it instead of logging a 404.
    path(
        "favicon.ico",
        RedirectView.as_view(url=static("dashboard/favicon.svg"), permanent=True, http_method_names=["get", "head"]),
        name="favicon",
    ),
    path("admin/", admin.site.urls),
    path("health", health.health, name="health"),
    path("health/ready", health.ready, name="health-ready"),
    path("metrics", metrics.metrics, name="metrics"),
    path("webhooks/", include("sync.urls")),
    path("api/", include("dashboard.api.urls")),
    path("dashboard/", include("dashboard.urls")),
]
