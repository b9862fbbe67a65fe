"""deploy/backup.sh dumps the database and keeps 30 days of dumps; deploy/restore.sh brings a dump
back into an empty database with the same rows (docs/OPERATIONS.md "Backup and restore")."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from django.db import connection

from sync.models import InboxEvent, QueueItem
from tests.factories import inbox_event, queue_item

from .conftest import DEPLOY, tool

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _url(name: str) -> str:
    settings = connection.settings_dict
    return f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT']}/{name}?conn_max_age=0"


def _psql(url: str, sql: str) -> str:
    result = subprocess.run(
        [tool("psql"), "--no-psqlrc", "-tA", f"--dbname={url.split('?')[0]}", "-c", sql],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return result.stdout.strip()


def _row_counts(url: str) -> dict[str, int]:
    tables = _psql(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1").split()
    return {table: int(_psql(url, f'SELECT count(*) FROM "{table}"')) for table in tables}


def _backup(tmp_path: Path, **env: str) -> Path:
    tool("pg_dump")
    result = subprocess.run(
        [str(DEPLOY / "backup.sh")],
        env={**os.environ, "DATABASE_URL": _url(connection.settings_dict["NAME"]), "TDS_BACKUP_DIR": str(tmp_path), **env},
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip())


@pytest.fixture
def empty_database():
    name = f"tds_restore_{os.getpid()}"
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute(f'CREATE DATABASE "{name}"')
    yield _url(name)
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_backup_restores_with_the_same_row_counts(tmp_path, empty_database):
    for n in range(5):
        queue_item(object_id=f"item-{n}", inbox_event=inbox_event())
    source = _url(connection.settings_dict["NAME"])
    dump = _backup(tmp_path)
    assert dump.exists() and dump.stat().st_size > 0

    restored = subprocess.run([str(DEPLOY / "restore.sh"), str(dump), empty_database], capture_output=True, text=True)

    assert restored.returncode == 0, restored.stderr
    counts = _row_counts(empty_database)
    assert counts == _row_counts(source)
    assert counts["tds_sync_queue"] == QueueItem.objects.count() == 5
    assert counts["tds_inbox_events"] == InboxEvent.objects.count() == 5


def test_restore_refuses_a_database_that_has_tables(tmp_path):
    dump = _backup(tmp_path)
    refused = subprocess.run(
        [str(DEPLOY / "restore.sh"), str(dump), _url(connection.settings_dict["NAME"])], capture_output=True, text=True
    )
    assert refused.returncode == 2 and "restore into an empty database" in refused.stderr


def test_dumps_older_than_the_retention_are_deleted(tmp_path):
    old, recent = tmp_path / "tdscore-20260101T000000Z.dump", tmp_path / "tdscore-20260120T000000Z.dump"
    for path, days in ((old, 31), (recent, 29)):
        path.write_bytes(b"dump")
        stamp = time.time() - days * 86400
        os.utime(path, (stamp, stamp))

    new = _backup(tmp_path, TDS_BACKUP_RETENTION_DAYS="30")

    assert sorted(p.name for p in tmp_path.glob("tdscore-*.dump")) == sorted([recent.name, new.name])
