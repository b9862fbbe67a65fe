"""The API's permission check: each view names what each method needs, and tdscore.permissions
answers, as it does for the admin and the dashboard. A token authenticates its user, so a token
carries exactly that user's permissions."""

from __future__ import annotations

from rest_framework import permissions

from tdscore.permissions import Perm, allows

READS = ("GET", "HEAD", "OPTIONS")


class Needs(permissions.BasePermission):
    """`view.needs = {"GET": (Perm…,), "POST": (Perm…,)}`; HEAD and OPTIONS need what GET needs.
    A method the view does not name is left to staff, and the view answers it 405; a view that names
    nothing is refused to everyone, so a new view is closed until it says who may use it."""

    def has_permission(self, request, view) -> bool:
        needs: dict[str, tuple[Perm, ...]] | None = getattr(view, "needs", None)
        if needs is None:
            return False
        method = "GET" if request.method in READS else request.method
        return allows(request.user, *needs.get(method, ()))
