from django.contrib import admin, messages
from django.utils import timezone

from sync.zoho import breaker
from sync.zoho.models import BreakerState, LimiterState, ZohoCall, ZohoToken
from tdscore.actions import Actor, Via
from tdscore.admin import ReadOnlyAdmin, may
from tdscore.permissions import Perm


@admin.register(BreakerState)
class BreakerStateAdmin(ReadOnlyAdmin):
    list_display = ["organization_id", "state", "open_until", "consecutive_failures", "auth_failed_at", "updated_at"]
    readonly_fields = [f.name for f in BreakerState._meta.fields]
    actions = ["reset_breaker"]
    has_reset_permission = may(Perm.RESET_BREAKER)

    @admin.action(
        description="Reset: close the breaker and lift the auth state (after fixing the cause)", permissions=["reset"]
    )
    def reset_breaker(self, request, queryset):
        now = timezone.now()
        for row in queryset:
            breaker.reset(now, actor=Actor.of_user(request.user, Via.ADMIN), org=row.organization_id)
        self.message_user(request, f"Reset {len(queryset)} breaker(s).", messages.SUCCESS)


@admin.register(LimiterState)
class LimiterStateAdmin(ReadOnlyAdmin):
    list_display = [
        "organization_id",
        "calls_today",
        "reported_remaining",
        "day_resets_at",
        "paused_until",
        "day_blocked",
    ]


@admin.register(ZohoToken)
class ZohoTokenAdmin(ReadOnlyAdmin):
    # The tokens themselves stay out of the console: the admin would show them decrypted.
    list_display = ["account", "api_domain", "expires_at", "refreshed_at", "refresh_count", "last_error"]
    exclude = ["access_token", "refresh_token"]


@admin.register(ZohoCall)
class ZohoCallAdmin(ReadOnlyAdmin):
    list_display = ["id", "organization_id", "path", "started_at", "finished_at", "outcome", "status"]
    list_filter = ["outcome", "status"]
    search_fields = ["path"]
    date_hierarchy = "started_at"
