"""`flush`, refusing to erase the decision log outside a test database.

Django's test framework flushes the test database between transactional tests; the ledger's
append-only triggers refuse that, so on a test database (name starting with "test_") the
triggers are lifted and restored inside the same transaction. Anywhere else, flushing a
database that holds ledger records is refused.
"""

from django.core.management.base import CommandError
from django.core.management.commands.flush import Command as DjangoFlush
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from governance.immutability import suspend_sql


def is_test_database(connection) -> bool:
    name = str(connection.settings_dict.get("NAME") or "")
    test_name = str((connection.settings_dict.get("TEST") or {}).get("NAME") or "")
    return (
        name.split("/")[-1].startswith("test_")
        or (test_name and name == test_name)
        or (connection.vendor == "sqlite" and connection.is_in_memory_db())
    )


class Command(DjangoFlush):
    def handle(self, **options):
        connection = connections[options.get("database") or DEFAULT_DB_ALIAS]
        if not is_test_database(connection):
            with connection.cursor() as cursor:
                cursor.execute("SELECT EXISTS (SELECT 1 FROM governance_decisionrecord)")
                (has_records,) = cursor.fetchone()
            if has_records:
                raise CommandError(
                    "flush would erase the decision log, which is append-only evidence; refused."
                )
            return super().handle(**options)
        off, on = suspend_sql(connection.vendor)
        with transaction.atomic(using=connection.alias):
            with connection.cursor() as cursor:
                for statement in off:
                    cursor.execute(statement)
            super().handle(**options)
            with connection.cursor() as cursor:
                for statement in on:
                    cursor.execute(statement)
