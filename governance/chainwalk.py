"""The ledger verification's fast path, free of Django so that a worker process needs nothing but
psycopg to run it (governance.verify splits a long chain into ranges verified at once).

A `Walk` follows the chain from one `seq`: `run_copy` streams the records with COPY in binary
format and recomputes every hash at near SHA-256 speed, checking the checkpoints it passes. It
stops, without judging, at the first record it cannot take as it comes; governance.verify's
precise path takes over from there and says what is wrong.
"""

from __future__ import annotations

import binascii
import hashlib
from collections import deque
from dataclasses import dataclass, field

import psycopg
from psycopg import errors as psycopg_errors
from psycopg import pq as psycopg_pq

_COPY_SQL = (
    "COPY (SELECT seq, prev_hash, hash, canonical FROM governance_decisionrecord "
    "WHERE seq >= {start:d}{upto} ORDER BY seq) TO STDOUT (FORMAT BINARY)"
)
_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_LEN64 = (64).to_bytes(4, "big")


@dataclass
class Problem:
    seq: int
    reason: str


@dataclass
class Mark:
    """What signed checkpoints say the chain's hash is at one `seq`."""

    seq: int
    claims: list[tuple[str, str]] = field(default_factory=list)  # (hash hex, which checkpoint)


@dataclass
class RangeResult:
    """What one range's walk found, as plain data for the process that asked."""

    first: int  # the range's first seq
    end: int | None  # its last seq; None: to the end of the ledger
    start_hex: bytes | None  # the stored hash of record first - 1 it started from
    clean: bool  # every record in the range verified, and every checkpoint in it matched
    seq: int  # the seq after the last record verified
    last_hex: bytes  # the last recomputed hash
    checked: int
    last_good_mark: int  # the last checkpoint in the range that matched; 0 if none


