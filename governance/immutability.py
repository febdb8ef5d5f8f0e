"""Database triggers that make the ledger tables append-only.

Hand-written SQL (not django-pgtrigger, whose triggers any session can switch off). On
PostgreSQL the triggers are `ENABLE ALWAYS`, so `SET session_replication_role = replica` does
not skip them, and they fire for the table owner too; only `ALTER TABLE ... DISABLE TRIGGER`
by the owner or a superuser removes them, which the runtime role of the deployment guide
(INSERT and SELECT only) cannot do.
"""

from __future__ import annotations

PROTECTED_TABLES = ("governance_decisionrecord", "governance_checkpoint")
_FUNCTION = "steward_refuse_ledger_change"


def _pg_triggers(table: str) -> tuple[str, str]:
    return (f"{table}_no_update_delete", f"{table}_no_truncate")


def install_sql(vendor: str) -> list[str]:
    if vendor == "postgresql":
        statements = [
            f"""
            CREATE OR REPLACE FUNCTION {_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'the decision ledger is append-only: % on % refused',
                    TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
            END
            $$
            """
        ]
        for table in PROTECTED_TABLES:
            row_trigger, truncate_trigger = _pg_triggers(table)
            statements += [
                f"CREATE TRIGGER {row_trigger} BEFORE UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {_FUNCTION}()",
                f"CREATE TRIGGER {truncate_trigger} BEFORE TRUNCATE ON {table} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {_FUNCTION}()",
                f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {row_trigger}",
                f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {truncate_trigger}",
            ]
        return statements
    if vendor == "sqlite":
        statements = []
        for table in PROTECTED_TABLES:
            for operation in ("UPDATE", "DELETE"):
                statements.append(
                    f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'the decision ledger is append-only: "
                    f"{operation} on {table} refused'); END"
                )
        return statements
    raise NotImplementedError(f"no append-only triggers for database vendor {vendor!r}")


def uninstall_sql(vendor: str) -> list[str]:
    if vendor == "postgresql":
        statements = []
        for table in PROTECTED_TABLES:
            for trigger in _pg_triggers(table):
                statements.append(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
        return [*statements, f"DROP FUNCTION IF EXISTS {_FUNCTION}()"]
    if vendor == "sqlite":
        return [
            f"DROP TRIGGER IF EXISTS {table}_no_{operation}"
            for table in PROTECTED_TABLES
            for operation in ("update", "delete")
        ]
    raise NotImplementedError(vendor)


# Other apps' protective triggers that a test flush must also lift: callables
# vendor -> (off statements, on statements), registered from their AppConfig.ready().
EXTRA_SUSPENDERS: list = []


def suspend_sql(vendor: str) -> tuple[list[str], list[str]]:
    """Statements that lift the triggers and put them back, for use inside one transaction
    (the test database's flush; never on a live deployment)."""
    off, on = _own_suspend_sql(vendor)
    for suspender in EXTRA_SUSPENDERS:
        extra_off, extra_on = suspender(vendor)
        off, on = off + extra_off, on + extra_on
    return off, on


def _own_suspend_sql(vendor: str) -> tuple[list[str], list[str]]:
    if vendor == "postgresql":
        off, on = [], []
        for table in PROTECTED_TABLES:
            for trigger in _pg_triggers(table):
                off.append(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}")
                on.append(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {trigger}")
        return off, on
    if vendor == "sqlite":
        return uninstall_sql(vendor), install_sql(vendor)
    raise NotImplementedError(vendor)
