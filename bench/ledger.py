"""Decision ledger benchmarks (issue 3), each figure next to its baseline from the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/steward python bench/ledger.py [--only NAME]

Runs on `<DATABASE_URL name>_bench` (bench/_common.py), filled once to 1,000,000 records and
reused by later runs (the appends below add to it). Figures:

- `ledger_verify`: records/s of `verify_chain()` (what `manage.py verify_ledger` runs: every
  hash recomputed from the stored bytes, seq and links checked, every checkpoint checked) over
  the whole bench ledger, with the default number of workers (STEWARD_VERIFY_WORKERS, else one
  per CPU: ranges verified at once in worker processes); `ledger_verify_1_worker`: the same in
  one process. Baseline of both: SHA-256 alone, in one process, over the same bytes (prev hash
  + canonical text of every record, streamed from the database, only the hashing timed).
- `ledger_append_<W>w_<T>pt`: appends/s through `governance.ledger.append` with W writer
  processes, each running transactions of T appends back to back for a few seconds; baseline:
  plain INSERTs of the same rows (same columns and values, into a copy of the ledger table with
  the same indexes, no triggers) by the same number of writers with the same transaction size:
  no chain lock, no canonical JSON, no hashing. `_deferred`: each transaction's appends inside
  `ledger.deferred()` (written together at its end, chained in the server by one statement);
  baseline: the same rows in one INSERT per transaction, sent as the ledger sends them (one
  array per column, unnest). Both sides' statements are prepared once per connection.
  Every commit waits for the disk (synchronous_commit on), except in
  `ledger_append_4w_1pt_async_commit`, where both sides commit without waiting (shows what the
  chain costs when the disk's flush latency is out of the way). Ledger and baseline runs
  alternate, two rounds each; the best round of each is printed.
- `ledger_append_lock_wait_4w_<T>pt`: the head row lock's cost with 4 writers, ms per append:
  the time the chain statement takes beyond what it takes with 1 writer (waiting for the lock);
  baseline: the rest of the time per append; ratio: wait / rest.

At the end the page and export benchmarks of the same database (bench/_ledger_page.py,
bench/_ledger_export.py) print theirs, when present.
"""

from __future__ import annotations

import argparse
import importlib
import multiprocessing
import os
import queue
import random
import time
from datetime import UTC, datetime
from pathlib import Path

from _common import bench_line, drop_indexes, fill_ledger, sample_document, setup_django

RECORDS = 1_000_000
SECONDS = float(os.environ.get("BENCH_LEDGER_SECONDS", "2.5"))
# (writers, appends per transaction, commits wait for the disk)
# (writers, appends per transaction, commits wait for the disk, a transaction's records are
# written together: ledger.deferred() on one side, one multi-row INSERT on the other)
CONFIGS = [
    (1, 1, True, False),
    (1, 10, True, False),
    (4, 1, True, False),
    (4, 10, True, False),
    (4, 10, True, True),
    (4, 100, True, True),
    (4, 1, False, False),
]
ROUNDS = 2  # ledger and baseline alternate; the best round of each counts
PLAIN_TABLE = "bench_plain_insert"
PEERS = ("_ledger_page", "_ledger_export")


def ensure_records(count: int) -> None:
    from governance import ledger

    have = ledger.head().seq
    if have < count:
        print(f"# filling the bench ledger from {have:,} to {count:,} records", flush=True)
        seconds = fill_ledger(count - have)
        print(f"# filled {count - have:,} records in {seconds:.1f} s", flush=True)


# --- verification ---------------------------------------------------------------------------


def bench_verify() -> None:
    from django.conf import settings

    from governance.verify import verify_chain

    default = settings.STEWARD_VERIFY_WORKERS
    hashing = sha256_seconds()
    for name, workers in (("ledger_verify", None), ("ledger_verify_1_worker", 1)):
        reports = [verify_chain(workers=workers) for _ in range(2)]
        for report in reports:
            assert report.ok, f"the bench ledger does not verify: {report.reason}"
        best = min(reports, key=lambda r: r.duration_s)
        records = best.records_checked
        print(
            f"# verify_chain, {workers or default} worker(s): {records:,} records, "
            f"{best.checkpoints_checked} checkpoints in {best.duration_s:.2f} s (best of 2, "
            f"{' and '.join(f'{r.duration_s:.2f}' for r in reports)}); SHA-256 alone "
            f"{hashing:.2f} s",
            flush=True,
        )
        bench_line(name, records / best.duration_s, "records/s", records / hashing)


def sha256_seconds() -> float:
    """Seconds SHA-256 alone takes over every record's prev hash + canonical bytes."""
    import hashlib

    from django.db import connection
    from psycopg.types.string import ByteaBinaryLoader

    sha256 = hashlib.sha256
    prev, spent = bytes(32), 0.0
    connection.ensure_connection()
    raw = connection.connection
    with raw.transaction(), raw.cursor(name="bench_sha256", binary=True) as cursor:
        cursor.adapters.register_loader("text", ByteaBinaryLoader)  # the stored bytes as is
        cursor.execute("SELECT canonical FROM governance_decisionrecord ORDER BY seq")
        while rows := cursor.fetchmany(20000):
            texts = [row[0] for row in rows]
            started = time.perf_counter()
            for text in texts:
                prev = sha256(prev + text).digest()
            spent += time.perf_counter() - started
    return spent


