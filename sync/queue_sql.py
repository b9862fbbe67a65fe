"""The queue's hand-written SQL, whole and named, with the plan each statement relies on.

`sync.queue` runs them; everything else about the queue goes through the ORM. Values are %s
parameters in the order they appear. Where a statement is written by hand it is because it is on a
hot path (one round trip instead of two or three) or because the planner has to be steered; the
comment above each gives the plan PostgreSQL 15 chose for it (EXPLAIN, 50,000 rows of five entities,
a third finished), before and after ANALYZE. The indexes are declared on QueueItem.Meta
(sync/models.py).

Names are written unquoted: every table and column here is a lowercase identifier that neither
PostgreSQL nor SQLite reserves.
"""

from __future__ import annotations

from django.db import connection

from sync.models import InboxEvent, QueueItem

TABLE = QueueItem._meta.db_table
INBOX_TABLE = InboxEvent._meta.db_table
# Every column but the id, in model order: what save(), COPY and the webhook's statement insert.
INSERT_COLUMNS = [f.column for f in QueueItem._meta.concrete_fields if not f.primary_key]
ALL_COLUMNS = ", ".join(f.column for f in QueueItem._meta.concrete_fields)

# --- Enqueue ---------------------------------------------------------------------------------------

# A pull page into the queue. No plan: COPY appends to the heap and updates every index, the cost
# being the nine index entries per row (why several indexes are partial).
COPY_ROWS = f"COPY {TABLE} ({', '.join(INSERT_COLUMNS)}) FROM STDIN"


def crowded(keys: int) -> str:
    """The (entity, object_id) pairs among `keys` pairs of parameters that have more than one waiting row.

    Params: entity, object_id for each key, then the two waiting statuses.
    Plan: a Values Scan whose filter runs, per key, an Index Only Scan of the partial index
    tds_queue_waiting_object stopped at its second entry (LIMIT 2). Written so because the plain
    `entity IN … AND object_id IN … GROUP BY` form is planned from statistics, and in a full sync the
    queue grows by thousands of rows between ANALYZEs: the planner then scanned every waiting row of
    the entity for each page (19 ms a page at 50,000 rows, growing with the backlog).
    """
    values = ", ".join(["(%s, %s)"] * keys)
    return f"""
        WITH k(entity, object_id) AS (VALUES {values})
        SELECT k.entity, k.object_id FROM k
        WHERE (
            SELECT count(*) FROM (
                SELECT 1 FROM {TABLE} q
                WHERE q.entity = k.entity AND q.object_id = k.object_id AND q.status IN (%s, %s)
                LIMIT 2
            ) AS waiting
        ) > 1
    """


def supersede(*, summaries_only: bool, only_if: str = "") -> str:
    """Skip the waiting rows of one object with a strictly older version; RETURNING their inbox ids.

    Params: skipped status, skip reason `superseded`, finished_at, updated_at, entity, object_id, the
    two waiting statuses, the new version. `summaries_only`: a summary (list row) supersedes summaries
    only. `only_if`: one more condition (the webhook's "only when its inbox row was inserted").
    Plan: Index Scan of the partial index tds_queue_waiting_object on (entity, object_id), status and
    version filtered on the heap, before and after ANALYZE: it never walks an entity's backlog, and it
    runs on every enqueue, usually finding nothing.
    """
    conditions = ["entity = %s", "object_id = %s", "status IN (%s, %s)", "version < %s"]
    if summaries_only:
        conditions.append("is_summary")
    if only_if:
        conditions.append(only_if)
    return (
        f"UPDATE {TABLE} SET status = %s, skip_reason = %s, finished_at = %s, updated_at = %s"
        f" WHERE {' AND '.join(conditions)} RETURNING inbox_event_id"
    )


def mark_inbox_processed(inbox_ids: str) -> str:
    """Mark inbox rows `processed` (param: the status) whose ids `inbox_ids` lists or selects.

    Plan: Bitmap Index Scan of the inbox primary key (id = ANY).
    """
    return f"UPDATE {INBOX_TABLE} SET status = %s WHERE id IN ({inbox_ids})"


# --- Claim -------------------------------------------------------------------------------------------


