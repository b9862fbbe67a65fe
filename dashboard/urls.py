"""The HTML dashboard, mounted at /dashboard/ (the API's routes are dashboard/api/urls.py, under /api/)."""

from django.urls import path

from dashboard import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("dead-letter/<int:pk>/retry", views.retry_dead_letter, name="dashboard-dead-letter-retry"),
    path("dead-letter/<int:pk>/discard", views.discard_dead_letter, name="dashboard-dead-letter-discard"),
    path("alerts/<int:pk>/acknowledge", views.acknowledge_alert, name="dashboard-alert-acknowledge"),
]
