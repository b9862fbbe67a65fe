"""The audit trail stays append-only on PostgreSQL, with one opening: erasure.

Inside a transaction that has set `tds.redaction` (sync.redaction, and nothing else), an UPDATE may
change `before` and `after`, the copies of a row that hold personal values; every other column must
stay as it was. Any other UPDATE, and every DELETE, is refused as before.
"""

from django.db import migrations

REDACTABLE = """
CREATE OR REPLACE FUNCTION tds_audit_trail_immutable() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND current_setting('tds.redaction', true) = 'on'
       AND to_jsonb(NEW) - 'before' - 'after' = to_jsonb(OLD) - 'before' - 'after' THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'tds_audit_trail is append-only'
        USING ERRCODE = 'insufficient_privilege', DETAIL = TG_OP || ' refused';
END;
$$ LANGUAGE plpgsql;
"""
APPEND_ONLY = """
CREATE OR REPLACE FUNCTION tds_audit_trail_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'tds_audit_trail is append-only'
        USING ERRCODE = 'insufficient_privilege', DETAIL = TG_OP || ' refused';
END;
$$ LANGUAGE plpgsql;
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(REDACTABLE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(APPEND_ONLY)


class Migration(migrations.Migration):
    dependencies = [("sync", "0012_provenance_drift_parents_erasure")]
    operations = [migrations.RunPython(forwards, backwards)]
