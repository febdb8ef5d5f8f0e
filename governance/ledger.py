"""The decision ledger: `append` is the only way anything enters it.

Record format (also shipped as FORMAT.md in every evidence bundle):

- The canonical document of a record is the RFC 8785 serialisation of
  ``{"v": 1, "seq", "recorded_at", "event", "actor", "refs", "decision", "confidence",
  "body", "personal"}``; ``refs`` holds only the references given (team, workflow,
  workflow_version, agent, agent_version, run, step), each ``{"id", "name"}``.
- ``hash = SHA-256(prev_hash || canonical bytes)`` over raw bytes, stored as hex; the first
  record's ``prev_hash`` is 32 zero bytes.

Appends happen inside the caller's transaction. The chain head row (`LedgerHead`) is locked
first: its row lock serialises appenders until their transaction ends, so `seq` is gapless and
the chain never forks, and a rollback takes the record and the head back together. Everything
that does not depend on `seq` (validation, encryption, the canonical JSON around the seq) is
done before the lock; on PostgreSQL the locked part is one statement (lock the head, advance
it, hash, insert), so appenders queue for one round trip plus the rest of their transaction.
"""

from __future__ import annotations

import hashlib
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC
from functools import cache

import psycopg
from django.conf import settings
from django.db import connection, transaction
from django.db.models.base import ModelState
from django.utils import timezone

from governance import personal as personal_data
from governance.actors import Actor, Ref, actor_of, ref_of
from governance.canonical import CanonicalError, canonical_bytes, check_json_value, prints_alike
from governance.models import DecisionRecord

FORMAT_VERSION = 1
CHAIN = "main"
GENESIS_HASH = "0" * 64
REF_NAMES = ("team", "workflow", "workflow_version", "agent", "agent_version", "run", "step")
_REF_NAME_SET = frozenset(REF_NAMES)
EVENT_MAX = 64
SEQ_DIGITS = 16  # seq < 2**53: the most digits it takes in a record


_NO_REF = Ref("", "")  # a reference not given: its columns stay empty


class LedgerError(ValueError):
    """The record was refused; nothing was written. `field` names what was wrong."""

    def __init__(self, field: str, problem: str):
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


@dataclass(frozen=True)
class Appended:
    seq: int
    hash: str


def chain_hash(prev_hash_hex: str, canonical: bytes) -> str:
    return hashlib.sha256(bytes.fromhex(prev_hash_hex) + canonical).hexdigest()


def append(
    event: str,
    *,
    actor,
    body: dict,
    personal: dict | None = None,
    subject: str | None = None,
    **refs,
) -> DecisionRecord:
    """Append one record inside the caller's transaction and return it.

    `actor` is a user, an `Actor` or None (the system). `refs` are team, workflow,
    workflow_version, agent, agent_version, run and step: model instances, `Ref`s,
    ``(id, name)`` pairs or ids. `personal` (with `subject`, the data subject's id) is
    encrypted under that subject's key before it enters the record.
    """
    document, columns, alike = _prepare(event, actor, body, personal, subject, refs)
    document["recorded_at"] = _iso(columns["recorded_at"])
    before, after = _canonical_around_seq(document, alike)
    size = len(before) + SEQ_DIGITS + len(after)
    if size > settings.STEWARD_LEDGER_MAX_RECORD_BYTES:
        raise LedgerError(
            "body",
            f"record is {size} bytes; the ledger accepts at most "
            f"{settings.STEWARD_LEDGER_MAX_RECORD_BYTES} (store large data elsewhere "
            "and record its digest)",
        )
    batch = getattr(_local, "batch", None)
    if batch is not None and connection.in_atomic_block:
        record = _record(columns, seq=None, canonical="", prev_hash="", hash="")
        batch.append(_Pending(before, after, columns, record))
        return record
    # No savepoint: a failed append fails the caller's transaction, as its record is part of
    # the caller's work (and a savepoint would cost two more round trips under the lock).
    with transaction.atomic(savepoint=False):
        seq, prev_hash, digest = _extend_chain(before, after, columns)
    canonical = (before + b"%d" % seq + after).decode("utf-8")
    return _record(columns, seq=seq, canonical=canonical, prev_hash=prev_hash, hash=digest)


