from django.db import migrations

from governance.immutability import install_sql, uninstall_sql

GENESIS_HASH = "0" * 64


def create_head(apps, schema_editor):
    LedgerHead = apps.get_model("governance", "LedgerHead")
    LedgerHead.objects.get_or_create(chain="main", defaults={"seq": 0, "hash": GENESIS_HASH})


def install_triggers(apps, schema_editor):
    for statement in install_sql(schema_editor.connection.vendor):
        schema_editor.execute(statement, params=None)


def uninstall_triggers(apps, schema_editor):
    for statement in uninstall_sql(schema_editor.connection.vendor):
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("governance", "0003_ledger")]

    operations = [
        migrations.RunPython(create_head, migrations.RunPython.noop),
        migrations.RunPython(install_triggers, uninstall_triggers),
    ]
