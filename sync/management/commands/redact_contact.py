"""`manage.py redact_contact --zoho-id ID [--archive DIR …]`: erase a contact's personal data."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from sync import redaction
from sync.progress import Progress
from tdscore.actions import Actor


class Command(BaseCommand):
    help = (
        "Erase a contact's name, e-mail, phone numbers and addresses from the ERP rows, stored webhook bodies, "
        "queue payloads, dead letters, logs, alerts, the audit trail's copies and the archives named; keep it on "
        "the erasure list so later webhooks about it are redacted on arrival."
    )

    def add_arguments(self, parser):
        parser.add_argument("--zoho-id", required=True, help="the contact's Zoho contact_id")
        parser.add_argument(
            "--archive",
            type=Path,
            action="append",
            default=[],
            metavar="DIR",
            help="a directory `cleanup --archive` wrote to; repeat for each (its .jsonl.gz files are rewritten)",
        )

    def handle(self, *args, zoho_id: str, archive: list[Path], **options):
        missing = [str(d) for d in archive if not d.is_dir()]
        if missing:
            raise CommandError(f"no such archive directory: {', '.join(missing)}")
        total = redaction.steps(archive)
        with Progress(self.stdout, "erasing", total=total, unit="tables", every=max(total // 4, 1)) as progress:
            try:
                erasure = redaction.erase(
                    zoho_id,
                    actor=Actor.command(),
                    archives=archive,
                    progress=lambda table: progress.advance(table=table),
                )
            except redaction.UnknownContact as exc:
                raise CommandError(str(exc)) from None
        for table, count in sorted(erasure.rows.items()):
            self.stdout.write(f"{table}: {count} rows redacted")
        self.stdout.write(f"archives rewritten: {erasure.archives_rewritten}")
        if not archive:
            self.stdout.write("no --archive given: archives written by `cleanup --archive` were not searched")
        self.stdout.write(
            f"erased contact {erasure.zoho_id}: {', '.join(erasure.fields) or 'no personal fields held'}; "
            "it stays on the erasure list"
        )
