"""The runtime database role of docs/deployment.md, created from the SQL printed there.

The role is created inside the test's transaction (so it disappears with it) and the test
switches to it with SET LOCAL ROLE: Steward appends through it, and cannot change, remove or
unprotect ledger records.
"""

from __future__ import annotations

import re
import secrets

import pytest
from django.db import DatabaseError, connection, transaction

from governance import checkpoints, ledger
from governance.immutability import PROTECTED_TABLES
from governance.models import DecisionRecord, User
from governance.verify import verify_chain
from tests.integration.ledger_helpers import ROOT, fill

pytestmark = pytest.mark.postgres

GUIDE = ROOT / "docs" / "deployment.md"


def runtime_role_sql() -> list[str]:
    """The statements between the runtime-role markers of the deployment guide."""
    text = GUIDE.read_text()
    block = re.search(
        r"<!-- runtime-role:begin -->\s*```sql\n(.*?)```\s*<!-- runtime-role:end -->", text, re.S
    )
    assert block, f"no runtime-role SQL block in {GUIDE}"
    sql = "\n".join(line.split("--")[0] for line in block[1].splitlines())
    return [statement.strip() for statement in sql.split(";") if statement.strip()]


@pytest.fixture
def runtime_role(db):
    """Switch this test's connection to a fresh role made by the guide's SQL."""
    fill(2)
    checkpoints.make_checkpoint("manual")
    role = f"steward_app_{secrets.token_hex(4)}"
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        (owner,) = cursor.fetchone()
        cursor.execute(f"CREATE ROLE {role} NOLOGIN")
        # A hardened database grants no function to PUBLIC: the guide's grants must suffice.
        cursor.execute(
            "REVOKE EXECUTE ON FUNCTION steward_ledger_chain(text, text[], text[]) FROM PUBLIC"
        )
        for statement in runtime_role_sql():
            statement = re.sub(r"\bsteward_app\b", role, statement)
            cursor.execute(re.sub(r"\bsteward_owner\b", owner, statement))
        cursor.execute(f"SET LOCAL ROLE {role}")
    return role


def test_the_guide_grants_the_runtime_role_select_and_insert_only_on_the_ledger(runtime_role):
    with connection.cursor() as cursor:
        for table in PROTECTED_TABLES:
            cursor.execute(
                "SELECT privilege FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', "
                "'TRUNCATE', 'REFERENCES', 'TRIGGER']) AS privilege "
                "WHERE has_table_privilege(%s, %s, privilege)",
                [runtime_role, table],
            )
            assert sorted(row[0] for row in cursor.fetchall()) == ["INSERT", "SELECT"]
        cursor.execute(
            "SELECT has_table_privilege(%s, 'governance_ledgerhead', 'UPDATE')", [runtime_role]
        )
        assert cursor.fetchone()[0] is True


def test_the_runtime_role_appends_signs_and_verifies(runtime_role):
    with transaction.atomic():
        record = ledger.append("test.as_runtime_role", actor=None, body={"n": 3})
    assert record.seq == 3
    with transaction.atomic(), ledger.deferred():  # the engine's way: chained in the server
        batch = [ledger.append("test.as_runtime_role", actor=None, body={"n": n}) for n in (4, 5)]
    assert [r.seq for r in batch] == [4, 5]
    assert checkpoints.make_checkpoint("manual").seq == 5
    report = verify_chain()
    assert (report.ok, report.head_seq, report.checkpoints_checked) == (True, 5, 2)
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0] == runtime_role


def test_the_runtime_role_uses_the_other_tables_normally(runtime_role):
    user = User.objects.create(username="runtime-role-check")
    User.objects.filter(pk=user.pk).update(first_name="Checked")
    User.objects.filter(pk=user.pk).delete()
    assert not User.objects.filter(username="runtime-role-check").exists()


@pytest.mark.parametrize("table", PROTECTED_TABLES)
@pytest.mark.parametrize(
    "statement",
    ["UPDATE {table} SET seq = seq + 1000", "DELETE FROM {table}", "TRUNCATE {table}"],
    ids=["update", "delete", "truncate"],
)
def test_the_runtime_role_cannot_change_or_remove_ledger_rows(runtime_role, table, statement):
    with (
        pytest.raises(DatabaseError, match="permission denied"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement.format(table=table))
    assert DecisionRecord.objects.count() == 2


@pytest.mark.parametrize("table", PROTECTED_TABLES)
def test_the_runtime_role_cannot_disable_the_triggers(runtime_role, table):
    with (
        pytest.raises(DatabaseError, match="must be owner"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER ALL")
