"""Who may do what: one answer for the admin, the dashboard, the API and the templates.

Every door asks `allows(user, *perms)`: an active staff member holding each permission (a superuser
holds them all). Staff status comes first because the admin refuses anyone without it, and no other
door may let in someone the admin would send away. The permissions are Django's model permissions
(`view_…`, `change_…`) plus the custom ones declared on the models for what is not a model edit
(replay, discard, start a run, pause, acknowledge, redact).

The two groups, "TDS operators" (every action, every view and change) and "TDS viewers" (every view),
are created by a migration through `ensure_groups`; docs/REFERENCE.md lists what each permission allows.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from functools import wraps

from django.apps import apps as global_apps
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.management import create_permissions
from django.core.exceptions import PermissionDenied


class Perm(StrEnum):
    """A permission as `user.has_perm` names it: `<app label>.<codename>`."""

    # Actions that are not model edits (declared in the models' Meta.permissions).
    REPLAY_DEADLETTER = "sync.replay_deadletter"
    DISCARD_DEADLETTER = "sync.discard_deadletter"  # also "mark fixed"
    START_RUN = "sync.start_run"
    PAUSE_ENTITY = "sync.pause_entity"  # pause and resume
    ACKNOWLEDGE_ALERT = "alerts.acknowledge_alert"  # acknowledge, resolve, silence
    REDACT_CONTACT = "erp.redact_contact"
    # Model edits that stand for an action.
    CHANGE_CONFIGURATION = "tdscore.change_configuration"
    RESET_BREAKER = "zoho.change_breakerstate"
    SEND_TEST_ALERT = "alerts.change_alert"
    ACKNOWLEDGE_DRIFT = "sync.change_schemadrift"
    # Resubmitting a django-q2 task runs its function again, whatever it is: neither group holds these.
    RESUBMIT_SUCCESSFUL_TASK = "django_q.change_success"
    RESUBMIT_FAILED_TASK = "django_q.change_failure"
    # Reads.
    VIEW_QUEUEITEM = "sync.view_queueitem"
    VIEW_INBOXEVENT = "sync.view_inboxevent"
    VIEW_DEADLETTER = "sync.view_deadletter"
    VIEW_SYNCRUN = "sync.view_syncrun"
    VIEW_SYNCCURSOR = "sync.view_synccursor"
    VIEW_ALERT = "alerts.view_alert"
    VIEW_CONFIGURATION = "tdscore.view_configuration"
    VIEW_SCHEMADRIFT = "sync.view_schemadrift"
    VIEW_OPERATORACTION = "tdscore.view_operatoraction"

    @property
    def codename(self) -> str:
        return self.value.partition(".")[2]


# What the HTML dashboard shows on its one page: a user who may not see all of it sees none of it.
DASHBOARD = (Perm.VIEW_QUEUEITEM, Perm.VIEW_DEADLETTER, Perm.VIEW_ALERT, Perm.VIEW_SYNCRUN, Perm.VIEW_SYNCCURSOR)


def allows(user, *perms: Perm) -> bool:
    """May `user` do what needs every one of `perms`? Never without being active staff."""
    if not (user.is_active and user.is_staff):
        return False
    return user.has_perms([str(perm) for perm in perms])


def granted(user) -> dict[str, bool]:
    """Each permission by codename (`can.replay_deadletter`), for templates deciding which buttons to show."""
    return {perm.codename: allows(user, perm) for perm in Perm}


def required(*perms: Perm) -> Callable:
    """For an HTML view: anonymous and non-staff users go to the login page, staff without `perms` get 403."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def guarded(request, *args, **kwargs):
            if not allows(request.user, *perms):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return staff_member_required(guarded)

    return decorate


# --- The two groups ---------------------------------------------------------------------------------

OPERATORS = "TDS operators"
VIEWERS = "TDS viewers"
# The apps whose models are TDS Core's own (monitoring and dashboard have none).
TDS_APPS = ("tdscore", "sync", "zoho", "erp", "alerts")


def ensure_groups(apps=global_apps) -> None:
    """Create or complete the two groups; run again, it changes nothing. `apps` is a migration's
    historical registry or the live one. The permission rows are created first when `post_migrate`
    has not run yet (a fresh database migrates before any of them exist)."""
    for label in TDS_APPS:
        create_permissions(global_apps.get_app_config(label), apps=apps, verbosity=0)
    permission = apps.get_model("auth", "Permission")
    group = apps.get_model("auth", "Group")
    ours = permission.objects.filter(content_type__app_label__in=TDS_APPS)
    # Adding or deleting rows by hand is no operator's business: sync writes them, retention removes them.
    operators = ours.exclude(codename__startswith="add_").exclude(codename__startswith="delete_")
    viewers = ours.filter(codename__startswith="view_")
    for name, rows in ((OPERATORS, operators), (VIEWERS, viewers)):
        row, _ = group.objects.get_or_create(name=name)
        row.permissions.add(*rows)
