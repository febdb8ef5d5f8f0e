"""Verifying the decision ledger: recompute the chain from the stored bytes, check every checkpoint.

What is checked, record by record from `seq` 1 (or from `since`, starting from the stored hash
of `since - 1`):

- `seq` runs without gaps;
- `prev_hash` is the previous record's hash;
- the canonical text names the record's own `seq` (with RFC 8785 key order it ends with
  ``,"seq":N,"v":1}``, so this needs no JSON parsing);
- ``SHA-256(previous hash || canonical bytes)`` is the stored `hash`.

Then every checkpoint, in the database and, when STEWARD_CHECKPOINT_DIR is set, the files there:
the signature verifies with Steward's public key, the key id is Steward's, the signed payload
names the checkpoint's own `seq` and `hash`, and the recomputed record at that `seq` has that
hash. A checkpoint beyond the last record means the tail was removed; a checkpoint that no
longer matches means the chain was changed and recomputed after it was signed.

The first problem found, by `seq`, is the report's `first_bad_seq` and `reason`. The loop is
built for speed (COPY in binary format delivering raw bytes on PostgreSQL, governance.chainwalk;
keyset chunks elsewhere; no JSON parsing per record): it runs at a fraction of raw SHA-256 speed
(bench/ledger.py). On PostgreSQL a long chain is also cut into ranges verified at once, in worker
processes, each from the stored hash of the record before it; a range counts only if it verified
cleanly and starts from the hash recomputed up to it, and from the first that does not, the
chain is verified in order in this process, so a problem is reported exactly as by one process.
Worker processes are started with "spawn": a program that calls `verify_chain` needs the usual
`if __name__ == "__main__":` guard (manage.py has it).
"""

from __future__ import annotations

import binascii
import hashlib
import json
import multiprocessing
import re
import time
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max

from governance import checkpoints, keys, ledger
from governance.chainwalk import Mark as _Mark
from governance.chainwalk import Problem as _Problem
from governance.chainwalk import Walk, verify_range_in_worker
from governance.models import Checkpoint, DecisionRecord

VERIFIED_EVENT = "ledger.verified"
CHUNK = 2000
_GENESIS_HEX = ledger.GENESIS_HASH.encode()
_TAIL = re.compile(rb',"seq":(-?\d+),"v":(\d+)\}\Z')
# A chain is cut into ranges verified at once, one per worker process, only when each range
# would hold at least this many records (starting a process costs ~0.2 s); tests lower it.
MIN_RANGE_RECORDS = 100_000


@dataclass
class VerificationReport:
    ok: bool
    records_checked: int
    first_bad_seq: int | None
    reason: str | None
    head_seq: int  # the last record that verified (the chain's head when ok)
    head_hash: str
    checkpoints_checked: int
    checkpoint_files_checked: int
    duration_s: float
    since: int | None = None

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class LastVerification:
    seq: int
    at: datetime
    ok: bool
    first_bad_seq: int | None
    reason: str | None
    records_checked: int | None


# --- the chain ------------------------------------------------------------------------------


def verify_chain(since: int | None = None, workers: int | None = None) -> VerificationReport:
    """Recompute the ledger from `since` (default 1) and check every checkpoint.

    On PostgreSQL, outside a transaction, a long chain is cut into up to `workers` ranges
    (default: STEWARD_VERIFY_WORKERS, one per CPU unless set) verified at once: the first in
    this process, the others in worker processes. The report is the same as with one.

    Raises ValueError when `since` is below 1 or beyond the last record, or `workers` below 1.
    """
    started = time.perf_counter()
    start = 1 if since is None else since
    if start < 1:
        raise ValueError(f"since must be 1 or more, not {start}")
    if workers is None:
        workers = settings.STEWARD_VERIFY_WORKERS
    if workers < 1:
        raise ValueError(f"workers must be 1 or more, not {workers}")
    public_key, our_key_id = keys.public_key(), keys.key_id()
    problems: list[_Problem] = []
    # Checkpoints first: one committed after the records were read could cover records the
    # scan did not see. The ledger only grows, so reading it in several statements is safe.
    marks, db_count, file_count = _checkpoint_marks(public_key, our_key_id, problems)
    prev_hex, first_seq = _starting_point(start, problems)
    walk = _Walk(first_seq, prev_hex, marks, start)
    if not walk.done and connection.vendor == "postgresql":
        connection.ensure_connection()
        raw = connection.connection  # the psycopg connection under Django's wrapper
        # Inside a transaction, workers would not see what it wrote: one process then.
        if workers > 1 and not connection.in_atomic_block:
            _run_ranges(walk, raw, _ranges(walk.seq, workers))
        if not walk.done:  # the rest, in order: all of it, or from a range that did not verify
            walk.run_copy(raw)
    if not walk.done:
        with closing(_rows(walk.seq)) as chunks:
            walk.run(chunks)
    problems.extend(walk.problems)
    problems.extend(walk.unreached_marks())
    first = min(problems, key=lambda p: p.seq) if problems else None
    return VerificationReport(
        ok=first is None,
        records_checked=walk.checked,
        first_bad_seq=first.seq if first else None,
        reason=first.reason if first else None,
        head_seq=walk.seq - 1,
        head_hash=walk.prev_hex.decode("ascii", "replace"),
        checkpoints_checked=db_count,
        checkpoint_files_checked=file_count,
        duration_s=time.perf_counter() - started,
        since=since,
    )


