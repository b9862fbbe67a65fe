"""The database connection pool belongs to the process that opened it.

Django keeps one psycopg pool per process and alias (settings: TDS_DB_POOL_MAX). A process forked
after using the database (django-q2's sentinel spawning its workers, a bench forking drainers)
would inherit the pool with its idle connections and hand the child sockets the parent still
talks on: two processes interleaving one PostgreSQL session. `connections.close_all()` before a
fork, enough without a pool, only returns the connections to it. So the child forgets the pools
it inherited (without closing them: closing would end the parent's sessions) and opens its own.
"""

from __future__ import annotations

import os
import sys


def _forget_inherited_pools() -> None:
    backend = sys.modules.get("django.db.backends.postgresql.base")
    if backend is not None:
        backend.DatabaseWrapper._connection_pools.clear()


def forget_pools_in_forked_children() -> None:
    os.register_at_fork(after_in_child=_forget_inherited_pools)