def _record(columns: dict, **chain) -> DecisionRecord:
    """The DecisionRecord of these values (every column), built as Django unpickles a model
    instance: Model.__init__'s keyword handling was 6 us of an append's 46 of Python."""
    record = DecisionRecord.__new__(DecisionRecord)
    record._state = ModelState()
    record.__dict__.update(columns, **chain)
    return record


# --- Deferred appends ------------------------------------------------------------------------
#
# The chain head stays locked from a transaction's first append until it commits, so every
# statement a transaction runs after its first append is paid for by every other appender
# (bench/engine.py: the engine's step transactions ran eight statements under the lock).
# Inside `deferred()`, appends are checked and canonicalised at once but written together when
# the block ends: the lock is then held for one statement and the commit.

_local = threading.local()


@dataclass
class _Pending:
    before: bytes
    after: bytes
    columns: dict
    record: DecisionRecord  # what `append` returned; seq, canonical and hashes set once written
    callbacks: list = dataclass_field(default_factory=list)


@contextmanager
def deferred():
    """Write the records appended inside the block when it ends, in order, in one go.

    For use inside a transaction, around work that appends several records or appends early
    and goes on working. `append` returns each record at once, without its seq and hashes
    until the block has ended (`when_written` runs code then). A nested block joins the
    outer one; if it fails, what it appended is dropped with it. Appends are dropped, not
    written, when the outermost block fails. Do not catch, inside a block, the failure of a
    savepoint that appended: its records would still be written.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("deferred appends belong inside a transaction (transaction.atomic)")
    batch = getattr(_local, "batch", None)
    if batch is not None:
        mark = len(batch)
        try:
            yield
        except BaseException:
            del batch[mark:]
            raise
        return
    _local.batch = batch = []
    try:
        yield
        _local.batch = None
        _write(batch)
    finally:
        _local.batch = None


def when_written(record: DecisionRecord, callback) -> None:
    """Call `callback(record)` once `record` is in the ledger: now, or when its deferred block
    writes it (inside the same transaction)."""
    if record.seq is not None:
        callback(record)
        return
    for pending in getattr(_local, "batch", None) or ():
        if pending.record is record:
            pending.callbacks.append(callback)
            return
    raise RuntimeError("this record is neither written nor waiting in a deferred block")


def _write(batch: list[_Pending]) -> None:
    if not batch:
        return
    with transaction.atomic(savepoint=False):
        if connection.vendor == "postgresql":
            chained = _extend_chain_many_postgresql(batch)
        else:
            chained = [_extend_chain(p.before, p.after, p.columns) for p in batch]
    for pending, (seq, prev_hash, digest) in zip(batch, chained, strict=True):
        record = pending.record
        record.seq, record.prev_hash, record.hash = seq, prev_hash, digest
        record.canonical = (pending.before + b"%d" % seq + pending.after).decode("utf-8")
    for pending in batch:
        for callback in pending.callbacks:
            callback(pending.record)


def _extend_chain_many_postgresql(batch: list[_Pending]) -> list[tuple[int, str, str]]:
    """One statement: `steward_ledger_chain` (migration 0009) locks the head, chains the
    records and moves the head in the server; the same statement inserts them.

    The chain head is the ledger's one point of contention: it stays locked from the moment it
    is taken until the commit. Chaining in the server keeps it from waiting, under that lock,
    for this process to be scheduled, read the head, hash and send the rows (with 4 writers on
    2 cores the lock was busy 99 % of the time, 7 ms for 100 records; bench/ledger.py). The
    rows go as one array per column (unnest), everything but the chain's columns dumped before
    the statement is sent, and the statement's text is the same for any number of records:
    prepared once per connection like the single append's.
    """
    befores, afters = [], []
    arrays: dict[str, list] = {name: [] for name in _KNOWN_COLUMNS}
    for pending in batch:
        befores.append(pending.before.decode("utf-8"))
        afters.append(pending.after.decode("utf-8"))
        row = _row_values(pending.columns)
        for name, values in arrays.items():
            values.append(row[name])
    params = [CHAIN, befores, afters, *arrays.values()]
    prepare = settings.STEWARD_LEDGER_PREPARED or None
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        _execute(cursor, _insert_many_sql(), params, prepare)
        chained = sorted(cursor.fetchall())
    if len(chained) != len(batch):
        raise RuntimeError("the ledger wrote a different number of records than it was given")
    return chained


@cache
def _insert_many_sql() -> str:
    """The records zipped from the chain function's rows and one array per other column (ROWS
    FROM: side by side in order, no join to plan or sort)."""
    quote = connection.ops.quote_name
    fields = {field.column: field for field in DecisionRecord._meta.concrete_fields}
    sources = ["steward_ledger_chain(%s, %b::text[], %b::text[])"]
    for name in _KNOWN_COLUMNS:
        field = fields[name]
        kind = "text" if field.get_internal_type() in ("CharField", "TextField") else None
        sources.append(f"unnest(%b::{kind or field.db_type(connection)}[])")
    chain = {"seq": "o_seq", "canonical": "o_canonical", "prev_hash": "o_prev_hash"}
    chain["hash"] = "o_hash"
    aliases = ["o_n", "o_seq", "o_prev_hash", "o_hash", "o_canonical"]
    aliases += [quote(name) for name in _KNOWN_COLUMNS]
    values = [chain.get(name) or f"r.{quote(name)}" for name in _COLUMNS]
    return (
        f"INSERT INTO governance_decisionrecord ({', '.join(quote(n) for n in _COLUMNS)}) "  # noqa: S608
        f"SELECT {', '.join(values)} FROM ROWS FROM ({', '.join(sources)}) "
        f"AS r({', '.join(aliases)}) RETURNING seq, prev_hash, hash"
    )


def _execute(cursor, sql: str, params, prepare) -> None:
    """Run `sql` on a psycopg cursor of Django's connection, logged as Django's debug cursor
    would (query counts in tests)."""
    started = time.monotonic()
    cursor.execute(sql, params, prepare=prepare)
    if connection.queries_logged:
        connection.queries_log.append(
            {"sql": sql, "time": f"{time.monotonic() - started:.3f}", "params": params}
        )


def _prepare(event, actor, body, personal, subject, refs) -> tuple[dict, dict, tuple[str, ...]]:
    """Validate everything before taking the chain lock, so the lock is held briefly.

    Returns the document (without seq and time), the columns, and the keys of the document
    whose values orjson prints as RFC 8785 does (for `canonical_bytes`: found here from what
    each value is, instead of walking the document again)."""
    if type(event) is not str or not event or len(event) > EVENT_MAX:
        raise LedgerError("event", f"a non-empty name of at most {EVENT_MAX} characters")
    if not _REF_NAME_SET.issuperset(refs):
        unknown = sorted(set(refs) - _REF_NAME_SET)
        raise LedgerError("refs", f"unknown reference(s) {unknown}; use {REF_NAMES}")
    if not isinstance(body, dict):
        raise LedgerError("body", "must be a JSON object")
    try:
        body_alike = check_json_value(body, "body")
    except CanonicalError as exc:
        raise LedgerError(exc.path, exc.problem) from None
    who: Actor = actor_of(actor)
    references: dict[str, Ref] = {}
    for name, value in refs.items():
        ref = ref_of(value)
        if ref is not None:
            references[name] = ref
    sealed = None
    if personal is not None or subject is not None:
        if personal is None:
            raise LedgerError("personal", "a subject was given without personal data")
        try:
            sealed = personal_data.seal(subject, personal)
        except personal_data.PersonalDataError as exc:
            raise LedgerError("personal", str(exc)) from None

    decision = body.get("decision")
    decision = "" if decision is None else str(decision)[:200]
    confidence = body.get("confidence")
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)):
        confidence = None
    document = {
        "v": FORMAT_VERSION,
        "event": event,
        "actor": who.as_dict(),
        "refs": {name: ref.as_dict() for name, ref in references.items()},
        "decision": decision or None,
        "confidence": confidence,
        "body": body,
        "personal": sealed,
    }

    team = references.get("team", _NO_REF)
    workflow = references.get("workflow", _NO_REF)
    agent = references.get("agent", _NO_REF)
    columns = {
        "recorded_at": timezone.now(),
        "event": event,
        "actor_type": who.type,
        "actor_id": who.id[:64],
        "actor_name": who.name[:200],
        "team_id": team.id[:64],
        "team_name": team.name[:200],
        "workflow_id": workflow.id[:64],
        "workflow_name": workflow.name[:200],
        "agent_id": agent.id[:64],
        "agent_name": agent.name[:200],
        "run_id": references.get("run", _NO_REF).id[:64],
        "decision": decision,
        "confidence": confidence,
        "subject_id": sealed["subject"] if sealed else "",
    }
    alike = ["v", "event", "decision", "recorded_at"]  # strings (or None) and an int
    if body_alike:
        alike.append("body")
    if type(who.type) is str and type(who.id) is str and type(who.name) is str:
        alike.append("actor")
    if all(type(ref.id) is str and type(ref.name) is str for ref in references.values()):
        alike.append("refs")
    if prints_alike(confidence):
        alike.append("confidence")
    if sealed is None:
        alike.append("personal")
    return document, columns, tuple(alike)


def _iso(moment) -> str:
    """2026-11-22T05:49:10.000123Z (isoformat: a fifth of strftime's time)."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _canonical_around_seq(document: dict, alike: tuple[str, ...] = ()) -> tuple[bytes, bytes]:
    """The canonical bytes of `document` (which has no seq yet) before and after its seq digits.

    RFC 8785 sorts keys, and every key of a format 1 document but "v" sorts before "seq", so the
    canonical text ends with ``"seq":N,"v":1}``: everything else is known before the lock.
    """
    if "seq" in document or max(key for key in document if key != "v") >= "seq":
        raise RuntimeError("format 1 documents have no key sorting after 'seq' but 'v'")
    without_seq = canonical_bytes(document, alike=alike)
    tail = b'"v":%d}' % FORMAT_VERSION
    if not without_seq.endswith(b"," + tail):
        raise RuntimeError("the canonical document does not end with its version")
    return without_seq[: -len(tail)] + b'"seq":', b"," + tail


def _extend_chain(before: bytes, after: bytes, columns: dict) -> tuple[int, str, str]:
    """Lock the chain head, take the next seq, store the record and move the head.

    The row lock lasts until the caller's transaction ends. Returns (seq, prev_hash, hash).
    """
    if connection.vendor == "postgresql":
        return _extend_chain_postgresql(before, after, columns)
    seq, prev_hash = _advance_head()
    digest = chain_hash(prev_hash, before + b"%d" % seq + after)
    values = _column_values(
        {
            **columns,
            "seq": seq,
            "canonical": (before + b"%d" % seq + after).decode("utf-8"),
            "prev_hash": prev_hash,
            "hash": digest,
        }
    )
    placeholders = ", ".join(["%s"] * len(values))
    names = ", ".join(connection.ops.quote_name(c) for c in values)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO governance_decisionrecord ({names}) VALUES ({placeholders})",  # noqa: S608
            list(values.values()),
        )
        cursor.execute(
            "UPDATE governance_ledgerhead SET hash = %s WHERE chain = %s", [digest, CHAIN]
        )
    return seq, prev_hash, digest


