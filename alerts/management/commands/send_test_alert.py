"""`manage.py send_test_alert [--channel C]`: a test notification through each enabled channel, or one."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from alerts import channels, send_test


class Command(BaseCommand):
    help = "Send a test notification through every enabled alert channel (or one) and report each delivery."

    def add_arguments(self, parser):
        parser.add_argument("--channel", choices=channels.NAMES, help="only this channel")

    def handle(self, *args, channel=None, **options):
        enabled = channels.enabled()
        if channel and channel not in enabled:
            names = " and ".join(channels.SETTINGS[channel])
            raise CommandError(f"channel {channel} is not enabled: set {names}")
        if not enabled:
            raise CommandError("no alert channel is enabled: alerts are recorded and shown, but nobody is notified")
        deliveries = send_test.send_test([channel] if channel else enabled, by="cli", now=timezone.now())
        for delivery in deliveries:
            line = f"{delivery.channel}: {delivery.status}" + (f" ({delivery.error})" if delivery.error else "")
            self.stdout.write(line)
        failed = [d.channel for d in deliveries if d.status != d.Status.SENT]
        if failed:
            raise CommandError(f"not delivered: {', '.join(failed)}")
