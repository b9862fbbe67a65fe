"""`manage.py check_alerts`: evaluate the alert rules once, notify, and print what was found."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from alerts import alert_round
from alerts.alert_message import number


class Command(BaseCommand):
    help = "Evaluate the alert rules once and send the notifications they call for (exit 0)."

    def handle(self, *args, **options):
        done = alert_round.run()
        result = done.evaluation
        for finding in result.findings:
            value = (
                f" (value {number(finding.value)}, threshold {number(finding.threshold)})"
                if finding.value is not None
                else ""
            )
            self.stdout.write(f"{finding.severity:<8} {finding.fingerprint}: {finding.title}{value}")
        for name, error in result.failed_rules.items():
            self.stderr.write(f"rule {name} failed: {error}")
        self.stdout.write(
            f"{len(result.findings)} finding{'' if len(result.findings) == 1 else 's'}: {len(result.raised)} raised, {len(result.repeated)} repeated, "
            f"{len(result.resolved)} resolved, {len(result.escalated)} escalated, {len(result.reminded)} reminded, "
            f"{result.silenced} silenced"
        )
        sent = ", ".join(f"{n} {status}" for status, n in sorted(done.deliveries.items())) or "none"
        self.stdout.write(f"deliveries: {sent}")