def _extend_chain_postgresql(before: bytes, after: bytes, columns: dict) -> tuple[int, str, str]:
    """One statement: lock the head row, advance it, hash and insert the record in the server.

    `old` locks the head (FOR UPDATE waits for the holder's transaction, then reads the head it
    committed); the hash is SHA-256(prev hash bytes || before || seq digits || after), exactly
    what `chain_hash` computes.

    The statement is prepared once per connection (server-side parameters): planning it took
    0.3 ms of the 0.9 ms it runs under the chain lock (bench/ledger.py). Django leaves prepared
    statements off for connection poolers; STEWARD_LEDGER_PREPARED=false turns this one off too
    (docs/deployment.md).
    """
    params = _row_values(columns)
    params.update(chain=CHAIN, before=before.decode("utf-8"), after=after.decode("utf-8"))
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        _execute(cursor, _postgresql_append_sql(), params, settings.STEWARD_LEDGER_PREPARED or None)
        row = cursor.fetchone()
    if row is None:
        raise RuntimeError("the ledger head row is missing: run `python manage.py migrate`")
    return row[0], row[1], row[2]


@cache
def _postgresql_append_sql() -> str:
    chain_columns = {
        "seq": "new.seq",
        "canonical": "convert_from(new.canonical, 'UTF8')",
        "prev_hash": "new.prev_hash",
        "hash": "new.hash",
    }
    names, values = [], []
    for field in DecisionRecord._meta.concrete_fields:
        names.append(connection.ops.quote_name(field.column))
        value = f"%({field.column})s"
        if field.get_internal_type() not in ("CharField", "TextField"):
            value = f"CAST({value} AS {field.db_type(connection)})"  # SELECT does not infer it
        values.append(chain_columns.get(field.column, value))
    return f"""
        WITH parts AS (
            SELECT convert_to(%(before)s, 'UTF8') AS before, convert_to(%(after)s, 'UTF8') AS after
        ), old AS (
            SELECT seq, hash FROM governance_ledgerhead WHERE chain = %(chain)s FOR UPDATE
        ), record AS (
            SELECT old.seq + 1 AS seq, old.hash AS prev_hash,
                   parts.before || convert_to((old.seq + 1)::text, 'UTF8') || parts.after
                       AS canonical
            FROM old, parts
        ), new AS (
            UPDATE governance_ledgerhead AS head
            SET seq = record.seq,
                hash = encode(sha256(decode(record.prev_hash, 'hex') || record.canonical), 'hex')
            FROM record
            WHERE head.chain = %(chain)s
            RETURNING head.seq, head.hash, record.prev_hash, record.canonical
        )
        INSERT INTO governance_decisionrecord ({", ".join(names)})
        SELECT {", ".join(values)} FROM new
        RETURNING seq, prev_hash, hash
    """  # noqa: S608


