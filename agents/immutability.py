"""Database triggers that freeze versions once they leave the draft state.

Published and rejected versions can never change; a submitted version may only move to
published, rejected or back to draft (withdrawn), with its definition untouched; only drafts
may be deleted. Enforced by the database, so no path (form, API, admin, shell) can bypass it.
"""

from __future__ import annotations

VERSION_TABLES = ("agents_agentversion", "agents_workflowversion")
_FUNCTION = "steward_freeze_versions"


def install_sql(vendor: str) -> list[str]:
    if vendor == "postgresql":
        statements = [
            f"""
            CREATE OR REPLACE FUNCTION {_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP = 'DELETE' THEN
                    IF OLD.status <> 'draft' THEN
                        RAISE EXCEPTION 'version % is %: only drafts can be deleted',
                            OLD.number, OLD.status USING ERRCODE = 'insufficient_privilege';
                    END IF;
                    RETURN OLD;
                END IF;
                IF NEW.number <> OLD.number THEN
                    RAISE EXCEPTION 'version numbers never change'
                        USING ERRCODE = 'insufficient_privilege';
                END IF;
                IF OLD.status IN ('published', 'rejected') THEN
                    RAISE EXCEPTION 'version % is %: frozen versions cannot be changed',
                        OLD.number, OLD.status USING ERRCODE = 'insufficient_privilege';
                END IF;
                IF OLD.status = 'submitted' AND NEW.definition IS DISTINCT FROM OLD.definition
                THEN
                    RAISE EXCEPTION 'version % is submitted for review: its definition is frozen',
                        OLD.number USING ERRCODE = 'insufficient_privilege';
                END IF;
                RETURN NEW;
            END
            $$
            """
        ]
        for table in VERSION_TABLES:
            trigger = f"{table}_frozen"
            statements += [
                f"CREATE TRIGGER {trigger} BEFORE UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {_FUNCTION}()",
                f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {trigger}",
            ]
        return statements
    if vendor == "sqlite":
        return [sql for table in VERSION_TABLES for sql in sqlite_triggers(table).values()]
    raise NotImplementedError(f"no version triggers for database vendor {vendor!r}")


def sqlite_triggers(table: str) -> dict[str, str]:
    return {
        f"{table}_frozen_update": (
            f"CREATE TRIGGER {table}_frozen_update BEFORE UPDATE ON {table} "
            "WHEN NEW.number != OLD.number OR OLD.status IN ('published', 'rejected') "
            "OR (OLD.status = 'submitted' AND NEW.definition IS NOT OLD.definition) "
            "BEGIN SELECT RAISE(ABORT, 'frozen version: published, rejected and submitted "
            "versions cannot be changed'); END"
        ),
        f"{table}_frozen_delete": (
            f"CREATE TRIGGER {table}_frozen_delete BEFORE DELETE ON {table} "
            "WHEN OLD.status != 'draft' "
            "BEGIN SELECT RAISE(ABORT, 'frozen version: only drafts can be deleted'); END"
        ),
    }


def uninstall_sql(vendor: str) -> list[str]:
    if vendor == "postgresql":
        return [
            *(f"DROP TRIGGER IF EXISTS {t}_frozen ON {t}" for t in VERSION_TABLES),
            f"DROP FUNCTION IF EXISTS {_FUNCTION}()",
        ]
    if vendor == "sqlite":
        return [
            f"DROP TRIGGER IF EXISTS {name}"
            for table in VERSION_TABLES
            for name in sqlite_triggers(table)
        ]
    raise NotImplementedError(vendor)


def suspend_sql(vendor: str) -> tuple[list[str], list[str]]:
    """Lift and restore the triggers inside one transaction (test database flush only).
    PostgreSQL flushes with TRUNCATE, which these row triggers do not see."""
    if vendor == "sqlite":
        return uninstall_sql(vendor), install_sql(vendor)
    return [], []
