import json
from datetime import timedelta

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from alerts import channels, send_test, silences
from alerts.models import Alert, AlertDelivery, AlertSilence, AlertStateError
from tdscore.actions import Actor, Via
from tdscore.admin import may
from tdscore.permissions import Perm, allows


class DeliveryInline(admin.TabularInline):
    model = AlertDelivery
    extra = 0
    can_delete = False
    fields = ["channel", "event", "status", "attempts", "next_attempt_at", "error", "created_at", "sent_at"]
    readonly_fields = fields
    ordering = ["-id"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


def _move(modeladmin, request, queryset, verb: str) -> None:
    """Acknowledge or resolve each selected alert through its model method; report those refused."""
    now, actor = timezone.now(), Actor.of_user(request.user, Via.ADMIN)
    done, refused = 0, []
    for alert in queryset:
        try:
            getattr(alert, verb)(actor=actor, now=now)
            done += 1
        except AlertStateError:
            refused.append(f"#{alert.pk} ({alert.status})")
    past = {"acknowledge": "acknowledged", "resolve": "resolved"}[verb]
    if done:
        modeladmin.message_user(request, f"{done} alert(s) {past}.", messages.SUCCESS)
    if refused:
        modeladmin.message_user(request, f"Already {past} or resolved: {', '.join(refused)}.", messages.WARNING)


@admin.action(description="Acknowledge selected alerts", permissions=["acknowledge"])
def acknowledge(modeladmin, request, queryset):
    _move(modeladmin, request, queryset, "acknowledge")


@admin.action(description="Resolve selected alerts", permissions=["acknowledge"])
def resolve(modeladmin, request, queryset):
    _move(modeladmin, request, queryset, "resolve")


def _silence(modeladmin, request, queryset, hours: int) -> None:
    """Mute notifications for each selected alert's fingerprint; the alerts are still recorded."""
    now = timezone.now()
    until = now + timedelta(hours=hours)
    actor = Actor.of_user(request.user, Via.ADMIN)
    made = silences.silence(queryset, until=until, actor=actor, reason="silenced from the admin", now=now)
    modeladmin.message_user(request, f"{made} alert(s) silenced until {until:%Y-%m-%d %H:%M} UTC.")


@admin.action(description="Silence selected alerts for 1 hour", permissions=["acknowledge"])
def silence_hour(modeladmin, request, queryset):
    _silence(modeladmin, request, queryset, 1)


@admin.action(description="Silence selected alerts for 24 hours", permissions=["acknowledge"])
def silence_day(modeladmin, request, queryset):
    _silence(modeladmin, request, queryset, 24)


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ["id", "severity", "status", "rule", "title", "occurrences", "first_seen", "last_seen"]
    list_filter = ["status", "severity", "rule"]
    search_fields = ["title", "fingerprint"]
    date_hierarchy = "last_seen"
    actions = [acknowledge, resolve, silence_hour, silence_day]
    has_acknowledge_permission = may(Perm.ACKNOWLEDGE_ALERT)
    inlines = [DeliveryInline]
    change_list_template = "admin/alerts/alert/change_list.html"
    fields = [
        "rule",
        "fingerprint",
        "severity",
        "status",
        "title",
        "value",
        "threshold",
        "occurrences",
        "first_seen",
        "last_seen",
        "acknowledged_by",
        "acknowledged_at",
        "resolved_by",
        "resolved_at",
        "escalated_at",
        "last_notified_at",
        "context_readable",
        "detail",
    ]
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="context")
    def context_readable(self, alert: Alert) -> str:
        return format_html(
            "<pre style='white-space: pre-wrap'>{}</pre>", json.dumps(alert.context, indent=2, ensure_ascii=False)
        )

    def get_urls(self):
        send_test = self.admin_site.admin_view(require_POST(self.send_test_view))
        return [path("send-test/", send_test, name="alerts_alert_send_test"), *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        extra = {
            "alert_channels": channels.NAMES,
            "enabled_channels": channels.enabled(),
            "may_send_test": allows(request.user, Perm.SEND_TEST_ALERT),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context=extra)

    def send_test_view(self, request):
        if not allows(request.user, Perm.SEND_TEST_ALERT):
            raise PermissionDenied("Sending a test alert needs the permission to change alerts.")
        back = HttpResponseRedirect(reverse("admin:alerts_alert_changelist"))
        name = request.POST.get("channel", "")
        if name not in channels.enabled():
            self.message_user(request, f"Channel {name or '?'} is not enabled.", messages.ERROR)
            return back
        for delivery in send_test.send_test([name], by=request.user.get_username(), now=timezone.now()):
            if delivery.status == AlertDelivery.Status.SENT:
                self.message_user(request, f"Test alert sent to {name}.", messages.SUCCESS)
            else:
                self.message_user(request, f"Test alert to {name} failed: {delivery.error}", messages.ERROR)
        return back


@admin.register(AlertSilence)
class AlertSilenceAdmin(admin.ModelAdmin):
    list_display = ["rule", "fingerprint", "until", "reason", "created_by", "created_at"]
    list_filter = ["rule"]
    search_fields = ["rule", "fingerprint", "reason"]

    def save_model(self, request, obj, form, change):
        silences.save(obj, actor=Actor.of_user(request.user, Via.ADMIN), now=timezone.now())

    def log_addition(self, request, obj, message):
        """silences.save wrote the object's history already, naming the action."""

    def log_change(self, request, obj, message):
        """silences.save wrote the object's history already, naming the action."""
