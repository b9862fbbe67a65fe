"""On PostgreSQL the database itself refuses UPDATE and DELETE on the audit trail.

TRUNCATE stays allowed: it is what test teardown (flush) uses, and no code path truncates.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION tds_audit_trail_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'tds_audit_trail is append-only'
        USING ERRCODE = 'insufficient_privilege', DETAIL = TG_OP || ' refused';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER tds_audit_trail_immutable
    BEFORE UPDATE OR DELETE ON tds_audit_trail
    FOR EACH ROW EXECUTE FUNCTION tds_audit_trail_immutable();
"""
DROP = """
DROP TRIGGER IF EXISTS tds_audit_trail_immutable ON tds_audit_trail;
DROP FUNCTION IF EXISTS tds_audit_trail_immutable();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("sync", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
