from django.contrib import admin

from alerts.models import Alert, AlertDelivery, AlertSilence


class DeliveryInline(admin.TabularInline):
    model = AlertDelivery
    extra = 0
    can_delete = False
    readonly_fields = ["channel", "status", "attempts", "next_attempt_at", "error", "created_at", "sent_at"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ["id", "severity", "status", "rule", "title", "occurrences", "first_seen", "last_seen"]
    list_filter = ["status", "severity", "rule"]
    search_fields = ["title", "fingerprint"]
    date_hierarchy = "last_seen"
    inlines = [DeliveryInline]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(AlertSilence)
class AlertSilenceAdmin(admin.ModelAdmin):
    list_display = ["rule", "fingerprint", "until", "created_by", "created_at"]
