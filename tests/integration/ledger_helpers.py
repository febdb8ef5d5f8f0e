"""Helpers for ledger integration tests: filling, tampering as a superuser would, and sharing
the test database with subprocesses."""

from __future__ import annotations

import hashlib
import os
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

from governance import ledger
from governance.immutability import suspend_sql

ROOT = Path(__file__).resolve().parents[2]


def fill(count: int) -> None:
    """`count` ordinary records through `ledger.append`; record `seq` has amount 100 + seq."""
    first = ledger.head().seq + 1
    for seq in range(first, first + count):
        ledger.append(
            "agent.decided",
            actor=None,
            body={"decision": "approve", "amount": 100 + seq, "rationale": "within policy"},
            team=("7", "Risk"),
        )


@contextmanager
def triggers_lifted():
    """What only a superuser or the table owner can do: lift the append-only triggers, and put
    them back (`ENABLE ALWAYS` on PostgreSQL) before the block ends, in the same transaction."""
    off, on = suspend_sql(connection.vendor)
    with connection.cursor() as cursor:
        for statement in off:
            cursor.execute(statement)
        yield cursor
        for statement in on:
            cursor.execute(statement)


def rechain(cursor, first: int) -> None:
    """Recompute prev_hash and hash from record `first` to the end, as a forger would."""
    cursor.execute("SELECT hash FROM governance_decisionrecord WHERE seq = %s", [first - 1])
    row = cursor.fetchone()
    prev = row[0] if row else ledger.GENESIS_HASH
    cursor.execute(
        "SELECT seq, canonical FROM governance_decisionrecord WHERE seq >= %s ORDER BY seq",
        [first],
    )
    for seq, canonical in cursor.fetchall():
        digest = hashlib.sha256(bytes.fromhex(prev) + canonical.encode()).hexdigest()
        cursor.execute(
            "UPDATE governance_decisionrecord SET prev_hash = %s, hash = %s WHERE seq = %s",
            [prev, digest, seq],
        )
        prev = digest


def database_url(settings_dict: dict) -> str:
    """DATABASE_URL for a PostgreSQL connection's settings (the pytest-django test database)."""
    user = quote(settings_dict.get("USER") or "", safe="")
    password = quote(settings_dict.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or ""
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{quote(str(settings_dict['NAME']), safe='')}"


def subprocess_env(**overrides: str) -> dict[str, str]:
    """The environment of a `manage.py` subprocess sharing this test's database and keys."""
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env.update(
        DJANGO_SETTINGS_MODULE="console.settings",
        DATABASE_URL=database_url(connection.settings_dict),
        STEWARD_VAR_DIR=str(settings.VAR_DIR),
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env