def _advance_head() -> tuple[int, str]:
    """Take the next seq and the previous hash; the row lock lasts until our transaction ends."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE governance_ledgerhead SET seq = seq + 1 WHERE chain = %s RETURNING seq, hash",
            [CHAIN],
        )
        row = cursor.fetchone()
    if row is None:
        raise RuntimeError("the ledger head row is missing: run `python manage.py migrate`")
    return row[0], row[1]


_COLUMNS = [field.column for field in DecisionRecord._meta.concrete_fields]
_CHAIN_COLUMNS = ("seq", "canonical", "prev_hash", "hash")  # known once the head is locked
_KNOWN_COLUMNS = [name for name in _COLUMNS if name not in _CHAIN_COLUMNS]


def _row_values(columns: dict) -> dict:
    """`columns` as psycopg sends them to PostgreSQL (only `confidence` needs a conversion:
    what `_prepare` puts in the others is already of the column's type)."""
    values = dict(columns)
    if values["confidence"] is not None:
        values["confidence"] = float(values["confidence"])
    return values


def _column_values(columns: dict) -> dict:
    """`columns` (by column name) prepared for the database, in the table's column order."""
    return {
        field.column: field.get_db_prep_save(columns[field.column], connection)
        for field in DecisionRecord._meta.concrete_fields
        if field.column in columns
    }


def head() -> Appended:
    """The last record's seq and hash as stored (0 and the genesis hash when empty)."""
    last = DecisionRecord.objects.order_by("-seq").values_list("seq", "hash").first()
    return Appended(*last) if last else Appended(0, GENESIS_HASH)
