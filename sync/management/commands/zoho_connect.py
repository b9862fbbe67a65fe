"""`manage.py zoho_connect --code CODE`: store a self client's refresh token, list its organisations."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from sync.zoho.connect import ConnectError, connect
from tdscore.actions import Actor


class Command(BaseCommand):
    help = (
        "Exchange a Zoho self-client grant code (API console → Self Client → Generate Code) for a refresh "
        "token, store it encrypted, and print the organisations it reaches (docs/ZOHO_SETUP.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--code", required=True, help="the grant code; it works once, within minutes")

    def handle(self, *args, code: str, **options):
        try:
            connection = connect(code, now=timezone.now(), actor=Actor.command())
        except ConnectError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Connected: refresh token stored encrypted; API host {connection.api_domain}")
        if connection.scope:
            self.stdout.write(f"Scopes granted: {connection.scope}")
        if settings.ZOHO_REFRESH_TOKEN:
            self.stdout.write(
                "Note: ZOHO_REFRESH_TOKEN is set and wins over the stored token; unset it to use this one."
            )
        self.stdout.write("Organisations this token reaches (set ZOHO_ORGANIZATION_ID to one):")
        for org in connection.organizations:
            chosen = (
                " ← ZOHO_ORGANIZATION_ID" if str(org.get("organization_id")) == settings.ZOHO_ORGANIZATION_ID else ""
            )
            self.stdout.write(
                f"  {org.get('organization_id')}  {org.get('name', '')}  "
                f"({org.get('currency_code', '')}, {org.get('time_zone', '')}){chosen}"
            )
