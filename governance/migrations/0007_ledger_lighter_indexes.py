from django.db import migrations, models

from governance.immutability import install_sql, uninstall_sql


def reinstall_sqlite_triggers(apps, schema_editor):
    """SQLite alters a column by building a new table and dropping the old one, and the
    append-only triggers go with the old table: put them back on the new one."""
    vendor = schema_editor.connection.vendor
    if vendor != "sqlite":
        return
    for statement in (*uninstall_sql(vendor), *install_sql(vendor)):
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0006_authorization_failures"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="decisionrecord",
            name="ledger_subject",
        ),
        migrations.AlterField(
            model_name="decisionrecord",
            name="hash",
            field=models.CharField(max_length=64),
        ),
        migrations.AddIndex(
            model_name="decisionrecord",
            index=models.Index(
                condition=models.Q(("subject_id", ""), _negated=True),
                fields=["subject_id"],
                name="ledger_subject",
            ),
        ),
        migrations.RunPython(reinstall_sqlite_triggers, migrations.RunPython.noop),
    ]