def _ranges(first: int, workers: int) -> list[tuple[int, int | None]]:
    """Records `first` to the last cut into up to `workers` contiguous (first, last) ranges of
    MIN_RANGE_RECORDS or more; the last range is open-ended (None): it also takes whatever is
    appended meanwhile, as the single scan would."""
    last = DecisionRecord.objects.aggregate(last=Max("seq"))["last"] or 0
    count = last - first + 1
    n = max(1, min(workers, count // MIN_RANGE_RECORDS))
    size = -(-count // n)
    starts = [first + k * size for k in range(n)]
    return [(a, a + size - 1) for a in starts[:-1]] + [(starts[-1], None)]


def _run_ranges(walk: _Walk, raw, ranges: list[tuple[int, int | None]]) -> None:
    """Verify `ranges` at once, the first here with `walk`, each other one in a worker process
    starting from the stored hash of the record before it; then take `walk` past every
    following range, in order, that verified cleanly and starts from the hash `walk` ended
    with. Wherever that stops (a range with a problem, or one that does not follow on), `walk`
    stands exactly where a single scan would, and the caller goes on from there in order: a
    problem is reported as without workers."""
    if len(ranges) < 2:
        return
    (_, end), others = ranges[0], ranges[1:]
    before = [a - 1 for a, _ in others]
    stored = dict(DecisionRecord.objects.filter(seq__in=before).values_list("seq", "hash"))
    params = {  # Django's connection settings as plain values, for psycopg.connect()
        key: value
        for key, value in connection.get_connection_params().items()
        if isinstance(value, str | int)
    }
    tasks = [
        (
            params,
            a,
            b,
            stored[a - 1].encode("ascii", "replace") if a - 1 in stored else None,
            {s: mark for s, mark in walk.marks.items() if s >= a and (b is None or s <= b)},
        )
        for a, b in others
    ]
    # spawn: a fresh interpreter that imports only governance.chainwalk and psycopg, not a
    # copy of this process with its open connections (and, under a server, its threads).
    with multiprocessing.get_context("spawn").Pool(len(tasks)) as pool:
        pending = pool.starmap_async(verify_range_in_worker, tasks, chunksize=1)
        if not walk.run_copy(raw, end) or walk.seq != end + 1 or walk.problems:
            return  # leaving the block stops the workers
        results = pending.get()
    for result in results:
        if not walk.follow(result):
            return


def _starting_point(start: int, problems: list[_Problem]) -> tuple[bytes | None, int]:
    """The hash the record at `start` must follow: the genesis hash, or the stored hash of
    `start - 1`."""
    if start == 1:
        return _GENESIS_HEX, 1
    stored = DecisionRecord.objects.filter(seq=start - 1).values_list("hash", flat=True).first()
    if stored is None:
        last = DecisionRecord.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
        if start - 1 > last:
            raise ValueError(f"since {start} is beyond the last record (seq {last})")
        problems.append(_Problem(start - 1, f"record {start - 1} is missing"))
        return None, start
    return stored.encode("ascii", "replace"), start


class _Walk(Walk):
    """A `Walk` (governance.chainwalk: its `run_copy` is the fast path, on PostgreSQL) that can
    also verify rows read any other way: `run`, which says precisely what is wrong with the
    first bad record."""

    def run(self, chunks: Iterable[list[tuple]]) -> None:
        """Verify (seq, canonical, prev_hash, hash) rows, all but seq as bytes."""
        sha256, hexlify = hashlib.sha256, binascii.hexlify
        seq, prev_raw, prev_hex, marks = self.seq, self.prev_raw, self.prev_hex, self.marks
        next_mark = self._next_mark()
        first = seq
        try:
            for rows in chunks:
                for row_seq, canonical, stored_prev, stored_hash in rows:
                    if (
                        row_seq != seq
                        or stored_prev != prev_hex
                        or not canonical.endswith(b',"seq":%d,"v":1}' % seq)
                    ):
                        problem = _diagnose(seq, row_seq, canonical, stored_prev, prev_hex)
                        if problem is not None:
                            self.checked += 1
                            self._stop(problem)
                            return
                    digest = sha256(prev_raw + canonical).digest()
                    digest_hex = hexlify(digest)
                    if digest_hex != stored_hash:
                        self.checked += 1
                        self._stop(
                            _Problem(
                                seq,
                                f"record {seq} does not match its stored hash: its content was "
                                "altered after it was written",
                            )
                        )
                        return
                    if seq == next_mark:
                        self._check_mark(marks[seq], digest_hex)
                        next_mark = self._next_mark()
                    prev_raw, prev_hex = digest, digest_hex
                    seq += 1
            self.done = True
        finally:
            if next_mark is not None:
                self.pending.appendleft(next_mark)
            self.checked += seq - first
            self.seq, self.prev_raw, self.prev_hex = seq, prev_raw, prev_hex


def _diagnose(
    seq: int, row_seq: int, canonical: bytes, stored_prev: bytes, prev_hex: bytes
) -> _Problem | None:
    """Why the record read where `seq` was expected is wrong; None if it is in fact fine."""
    if row_seq != seq:
        return _Problem(
            seq, f"record {seq} is missing: the record after {seq - 1} is numbered {row_seq}"
        )
    match = _TAIL.search(canonical)
    if match and int(match[2]) == ledger.FORMAT_VERSION:
        content_seq = int(match[1])
    else:  # not the version 1 layout: read the document
        try:
            content_seq = json.loads(canonical)["seq"]
        except (ValueError, KeyError, TypeError):
            return _Problem(seq, f"record {seq}'s stored text is not a ledger record")
    if content_seq != seq:
        return _Problem(
            seq,
            f"the record stored as seq {seq} is record {content_seq} (its content says so): "
            "records were moved or reordered",
        )
    if stored_prev != prev_hex:
        return _Problem(
            seq,
            f"record {seq}'s prev_hash does not match record {seq - 1}'s hash: a record before "
            "it was removed, replaced or reordered",
        )
    return None


def _rows(start: int) -> Iterator[list[tuple]]:
    """Chunks of (seq, canonical, prev_hash, hash) from `start` on, all but seq as bytes."""
    if connection.vendor == "sqlite":
        return _rows_keyset(
            start,
            "SELECT seq, CAST(canonical AS BLOB), CAST(prev_hash AS BLOB), CAST(hash AS BLOB) "
            "FROM governance_decisionrecord WHERE seq >= %s ORDER BY seq LIMIT %s",
            encode=False,
        )
    return _rows_keyset(
        start,
        "SELECT seq, canonical, prev_hash, hash FROM governance_decisionrecord "
        "WHERE seq >= %s ORDER BY seq LIMIT %s",
        encode=True,
    )


def _rows_keyset(start: int, sql: str, *, encode: bool) -> Iterator[list[tuple]]:
    seq = start
    with connection.cursor() as cursor:
        while True:
            cursor.execute(sql, [seq, CHUNK])
            rows = cursor.fetchall()
            if not rows:
                return
            if encode:
                rows = [
                    (s, c.encode(), p.encode("ascii", "replace"), h.encode("ascii", "replace"))
                    for s, c, p, h in rows
                ]
            yield rows
            seq = rows[-1][0] + 1


# --- checkpoints ----------------------------------------------------------------------------


def _checkpoint_marks(public_key, our_key_id: str, problems: list[_Problem]):
    """Check every checkpoint's signature; collect what each signed about the chain."""
    marks: dict[int, _Mark] = {}

    def claim(seq: int, digest: str, source: str) -> None:
        marks.setdefault(seq, _Mark(seq)).claims.append((digest, source))

    db_count = 0
    rows = Checkpoint.objects.order_by("seq", "pk").values_list(
        "pk", "seq", "hash", "signed_at", "payload", "signature", "key_id"
    )
    for pk, seq, digest, signed_at, payload, signature, key_id in rows.iterator(chunk_size=2000):
        db_count += 1
        source = f"checkpoint #{pk} (seq {seq}, signed {signed_at:%Y-%m-%d %H:%M:%S} UTC)"
        problem = _signed_problem(payload, signature, key_id, public_key, our_key_id, source)
        if problem is None:
            signed = _signed_head(payload)
            if signed != (seq, digest):
                problem = (
                    f"{source} does not agree with what was signed (the signed payload names "
                    f"seq {signed[0]} and hash {str(signed[1])[:16]}...): the row was altered"
                )
        if problem:
            problems.append(_Problem(seq, problem))
        else:
            claim(seq, digest, source)

    file_count = 0
    directory = settings.STEWARD_CHECKPOINT_DIR
    if directory:
        for path in sorted(Path(directory).glob("checkpoint-*.json")):
            file_count += 1
            seq_in_name = _seq_in_name(path)
            source = f"checkpoint file {path.name}"
            try:
                document = json.loads(path.read_text())
                payload = document["payload"]
                problem = _signed_problem(
                    payload,
                    document["signature"],
                    document["key_id"],
                    public_key,
                    our_key_id,
                    source,
                )
            except (OSError, ValueError, KeyError, TypeError) as exc:
                problems.append(_Problem(seq_in_name, f"{source} cannot be read: {exc}"))
                continue
            if problem:
                problems.append(_Problem(seq_in_name, problem))
                continue
            seq, digest = _signed_head(payload)
            claim(seq, digest, source)
    return marks, db_count, file_count


def _signed_problem(payload, signature, key_id, public_key, our_key_id, source) -> str | None:
    if key_id != our_key_id:
        return (
            f"{source} was signed with another key (key id {str(key_id)[:16]}...), not "
            f"Steward's signing key ({our_key_id[:16]}...)"
        )
    if not isinstance(payload, str) or not isinstance(signature, str):
        return f"{source} has no valid payload and signature"
    if checkpoints.signature_problem(payload, signature, public_key):
        return (
            f"{source}: the signature does not verify with Steward's public key, so the "
            "checkpoint was forged or altered"
        )
    head = _signed_head(payload)
    if head is None:
        return f"{source} signs something that is not a checkpoint of this ledger"
    return None


def _signed_head(payload: str) -> tuple[int, str] | None:
    try:
        document = json.loads(payload)
    except ValueError:
        return None
    if (
        not isinstance(document, dict)
        or document.get("type") != "steward.checkpoint"
        or document.get("chain") != ledger.CHAIN
        or not isinstance(document.get("seq"), int)
        or not isinstance(document.get("hash"), str)
    ):
        return None
    return document["seq"], document["hash"]


def _seq_in_name(path: Path) -> int:
    match = re.match(r"checkpoint-(\d+)-", path.name)
    return int(match[1]) if match else 0


# --- recording the outcome ------------------------------------------------------------------


@transaction.atomic
def record_verification(report: VerificationReport) -> None:
    """Append `ledger.verified` (actor: the system) and, when intact, sign the verified head."""
    ledger.append(
        VERIFIED_EVENT,
        actor=None,
        body={
            "decision": "intact" if report.ok else "broken",
            "ok": report.ok,
            "since": report.since,
            "records_checked": report.records_checked,
            "first_bad_seq": report.first_bad_seq,
            "reason": report.reason,
            "head_seq": report.head_seq,
            "head_hash": report.head_hash,
            "checkpoints_checked": report.checkpoints_checked,
            "checkpoint_files_checked": report.checkpoint_files_checked,
            "duration_s": round(report.duration_s, 3),
        },
    )
    if report.ok and report.head_seq > 0:
        checkpoints.make_checkpoint(
            "verification", head=ledger.Appended(report.head_seq, report.head_hash)
        )


def last_verification() -> LastVerification | None:
    """The latest `ledger.verified` record's outcome (one query on the event index)."""
    row = (
        DecisionRecord.objects.filter(event=VERIFIED_EVENT)
        .order_by("-seq")
        .values_list("seq", "recorded_at", "canonical")
        .first()
    )
    if row is None:
        return None
    seq, recorded_at, canonical = row
    body = json.loads(canonical).get("body") or {}
    return LastVerification(
        seq=seq,
        at=recorded_at,
        ok=bool(body.get("ok")),
        first_bad_seq=body.get("first_bad_seq"),
        reason=body.get("reason"),
        records_checked=body.get("records_checked"),
    )