# --- appends --------------------------------------------------------------------------------


def documents(count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    return [sample_document(0, now, rng) for _ in range(count)]


def append_args(document: dict) -> tuple[str, dict]:
    """`ledger.append` arguments that store what `document` describes."""
    from governance.actors import Actor, Ref

    refs = {name: Ref(ref["id"], ref["name"]) for name, ref in document["refs"].items()}
    actor = Actor(**document["actor"])
    return document["event"], {"actor": actor, "body": document["body"], **refs}


def plain_rows(writer: int, docs: list[dict]) -> list[list]:
    """What `ledger.append` would store for `docs` (seq and hashes are made unique per insert
    by `plain_row`)."""
    from django.db import connection
    from django.utils import timezone

    from governance import ledger
    from governance.models import DecisionRecord

    rows = []
    for n, doc in enumerate(docs):
        event, kwargs = append_args(doc)
        actor, body = kwargs.pop("actor"), kwargs.pop("body")
        document, columns, _ = ledger._prepare(event, actor, body, None, None, kwargs)
        columns["recorded_at"] = timezone.now()
        document["seq"] = writer * 10**12 + n
        document["recorded_at"] = ledger._iso(columns["recorded_at"])
        record = DecisionRecord(
            seq=document["seq"],
            canonical=ledger.canonical_bytes(document).decode(),
            prev_hash="0" * 64,
            hash="0" * 64,
            **columns,
        )
        rows.append(
            [
                field.get_db_prep_save(getattr(record, field.attname), connection)
                for field in DecisionRecord._meta.concrete_fields
            ]
        )
    return rows


def array_type(field) -> str:
    from django.db import connection

    if field.get_internal_type() in ("CharField", "TextField"):
        return "text"
    return field.db_type(connection)


def writer_process(kind, writer, seq_base, per_txn, sync, batched, seconds, barrier, results):
    """One writer: transactions of `per_txn` appends (or plain INSERTs) for `seconds`;
    `batched`: each transaction's records go in together (deferred appends, or one INSERT of
    all the rows)."""
    from django.db import connection, transaction

    from governance import ledger
    from governance.models import DecisionRecord

    docs = documents(200, seed=writer)
    if kind == "ledger":
        calls = [append_args(doc) for doc in docs]
        lock_statement = ledger._extend_chain if hasattr(ledger, "_extend_chain") else None
        statement_time = [0.0]
        if lock_statement is not None:

            def timed(*args, **kwargs):
                started = time.perf_counter()
                try:
                    return lock_statement(*args, **kwargs)
                finally:
                    statement_time[0] += time.perf_counter() - started

            ledger._extend_chain = timed

        def one(i):
            event, kwargs = calls[i % len(calls)]
            ledger.append(event, **kwargs)
    else:
        import psycopg

        rows = plain_rows(writer, docs)
        fields = [f.column for f in DecisionRecord._meta.concrete_fields]
        at_seq, at_prev, at_hash = (fields.index(c) for c in ("seq", "prev_hash", "hash"))
        placeholders = ", ".join(["%s"] * len(fields))
        sql = f"INSERT INTO {PLAIN_TABLE} ({', '.join(fields)}) VALUES ({placeholders})"
        # As the ledger sends a deferred block: one array per column, a statement prepared once.
        arrays = ", ".join(f"%b::{array_type(f)}[]" for f in DecisionRecord._meta.concrete_fields)
        many_sql = f"INSERT INTO {PLAIN_TABLE} ({', '.join(fields)}) SELECT * FROM unnest({arrays})"
        statement_time = [0.0]

        waiting = []

        def plain_cursor():
            connection.ensure_connection()
            return psycopg.Cursor(connection.connection)

        def one(i):
            # Like the ledger's: seq rising, hashes spread over the whole index.
            row = list(rows[i % len(rows)])
            row[at_seq] = seq_base + i
            row[at_prev] = os.urandom(32).hex()
            row[at_hash] = os.urandom(32).hex()
            if batched:
                waiting.append(row)
                return
            with plain_cursor() as cursor:
                cursor.execute(sql, row, prepare=True)

        def flush():
            if waiting:
                arrays = [list(column) for column in zip(*waiting, strict=True)]
                with plain_cursor() as cursor:
                    cursor.execute(many_sql, arrays, prepare=True)
                waiting.clear()

    done = 0
    if not sync:
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit = off")

    def transaction_of(count: int) -> None:
        nonlocal done
        with transaction.atomic():
            if kind == "ledger" and batched:
                with ledger.deferred():
                    for _ in range(count):
                        one(done)
                        done += 1
                return
            for _ in range(count):
                one(done)
                done += 1
            if kind != "ledger":
                flush()

    transaction_of(1)  # warm up: connection, caches, first plans
    statement_time[0] = 0.0
    barrier.wait(timeout=120)
    started = time.perf_counter()
    deadline = started + seconds
    counted = 0
    while time.perf_counter() < deadline:
        transaction_of(per_txn)
        counted += per_txn
    results.put((counted, time.perf_counter() - started, statement_time[0]))
    connection.close()


def run_writers(
    kind: str, writers: int, per_txn: int, sync: bool, batched: bool
) -> tuple[float, float, float]:
    """(appends/s, seconds per append per writer, chain statement seconds per append)."""
    from django.db import connections

    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(writers)
    results = context.Queue()
    with connections["default"].cursor() as cursor:
        cursor.execute(f"SELECT COALESCE(max(seq), 0) FROM {PLAIN_TABLE}")
        (top,) = cursor.fetchone()
    connections.close_all()  # children must open their own connections
    processes = [
        context.Process(
            target=writer_process,
            args=(kind, n, top + 1 + n * 10**8, per_txn, sync, batched, SECONDS, barrier, results),
        )
        for n in range(writers)
    ]
    for process in processes:
        process.start()
    outcomes = []
    while len(outcomes) < writers:
        try:
            outcomes.append(results.get(timeout=1))
        except queue.Empty:
            failed = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
            if failed:
                for process in processes:
                    process.kill()
                raise RuntimeError(f"a {kind} writer failed (exit codes {failed})") from None
    for process in processes:
        process.join()
    count = sum(n for n, _, _ in outcomes)
    elapsed = max(seconds for _, seconds, _ in outcomes)
    per_append = sum(seconds / n for n, seconds, _ in outcomes) / writers
    statement = sum(s for _, _, s in outcomes) / count
    return count / elapsed, per_append, statement


def _index_shapes(cursor, table: str) -> list[str]:
    """What a table's indexes cover (`UNIQUE ... USING btree (cols) WHERE ...`), names left out."""
    cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s", [table])
    return sorted(
        ("UNIQUE " if " UNIQUE " in row[0] else "") + row[0].split(" USING ", 1)[1]
        for row in cursor.fetchall()
    )


def ensure_plain_table() -> None:
    """The baseline's table: a copy of the ledger table, rows, indexes and all, but no triggers,
    kept in the bench database. Inserting into a table ten times the size of shared_buffers
    costs more (index pages read, full-page images in the WAL) than into an empty one, so the
    baseline gets a table as large as the ledger's."""
    from django.db import connection, transaction

    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [PLAIN_TABLE])
        if cursor.fetchone()[0]:
            if _index_shapes(cursor, PLAIN_TABLE) == _index_shapes(
                cursor, "governance_decisionrecord"
            ):
                return
            print(f"# the ledger's indexes changed: dropping {PLAIN_TABLE}", flush=True)
            cursor.execute(f"DROP TABLE {PLAIN_TABLE}")
    print(f"# copying the ledger table into {PLAIN_TABLE} for the INSERT baseline", flush=True)
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {PLAIN_TABLE} (LIKE governance_decisionrecord INCLUDING ALL)")
        rebuild = drop_indexes(cursor, PLAIN_TABLE)
        cursor.execute(f"INSERT INTO {PLAIN_TABLE} SELECT * FROM governance_decisionrecord")
        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        for statement in rebuild:
            cursor.execute(statement)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {PLAIN_TABLE}")
    print(f"# copied in {time.perf_counter() - started:.1f} s", flush=True)