def lease(picked: str | None) -> tuple[str, bool]:
    """Lease the rows `picked` selects (their ids) that are still waiting; RETURNING each whole row.

    Answers the statement and whether it ends with the waiting-status test. Params: processing
    status, worker id, locked_until, lease token, updated_at, the params of `picked` (with `picked`
    None: the one row's id), then, when the test is there, the two waiting statuses. The attempt is
    counted here. `version_stored` tells a version Python could not load (read as None, see
    sync.timestamps) from a row without one.

    Plan on PostgreSQL: `picked` (the ORM's due-rows query of one entity in claim order, LIMIT
    batch_size, FOR UPDATE SKIP LOCKED) runs once, as an InitPlan, an Index Scan of tds_queue_due;
    the update reaches its ids through the primary key. Written as `id = ANY(ARRAY(…))` because with
    `id IN (…)`, whenever the statistics counted no waiting rows (a quiet queue at the last ANALYZE,
    then a burst), the planner put `picked` inside a Nested Loop Semi Join, ran it again for every
    waiting row and leased them all: over 1,000,000 finished rows one claim of a 5,000-row backlog
    took 13 s and leased all 5,000, whatever batch_size said. No status test there: `picked` locked
    its rows, so they are still waiting, and the test would hand the planner tds_queue_due to walk
    the whole backlog with. On SQLite (no row locks; writers take turns) the test is what keeps a
    row another worker leased first from being leased twice. One row (`picked` None,
    sync.queue._lease_each): the primary key and the test. One statement in every case: the claimed
    rows come back with the claim instead of a second query reading them by lease token.
    """
    # SQLite 3.40 answers `version IS NOT NULL` (and CASE WHEN … IS NULL) wrongly in an UPDATE's
    # RETURNING when the row's version is NULL: 1 for every row. typeof() reads the value itself.
    on_postgresql = connection.vendor == "postgresql"
    stored = "version IS NOT NULL" if on_postgresql else "typeof(version) != 'null'"
    if picked is None:
        where, tested = "id = %s AND status IN (%s, %s)", True
    elif on_postgresql:
        where, tested = f"id = ANY(ARRAY({picked}))", False
    else:
        where, tested = f"id IN ({picked}) AND status IN (%s, %s)", True
    statement = f"""
        UPDATE {TABLE}
        SET status = %s, attempts = attempts + 1, locked_by = %s, locked_until = %s, lease_token = %s,
            updated_at = %s
        WHERE {where}
        RETURNING {ALL_COLUMNS}, {stored} AS version_stored
    """
    return statement, tested


# --- Finish ------------------------------------------------------------------------------------------


def finish(rows: int) -> str:
    """Complete or skip `rows` rows of one lease, each as its apply decided, and mark their inbox
    rows `processed`; answers with how many queue rows it finished.

    Params: the rows' ids and their skip reasons ('' = applied), on PostgreSQL as two arrays, else
    as a pair per row; the completed and skipped statuses; finished_at, updated_at; the lease token
    and the processing status; on PostgreSQL then the inbox's processed status. Elsewhere the
    statement RETURNS each row's inbox id, and the caller marks them with mark_inbox_processed.
    One statement whatever the mix of outcomes, and on PostgreSQL one round trip for the queue and
    the inbox together (a data-modifying WITH). Arrays there because psycopg parses a statement of
    more than 50 parameters again on every execution instead of caching it.
    Plan (5,000 rows, before and after ANALYZE): the lease's rows found by its token (the partial
    index tds_queue_lease_token, or tds_queue_status_entity with the token filtered), hashed and
    joined to the outcomes; the inbox rows through their primary key (Nested Loop).
    """
    update = f"""
        UPDATE {TABLE}
        SET status = CASE WHEN o.reason = '' THEN %s ELSE %s END, skip_reason = o.reason,
            finished_at = %s, updated_at = %s, locked_until = NULL, lease_token = NULL
        FROM o
        WHERE {TABLE}.id = o.id AND {TABLE}.lease_token = %s AND {TABLE}.status = %s
        RETURNING {TABLE}.inbox_event_id
    """
    if connection.vendor != "postgresql":
        return f"WITH o(id, reason) AS (VALUES {', '.join(['(%s, %s)'] * rows)}) {update}"
    return f"""
        WITH o AS (SELECT * FROM unnest(%s::bigint[], %s::text[]) AS o(id, reason)), done AS ({update}),
            inbox AS ({mark_inbox_processed("SELECT inbox_event_id FROM done")})
        SELECT count(*) FROM done
    """
