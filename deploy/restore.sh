#!/usr/bin/env bash
# Restore a dump made by deploy/backup.sh into an EMPTY database.
#
#   deploy/restore.sh DUMP TARGET_URL
#
# Stop the web server and the workers first (docs/OPERATIONS.md "Backup and restore"), restore into a
# new database, check it, then point DATABASE_URL at it. Restoring over a live database is refused:
# the target must have no tables.
set -euo pipefail

dump="${1:?usage: restore.sh DUMP TARGET_URL}"
target="${2:?usage: restore.sh DUMP TARGET_URL}"
target="${target%%\?*}"
[ -r "$dump" ] || { echo "restore.sh: cannot read $dump" >&2; exit 2; }

tables=$(psql --no-psqlrc --tuples-only --no-align --dbname="$target" \
  --command="SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
if [ "$tables" != "0" ]; then
  echo "restore.sh: $target already has $tables tables; restore into an empty database" >&2
  exit 2
fi

# One transaction: a restore that fails half way leaves the target empty, not half filled.
pg_restore --no-owner --single-transaction --exit-on-error --dbname="$target" "$dump"
psql --no-psqlrc --tuples-only --no-align --dbname="$target" \
  --command="SELECT 'restored: ' || count(*) || ' tables' FROM pg_tables WHERE schemaname = 'public'"