class Walk:
    """Walks the chain from one `seq`, keeping the last verified hash and the checkpoints
    still to meet."""

    def __init__(self, seq: int, prev_hex: bytes | None, marks: dict[int, Mark], start: int):
        self.seq = seq  # the seq the next record must have
        self.prev_hex = prev_hex or b""  # the hash of record seq - 1, hex
        self.prev_raw = b""
        self.checked = 0
        self.done = prev_hex is None  # the end was reached, or a problem found
        self.broken = False  # stopped at a bad record
        self.problems: list[Problem] = []
        self.marks = marks
        self.last_good_mark = 0
        # A checkpoint at start - 1 vouches for the stored hash we start from.
        if prev_hex is not None and start - 1 in marks:
            self._check_mark(marks[start - 1], prev_hex)
        self.pending = deque(sorted(s for s in marks if s >= start))
        if prev_hex is not None:
            try:
                self.prev_raw = binascii.unhexlify(prev_hex)
            except (binascii.Error, ValueError):
                self._stop(Problem(seq - 1, f"record {seq - 1}'s hash is not a SHA-256 digest"))

    def _stop(self, problem: Problem) -> None:
        self.problems.append(problem)
        self.done = self.broken = True

    def _next_mark(self) -> int | None:
        return self.pending.popleft() if self.pending else None

    def run_copy(self, raw: psycopg.Connection, end: int | None = None) -> bool:
        """Verify the records from `self.seq` to `end` (default: the last), streamed over the
        psycopg connection `raw` with COPY in binary format. True when every one verified.

        Stops, without judging, at the first record it cannot take as it comes (anything
        wrong, or a layout other than format 1).
        """
        pgconn = raw.pgconn
        upto = "" if end is None else f" AND seq <= {int(end):d}"
        sql = _COPY_SQL.format(start=int(self.seq), upto=upto)
        with raw.cursor() as cursor, cursor.copy(sql):
            get = pgconn.get_copy_data
            ended = False
            try:
                ended = self._copy_loop(get)
            finally:
                if not ended:  # read the rest, so the connection is left as it was
                    while get(0)[0] > 0:
                        pass
                result = pgconn.get_result()
                while pgconn.get_result() is not None:
                    pass
            if result is None or result.status != psycopg_pq.ExecStatus.COMMAND_OK:
                raise psycopg_errors.error_from_result(result, encoding=raw.info.encoding)
        if end is None:
            self.done = self.done or ended
        return ended

    def _copy_loop(self, get) -> bool:
        """True when every record was verified to the end of the data."""
        sha256, hexlify, from_bytes = hashlib.sha256, binascii.hexlify, int.from_bytes
        nbytes, data = get(0)
        if nbytes <= 0:
            return False
        row = bytes(data)
        if not row.startswith(_COPY_SIGNATURE):
            return False
        row = row[19 + from_bytes(row[15:19]) :]  # the header and its extension
        seq, prev_raw, marks = self.seq, self.prev_raw, self.marks
        # In format 1 a row is: field count (2 bytes); then each field's length (4) and bytes:
        # seq (8) at 6, prev_hash (64) at 18, hash (64) at 86, canonical from 154 on.
        linked = _LEN64 + self.prev_hex  # what the row's prev_hash field must be
        next_mark = self._next_mark()
        try:
            while len(row) != 2:  # the trailer is a field count of -1
                if (
                    from_bytes(row[6:14]) != seq
                    or row[14:82] != linked
                    or not row.endswith(b',"seq":%d,"v":1}' % seq)
                ):
                    return False
                digest = sha256(prev_raw + row[154:]).digest()
                hashed = _LEN64 + hexlify(digest)
                if row[82:150] != hashed:
                    return False
                if seq == next_mark:
                    self._check_mark(marks[seq], hashed[4:])
                    next_mark = self._next_mark()
                prev_raw, linked = digest, hashed
                seq += 1
                nbytes, data = get(0)
                if nbytes <= 0:
                    return False
                row = bytes(data)
            return get(0)[0] == -1
        finally:
            if next_mark is not None:
                self.pending.appendleft(next_mark)
            self.checked += seq - self.seq
            self.seq, self.prev_raw, self.prev_hex = seq, prev_raw, linked[4:]

    def _check_mark(self, mark: Mark, recomputed_hex: bytes) -> None:
        for claimed, source in mark.claims:
            if claimed.encode("ascii", "replace") != recomputed_hex:
                self.problems.append(
                    Problem(
                        mark.seq,
                        f"record {mark.seq} does not match {source}: it signed hash "
                        f"{claimed[:16]}..., the chain recomputed from the stored records gives "
                        f"{recomputed_hex[:16].decode()}...; a record from "
                        f"{self.last_good_mark + 1} to {mark.seq} was changed and the chain "
                        "recomputed after the checkpoint was signed",
                    )
                )
                return
        self.last_good_mark = mark.seq

    def follow(self, result: RangeResult) -> bool:
        """Go on past a range another walk verified, if it verified cleanly and started from
        exactly the hash this walk ended with (the last record before it, recomputed here).
        False, and nothing changed, otherwise."""
        if not result.clean or result.first != self.seq or result.start_hex != self.prev_hex:
            return False
        self.seq, self.prev_hex = result.seq, result.last_hex
        self.prev_raw = binascii.unhexlify(result.last_hex)
        self.checked += result.checked
        self.last_good_mark = result.last_good_mark or self.last_good_mark
        while self.pending and self.pending[0] < result.seq:  # checked by that walk
            self.pending.popleft()
        self.done = result.end is None
        return True

    def unreached_marks(self) -> list[Problem]:
        """Checkpoints beyond the last record: the tail was removed."""
        if self.broken:
            return []
        last = self.seq - 1
        beyond = [mark for s, mark in self.marks.items() if s > last]
        if not beyond:
            return []
        mark = max(beyond, key=lambda m: m.seq)
        return [
            Problem(
                last + 1,
                f"the ledger ends at seq {last}, but {mark.claims[0][1]} covers seq {mark.seq}: "
                f"records {last + 1} to {mark.seq} were removed",
            )
        ]


def verify_range(
    raw: psycopg.Connection,
    first: int,
    end: int | None,
    start_hex: bytes | None,
    marks: dict[int, Mark],
) -> RangeResult:
    """Verify records `first` to `end` (None: to the last) from `start_hex`, the stored hash of
    record `first - 1`, and the checkpoints in `marks` (those in the range)."""
    walk = Walk(first, start_hex, marks, first)
    ended = not walk.done and walk.run_copy(raw, end)
    return RangeResult(
        first=first,
        end=end,
        start_hex=start_hex,
        clean=ended and not walk.problems and (end is None or walk.seq == end + 1),
        seq=walk.seq,
        last_hex=walk.prev_hex,
        checked=walk.checked,
        last_good_mark=walk.last_good_mark,
    )


def verify_range_in_worker(params: dict, *args) -> RangeResult:
    """`verify_range` in a worker process, over its own connection (`psycopg.connect(**params)`)."""
    with psycopg.connect(**params) as raw:
        return verify_range(raw, *args)
