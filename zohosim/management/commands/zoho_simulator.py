"""`manage.py zoho_simulator [--port 8001] [--demo]`: the built-in Zoho Books/Inventory simulator.

It accepts the credentials in settings (ZOHO_CLIENT_ID…), enforces Zoho's limits for ZOHO_PLAN
(limits.PLANS; a plan Zoho does not have gets the free plan's), and with --demo seeds every entity
and keeps changing a few records every few seconds, pushing most changes as webhooks to TDS Core,
authenticated with the first value of each configured
TDS_WEBHOOK_TOKEN / TDS_WEBHOOK_SECRET / TDS_ZOHO_WEBHOOK_SECRET / TDS_STANDARD_WEBHOOK_SECRET.

`--grant-code` asks the simulator running on --port for a self-client grant code, as Zoho's API
console generates one, and prints it: `manage.py zoho_connect --code CODE` can then be rehearsed
end to end (docs/ZOHO_SETUP.md).
"""

from __future__ import annotations

import random
import signal
import threading

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from zohosim import ZohoSimulator
from zohosim.demo import demo_tick, seed_demo
from zohosim.limits import PER_MINUTE, PLANS
from zohosim.oauth import FULL_SCOPE, GRANT_CODE_PATH, GRANT_TTL_DEFAULT


def _first(values: list[str]) -> str | None:
    return values[0] if values else None


class Command(BaseCommand):
    help = "Run the built-in Zoho Books/Inventory simulator (API and OAuth token endpoint at one URL)."
    # It stands in for Zoho, outside TDS Core: TDS Core's own configuration warnings are not its business.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8001)
        parser.add_argument("--demo", action="store_true", help="seed sample data and keep changing it")
        parser.add_argument("--interval", type=float, default=5.0, help="seconds between demo changes")
        parser.add_argument("--webhook-target", default="http://127.0.0.1:8000", help="TDS Core's base URL")
        parser.add_argument("--no-limits", action="store_true", help="no per-minute, daily or concurrency limit")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--grant-code",
            action="store_true",
            help="print a self-client grant code from the simulator running on --port, for zoho_connect",
        )
        parser.add_argument("--scope", default=FULL_SCOPE, help="with --grant-code: the scopes the code grants")

    def handle(self, *args, **options):
        if options["grant_code"]:
            return self.print_grant_code(options["port"], options["scope"])
        plan = settings.ZOHO_PLAN.lower()
        limits = PLANS.get(plan, PLANS["free"])
        limited = not options["no_limits"]
        sim = ZohoSimulator(
            client_id=settings.ZOHO_CLIENT_ID or "sim-client",
            client_secret=settings.ZOHO_CLIENT_SECRET or "sim-secret",
            refresh_token=settings.ZOHO_REFRESH_TOKEN or "sim-refresh",
            organization_id=settings.ZOHO_ORGANIZATION_ID or "60012345",
            per_minute_limit=PER_MINUTE if limited else None,
            daily_limit=limits.daily if limited else None,
            concurrency_limit=limits.concurrency if limited else None,
            webhook_target=options["webhook_target"],
            webhook_token=_first(settings.TDS_WEBHOOK_TOKEN),
            webhook_secret=_first(settings.TDS_WEBHOOK_SECRET),
            zoho_webhook_secret=_first(settings.TDS_ZOHO_WEBHOOK_SECRET),
            standard_webhook_secret=_first(settings.TDS_STANDARD_WEBHOOK_SECRET),
            seed=options["seed"],
            port=options["port"],
        )
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        with sim:
            self.stdout.write(f"Zoho simulator on {sim.url} (organization {sim.organization_id}, plan {plan})")
            if options["demo"]:
                self.stdout.write(f"Seeded {seed_demo(sim)} objects; changes go to {options['webhook_target']}")
            rng = random.Random(options["seed"])
            while not stop.wait(options["interval"]):
                if not options["demo"]:
                    continue
                for change in demo_tick(sim, rng):
                    sent = f"webhook {change.delivered}" if change.delivered else "no webhook"
                    self.stdout.write(f"{change.action} {change.slug} {change.zoho_id} ({sent})")
        self.stdout.write("Zoho simulator stopped.")

    def print_grant_code(self, port: int, scope: str) -> None:
        url = f"http://127.0.0.1:{port}{GRANT_CODE_PATH}"
        form = {
            "client_id": settings.ZOHO_CLIENT_ID or "sim-client",
            "client_secret": settings.ZOHO_CLIENT_SECRET or "sim-secret",
            "scope": scope,
            "expires_in": GRANT_TTL_DEFAULT,
        }
        try:
            answer = httpx.post(url, data=form, timeout=5)
        except httpx.HTTPError as exc:
            raise CommandError(f"no simulator answers at {url} ({exc}); start it with `zoho_simulator`") from exc
        body = answer.json()
        if answer.status_code != 200:
            raise CommandError(f"the simulator refused: {body.get('error')} {body.get('detail', '')}".strip())
        minutes = body["expires_in"] // 60
        self.stdout.write(body["code"])
        self.stderr.write(
            f"A grant code for {body['scope']}, good once for {minutes} minutes: manage.py zoho_connect --code CODE"
        )