def bench_appends() -> None:
    from governance import verify

    ensure_plain_table()
    statement_alone = {}
    for writers, per_txn, sync, batched in CONFIGS:
        ledger_runs, plain_runs = [], []
        for _ in range(ROUNDS):
            ledger_runs.append(run_writers("ledger", writers, per_txn, sync, batched))
            plain_runs.append(run_writers("plain", writers, per_txn, sync, batched))
        rate, per_append, statement = max(ledger_runs)
        plain = max(plain_runs)[0]
        name = (
            f"ledger_append_{writers}w_{per_txn}pt"
            + ("_deferred" if batched else "")
            + ("" if sync else "_async_commit")
        )
        bench_line(name, rate, "appends/s", plain)
        if not sync or batched:
            continue
        if writers == 1:
            statement_alone[per_txn] = statement
        elif statement:
            wait = max(statement - statement_alone[per_txn], 0.0)
            rest = per_append - wait
            bench_line(
                f"ledger_append_lock_wait_{writers}w_{per_txn}pt",
                wait * 1000,
                "ms/append",
                rest * 1000,
                wait / rest if rest else float("nan"),
            )
    report = verify.verify_chain(since=max(RECORDS - 1, 1))
    assert report.ok, f"appends broke the chain: {report.reason}"


# --- the rest of the ledger's figures -------------------------------------------------------


def run_peers() -> None:
    here = Path(__file__).resolve().parent
    for name in PEERS:
        if (here / f"{name}.py").exists():
            print(f"# {name}", flush=True)
            importlib.import_module(name).main()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["verify", "appends", "peers"])
    only = parser.parse_args().only
    setup_django(fresh=False)
    ensure_records(RECORDS)
    if only in (None, "verify"):
        bench_verify()
    if only in (None, "appends"):
        bench_appends()
    if only in (None, "peers"):
        run_peers()


if __name__ == "__main__":
    main()
