"""Shared plumbing for benchmarks: a throw-away PostgreSQL database, fast ledger filling, and
the BENCH line format of DESIGN.md.

Benchmarks never touch the database named in DATABASE_URL: they use `<name>_bench`, dropped
and created anew (the ledger is append-only, so a fresh database is the only way to reset it).
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import random
import secrets
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import rfc8785

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def bench_line(name: str, value: float, unit: str, baseline: float, ratio: float | None = None):
    """Print one figure next to its baseline from the same run."""
    if ratio is None:
        ratio = value / baseline if baseline else float("nan")
    print(f"BENCH {name} {value:.6g} {unit} baseline={baseline:.6g} ratio={ratio:.3f}", flush=True)


def setup_django(fresh: bool = True, suffix: str = "_bench") -> None:
    """Point Django at `<DATABASE_URL name><suffix>`, recreate it when `fresh`, migrate it."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("benchmarks need PostgreSQL: set DATABASE_URL=postgres://user@host:port/name")
    base, _, name = url.rpartition("/")
    name = name.split("?")[0]
    bench_name = f"{name}{suffix}"
    os.environ["DATABASE_URL"] = f"{base}/{bench_name}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    import psycopg

    admin_url = f"{base}/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [bench_name]
        ).fetchone()
        if exists and fresh:
            conn.execute(f'DROP DATABASE "{bench_name}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{bench_name}"')
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


EVENTS = [
    "agent.decided",
    "step.started",
    "run.started",
    "run.finished",
    "tool.called",
    "escalation.raised",
    "handoff",
]
DECISIONS = ["approve", "reject", "refer", "escalate"]


def sample_document(seq: int, when: datetime, rng: random.Random) -> dict:
    """A realistic ~1 kB decision record document (before canonicalisation)."""
    team = rng.randrange(1, 11)
    workflow = rng.randrange(1, 201)
    agent = rng.randrange(1, 1001)
    decision = rng.choice(DECISIONS)
    confidence = round(rng.random(), 4)
    body = {
        "inputs": {
            "customer_id": f"C{rng.randrange(10**8):08d}",
            "amount": rng.randrange(100, 100000),
            "country": rng.choice(["DE", "FR", "NL", "GB", "US", "ES"]),
            "product": rng.choice(["loan", "card", "account", "mortgage"]),
        },
        "data_considered": [f"bureau-score:{rng.randrange(300, 900)}", "sanctions-list:v2026-11"],
        "rules_applied": [f"row {rng.randrange(1, 20)}: amount < limit and score > 600"],
        "output": {"limit": rng.randrange(1000, 50000), "tier": rng.choice("ABC")},
        "rationale": "Score and amount are within the policy band for this product; "
        "no sanctions hit; income verified by the bureau response.",
        "decision": decision,
        "confidence": confidence,
        "model": "rules",
        "latency_ms": rng.randrange(1, 900),
    }
    return {
        "v": 1,
        "seq": seq,
        "recorded_at": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "event": rng.choice(EVENTS),
        "actor": {"type": "agent", "id": str(agent), "name": f"agent {agent} v1"},
        "refs": {
            "team": {"id": str(team), "name": f"Team {team}"},
            "workflow": {"id": str(workflow), "name": f"Workflow {workflow}"},
            "agent": {"id": str(agent), "name": f"Agent {agent}"},
            "run": {"id": f"{seq // 5:010d}", "name": ""},
        },
        "decision": decision,
        "confidence": confidence,
        "body": body,
        "personal": None,
    }


def _canonical(doc: dict) -> bytes:
    """RFC 8785 bytes of a `sample_document`, five times faster than rfc8785.dumps.

    For these documents (ASCII strings, small integers, one float in [0, 1] with 4 decimals)
    json.dumps with sorted keys and no spaces prints exactly the RFC 8785 bytes, except for
    integral floats (0.0, 1.0), which ECMAScript prints as 0 and 1: those go to rfc8785.
    `fill_ledger` also compares every 1000th record with rfc8785.dumps.
    """
    if doc["confidence"].is_integer():
        return rfc8785.dumps(doc)
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def drop_indexes(cursor, table: str = "governance_decisionrecord") -> list[str]:
    """Drop a table's secondary indexes and unique constraints (not its primary key); return
    the statements that rebuild them. Bulk-building afterwards is about twice as fast as
    maintaining ten indexes row by row."""
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype = 'u'",
        [table],
    )
    constraints = cursor.fetchall()
    cursor.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexname NOT IN "
        "(SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass)",
        [table, table],
    )
    indexes = cursor.fetchall()
    for name, _ in constraints:
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    return [
        *(
            f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'
            for name, definition in constraints
        ),
        *(definition for _, definition in indexes),
    ]


