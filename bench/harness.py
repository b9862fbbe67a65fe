"""What the in-process benchmarks share: Django set up on a throwaway database of their own."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/tdscore"


@contextmanager
def throwaway_database(database_url: str) -> Iterator[None]:
    """Set Django up on `database_url`, then run inside a fresh migrated copy (test_<name>_<pid>),
    dropped at the end: a benchmark never writes to the live database."""
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tdscore.settings")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.test.utils import setup_databases, teardown_databases

    from sync import wakeup

    databases = setup_databases(verbosity=0, interactive=False)
    try:
        yield
    finally:
        wakeup.close_all()  # a drainer's listening connection would keep the database from being dropped
        teardown_databases(databases, verbosity=0)
