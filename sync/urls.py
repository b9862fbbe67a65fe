from django.urls import re_path

from sync import webhooks

# Mounted at /webhooks/ by tdscore/urls.py. The slash is optional: Zoho workflow rules are typed by
# hand, and a redirect (APPEND_SLASH) would turn a POST into a GET and lose the body.
urlpatterns = [
    re_path(r"^(?P<entity>[^/]+)/?$", webhooks.receive, name="webhook"),
]