def fill_ledger(count: int, *, seed: int = 7, batch: int = 20000) -> float:
    """Append `count` chained records fast (COPY), continuing the current head. Returns seconds.

    Builds exactly what `ledger.append` would store (same canonical bytes and hash rule); it
    only skips the per-record round trips, which is what the append benchmark measures. Large
    fills drop the secondary indexes and rebuild them at the end, all in one transaction.
    """
    from django.db import connection, transaction

    rng = random.Random(seed)
    started = time.perf_counter()
    with transaction.atomic():
        rebuild = []
        if count >= 50_000:
            with connection.cursor() as cursor:
                rebuild = drop_indexes(cursor)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT seq, hash FROM governance_ledgerhead WHERE chain = 'main' FOR UPDATE"
            )
            seq, prev = cursor.fetchone()
        start_time = datetime(2026, 1, 1, tzinfo=UTC)
        columns = (
            "seq, recorded_at, event, actor_type, actor_id, actor_name, team_id, team_name, "
            "workflow_id, workflow_name, agent_id, agent_name, run_id, decision, confidence, "
            "subject_id, canonical, prev_hash, hash"
        )
        raw = connection.connection  # psycopg 3 connection under Django's wrapper
        remaining = count
        while remaining:
            n = min(batch, remaining)
            remaining -= n
            with (
                raw.cursor() as cur,
                cur.copy(f"COPY governance_decisionrecord ({columns}) FROM STDIN") as copy,
            ):
                for _ in range(n):
                    seq += 1
                    when = start_time + timedelta(seconds=seq * 2)
                    doc = sample_document(seq, when, rng)
                    canonical = _canonical(doc)
                    if seq % 1000 == 0 and canonical != rfc8785.dumps(doc):
                        raise AssertionError(f"fast canonical JSON differs at seq {seq}")
                    digest = hashlib.sha256(bytes.fromhex(prev) + canonical).hexdigest()
                    refs = doc["refs"]
                    copy.write_row(
                        (
                            seq,
                            when,
                            doc["event"],
                            "agent",
                            doc["actor"]["id"],
                            doc["actor"]["name"],
                            refs["team"]["id"],
                            refs["team"]["name"],
                            refs["workflow"]["id"],
                            refs["workflow"]["name"],
                            refs["agent"]["id"],
                            refs["agent"]["name"],
                            refs["run"]["id"],
                            doc["decision"],
                            doc["confidence"],
                            "",
                            canonical.decode(),
                            prev,
                            digest,
                        )
                    )
                    prev = digest
        with connection.cursor() as cursor:
            if rebuild:
                cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
            for statement in rebuild:
                cursor.execute(statement)
            cursor.execute(
                "UPDATE governance_ledgerhead SET seq = %s, hash = %s WHERE chain = 'main'",
                [seq, prev],
            )
            cursor.execute("ANALYZE governance_decisionrecord")
    return time.perf_counter() - started


def production_settings() -> None:
    """DEBUG off, with the settings console/settings.py then requires, made up for this run
    (unless DEBUG is set true in the environment)."""
    if os.environ.get("DEBUG", "").strip().lower() in ("1", "true", "yes", "on"):
        return
    from cryptography.fernet import Fernet
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    var = Path(tempfile.mkdtemp(prefix="steward-bench-"))
    atexit.register(shutil.rmtree, var, ignore_errors=True)
    signing_key = var / "signing-key.pem"
    signing_key.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    os.environ.pop("STEWARD_DEMO_PASSWORD", None)  # the published default is refused
    os.environ.update(
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="localhost",
        STEWARD_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        STEWARD_SIGNING_KEY=str(signing_key),
        STEWARD_VAR_DIR=str(var),
    )
