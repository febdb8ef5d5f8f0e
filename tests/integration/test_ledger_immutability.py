"""The database itself refuses to change or remove ledger records and checkpoints.

PostgreSQL: UPDATE, DELETE and TRUNCATE are refused by triggers installed `ENABLE ALWAYS`, so
they fire for the table owner too and `session_replication_role = replica` does not skip them.
SQLite: UPDATE and DELETE are refused; the SQLite tests build their own database file by running
`migrate` in a subprocess, so they run whatever database the suite itself uses.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import subprocess
import sys

import pytest
from django.db import DatabaseError, connection, transaction

from governance import checkpoints
from governance.immutability import PROTECTED_TABLES
from tests.integration.ledger_helpers import ROOT, fill

REFUSED = "the decision ledger is append-only"
CHANGES = {
    "UPDATE": "UPDATE {table} SET seq = seq + 1000",
    "DELETE": "DELETE FROM {table}",
}


@pytest.fixture
def ledger_rows(db):
    fill(3)
    checkpoints.make_checkpoint("manual")


def count(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608
        return cursor.fetchone()[0]


def assert_refused(statement: str, table: str) -> None:
    before = count(table)
    with (
        pytest.raises(DatabaseError, match=REFUSED),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)
    assert count(table) == before


# --- PostgreSQL -----------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize("table", PROTECTED_TABLES)
@pytest.mark.parametrize("operation", CHANGES)
def test_postgres_refuses_update_and_delete(ledger_rows, table, operation):
    assert_refused(CHANGES[operation].format(table=table), table)


@pytest.mark.postgres
@pytest.mark.parametrize("table", PROTECTED_TABLES)
def test_postgres_refuses_truncate(ledger_rows, table):
    assert_refused(f"TRUNCATE {table}", table)


@pytest.mark.postgres
@pytest.mark.parametrize("table", PROTECTED_TABLES)
def test_postgres_refuses_the_table_owner(ledger_rows, table):
    owner = f"steward_owner_{secrets.token_hex(4)}"  # rolled back with the test's transaction
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {owner} NOLOGIN")
        cursor.execute(f"GRANT USAGE ON SCHEMA public TO {owner}")
        cursor.execute(f"ALTER TABLE {table} OWNER TO {owner}")
        cursor.execute(f"SET LOCAL ROLE {owner}")
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0] == owner
    for statement in (*CHANGES.values(), "TRUNCATE {table}"):
        assert_refused(statement.format(table=table), table)


@pytest.mark.postgres
@pytest.mark.parametrize("table", PROTECTED_TABLES)
def test_postgres_refuses_under_replica_session_replication_role(ledger_rows, table):
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
    for statement in (*CHANGES.values(), "TRUNCATE {table}"):
        assert_refused(statement.format(table=table), table)


@pytest.mark.postgres
def test_postgres_triggers_are_enabled_always(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgrelid::regclass::text, tgname, tgenabled FROM pg_trigger "
            "WHERE tgrelid = ANY(%s::regclass[]) AND NOT tgisinternal ORDER BY 1, 2",
            [list(PROTECTED_TABLES)],
        )
        triggers = cursor.fetchall()
    assert len(triggers) == 2 * len(PROTECTED_TABLES)
    assert {enabled for _, _, enabled in triggers} == {"A"}


# --- SQLite ---------------------------------------------------------------------------------

MIGRATE_AND_APPEND = """
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0, interactive=False)
from governance import checkpoints, ledger
ledger.append("test.sqlite", actor=None, body={"n": 1})
checkpoints.make_checkpoint("manual")
"""


@pytest.fixture(scope="module")
def sqlite_ledger(tmp_path_factory):
    """A migrated SQLite database file holding one record and one checkpoint."""
    folder = tmp_path_factory.mktemp("sqlite-ledger")
    path = folder / "steward.sqlite3"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("STEWARD_", "CELERY_")) and key != "DATABASE_URL"
    }
    env.update(
        DJANGO_SETTINGS_MODULE="console.settings",
        DATABASE_URL=f"sqlite:///{path}",
        STEWARD_VAR_DIR=str(folder / "var"),
    )
    done = subprocess.run(
        [sys.executable, "-c", MIGRATE_AND_APPEND],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return path


@pytest.mark.parametrize("table", PROTECTED_TABLES)
@pytest.mark.parametrize("operation", CHANGES)
def test_sqlite_refuses_update_and_delete(sqlite_ledger, table, operation):
    db = sqlite3.connect(sqlite_ledger)
    try:
        (before,) = db.execute(f"SELECT count(*), sum(seq) FROM {table}").fetchall()  # noqa: S608
        assert before[0] == 1
        with pytest.raises(sqlite3.DatabaseError, match=REFUSED):
            db.execute(CHANGES[operation].format(table=table))
        db.rollback()
        assert db.execute(f"SELECT count(*), sum(seq) FROM {table}").fetchall() == [before]  # noqa: S608
    finally:
        db.close()
