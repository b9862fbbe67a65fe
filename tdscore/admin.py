from django import forms
from django.contrib import admin

from tdscore import config
from tdscore.models import Configuration, Metric

admin.site.site_header = "TDS Core operations console"
admin.site.site_title = "TDS Core"
admin.site.index_title = "Sync, ERP tables, alerts and configuration"


class ReadOnlyAdmin(admin.ModelAdmin):
    """For records that are facts (inbox, audit trail, runs): viewable, never edited by hand."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ConfigurationForm(forms.ModelForm):
    class Meta:
        model = Configuration
        fields = ["value"]

    def clean_value(self):
        try:
            return config.REGISTRY[self.instance.key].validate(self.cleaned_data["value"])
        except config.ConfigError as exc:
            raise forms.ValidationError(str(exc)) from None


@admin.register(Configuration)
class ConfigurationAdmin(admin.ModelAdmin):
    form = ConfigurationForm
    list_display = ["key", "value", "value_type", "category", "updated_at", "updated_by"]
    list_filter = ["category"]
    search_fields = ["key", "description"]
    readonly_fields = ["key", "value_type", "category", "description", "updated_at", "updated_by"]

    def has_add_permission(self, request) -> bool:
        return False  # keys come from the registry

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        # Through the one write path, so validation, audit fields and cache invalidation agree.
        config.update(obj.key, form.cleaned_data["value"], by=request.user)


@admin.register(Metric)
class MetricAdmin(ReadOnlyAdmin):
    list_display = ["name", "value", "labels", "at"]
    list_filter = ["name"]
    date_hierarchy = "at"
