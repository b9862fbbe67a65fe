#!/usr/bin/env bash
# Dump the TDS Core database (pg_dump custom format: compressed, restorable table by table) and
# delete dumps older than the retention. Run daily by tdscore-backup.timer; safe to run by hand.
#
#   DATABASE_URL              the database (postgres://user@host:port/name), as the app reads it
#   TDS_BACKUP_DIR            where dumps go (default /var/backups/tdscore)
#   TDS_BACKUP_RETENTION_DAYS days a dump is kept (default 30)
#
# Prints the path of the new dump. Restore: deploy/restore.sh (docs/OPERATIONS.md).
set -euo pipefail

: "${DATABASE_URL:?DATABASE_URL is not set}"
dir="${TDS_BACKUP_DIR:-/var/backups/tdscore}"
keep_days="${TDS_BACKUP_RETENTION_DAYS:-30}"
case "$DATABASE_URL" in
  postgres://*|postgresql://*) ;;
  *) echo "backup.sh: DATABASE_URL is not PostgreSQL; back up the SQLite file instead (docs/OPERATIONS.md)" >&2; exit 2 ;;
esac
# libpq refuses Django's own URL options (?conn_max_age=…); the connection needs none of them.
url="${DATABASE_URL%%\?*}"

mkdir -p "$dir"
name="tdscore-$(date -u +%Y%m%dT%H%M%SZ).dump"
partial="$dir/.$name.partial"
trap 'rm -f "$partial"' EXIT

pg_dump --format=custom --compress=6 --no-owner --file="$partial" "$url"
# A dump that pg_restore cannot read is no backup: check its table of contents before keeping it.
pg_restore --list "$partial" > /dev/null
mv "$partial" "$dir/$name"
trap - EXIT

find "$dir" -maxdepth 1 -name 'tdscore-*.dump' -type f -mtime +"$((keep_days - 1))" -delete
echo "$dir/$name"
