"""The HTML dashboard, mounted at /dashboard/ (namespace `dashboard`; the API's routes are in
dashboard/api/urls.py, under /api/, namespace `api`)."""

from django.urls import path

from dashboard import views

app_name = "dashboard"
urlpatterns = [
    path("", views.dashboard, name="index"),
    path("dead-letter/<int:pk>/retry", views.retry_dead_letter, name="dead-letter-retry"),
    path("dead-letter/<int:pk>/discard", views.discard_dead_letter, name="dead-letter-discard"),
    path("alerts/<int:pk>/acknowledge", views.acknowledge_alert, name="alert-acknowledge"),
    path("entities/<str:entity>/pause", views.pause_entity, name="entity-pause"),
    path("entities/<str:entity>/resume", views.resume_entity, name="entity-resume"),
    path("runs/start", views.start_run, name="run-start"),
    path("actions", views.action_log, name="actions"),
]
