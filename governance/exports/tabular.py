"""CSV and JSON Lines exports, as generators of byte chunks.

CSV: one header line, then one line per record in ascending `seq`, comma-separated, quoted
only where needed, UTF-8, `\\n` line ends. Columns:

=======================  =====================================================================
seq                      the record's position in the chain (gapless from 1)
recorded_at              when it was appended, UTC, as PostgreSQL writes timestamps in ISO
                         style: `2026-03-01 09:30:00.25+00` (trailing zeros of the fraction
                         dropped); the canonical record has the same instant as `...Z`
event                    what happened (`agent.decided`, `run.started`, `export.made`, ...)
actor_type               person, agent or system
actor_id, actor_name     the user id and username, the agent version's id and name, or empty
                         and "steward" for the system
team_id, team_name       the team the record belongs to, with its name at the time (empty when
                         none); likewise workflow_id, workflow_name, agent_id, agent_name
run_id                   the run it belongs to (empty when none)
decision                 the body's decision, as text of at most 200 characters (empty when none)
confidence               the body's confidence (empty when none)
subject_id               the data subject of the record's personal part (empty when it has none).
                         The personal part itself appears only as ciphertext inside `canonical`:
                         CSV and JSON Lines exports never decrypt it.
personal_erased_at       set when that subject was erased (right to erasure): when (UTC, as
                         recorded_at), by whom
personal_erased_by       and why. The ciphertext stays in `canonical` (the chain still verifies)
personal_erasure_reason  but nobody can read it any more.
prev_hash, hash          the chain links, hex: hash = SHA-256(bytes of prev_hash || canonical as
                         UTF-8); the first record's prev_hash is 64 zeros
canonical                the record's RFC 8785 JSON, exactly the bytes that were hashed; every
                         other column except the erasure ones is a copy of a value inside it
=======================  =====================================================================

A missing value is an empty field; empty text is `""` (as PostgreSQL's COPY writes them). A
text cell that would start with `=`, `+`, `-` or `@` (a name, id, decision or erasure reason
someone typed) is written with a leading apostrophe, so that a spreadsheet shows it instead of
running it as a formula (CSV injection); `canonical`, the evidence, is always written verbatim
and holds every value as recorded. On PostgreSQL the rows come from `COPY (SELECT ...) TO
STDOUT (FORMAT csv)` of the stored columns, one statement per window of `seq` so the
connection is free between windows; elsewhere from keyset chunks written by `csv_line`, which
follows COPY's quoting and number and timestamp forms. Both give the same bytes.

JSON Lines: one JSON object per line, in ascending `seq`::

    {"seq": 7, "hash": "...", "prev_hash": "...", "record": {...}, "erasure": null}

`record` is the stored canonical text embedded verbatim: serialising it again with RFC 8785
gives back exactly the hashed bytes. `erasure` is null, or when the record's data subject was
erased ``{"subject", "erased_at", "erased_by", "reason"}``. As in CSV, the personal part appears
only as its ciphertext (`record.personal`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.db import connection, transaction
from django.db.models import (
    Case,
    DateTimeField,
    F,
    OuterRef,
    Q,
    Subquery,
    TextField,
    Value,
    When,
)

from governance.exports.selection import Selection, erasures_of, keyset_chunks
from governance.models import SubjectKey

RECORD_COLUMNS = (
    "seq",
    "recorded_at",
    "event",
    "actor_type",
    "actor_id",
    "actor_name",
    "team_id",
    "team_name",
    "workflow_id",
    "workflow_name",
    "agent_id",
    "agent_name",
    "run_id",
    "decision",
    "confidence",
    "subject_id",
)
ERASURE_COLUMNS = ("personal_erased_at", "personal_erased_by", "personal_erasure_reason")
# Names, ids and reasons come from people: one that begins with = + - or @ would run as a
# formula in the spreadsheet a CSV is opened in (CSV injection). Such cells get a leading
# apostrophe, as OWASP advises; the canonical column, which the hash covers, is never touched.
FORMULA_SAFE_COLUMNS = (set(RECORD_COLUMNS) - {"seq", "recorded_at", "confidence"}) | {
    "personal_erased_by",
    "personal_erasure_reason",
}
FORMULA_STARTS = ("=", "+", "-", "@")
CHAIN_COLUMNS = ("prev_hash", "hash", "canonical")
CSV_HEADER = (*RECORD_COLUMNS, *ERASURE_COLUMNS, *CHAIN_COLUMNS)
_FIELDS = (*RECORD_COLUMNS, *CHAIN_COLUMNS)
_SUBJECT = _FIELDS.index("subject_id")

CHUNK_ROWS = 2000  # records per keyset query (~2.5 MB of canonical text)
COPY_WINDOW = 50_000  # seqs per COPY statement
FLUSH_BYTES = 256 * 1024  # bytes gathered before a chunk is handed on

Progress = Callable[[int], None]


@dataclass
class Tally:
    """What the stream has produced so far (read by the service when it records the export)."""

    records: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    extra: dict = field(default_factory=dict)  # format-specific facts (the bundle's manifest)

    def saw(self, first: int, last: int, count: int) -> None:
        if self.first_seq is None:
            self.first_seq = first
        self.last_seq = last
        self.records += count

    @property
    def range(self) -> dict | None:
        if self.first_seq is None:
            return None
        return {"first_seq": self.first_seq, "last_seq": self.last_seq}


def csv_chunks(
    selection: Selection, tally: Tally, progress: Progress | None = None
) -> Iterator[bytes]:
    if connection.vendor == "postgresql":
        return _csv_by_copy(selection, tally, progress)
    return _csv_by_rows(selection, tally, progress)


def _header_bytes() -> bytes:
    return (",".join(CSV_HEADER) + "\n").encode()


def formula_safe(value):
    """`value` as a spreadsheet shows it and never runs it (see FORMULA_SAFE_COLUMNS)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


_SAFE_AT = [i for i, name in enumerate(CSV_HEADER) if name in FORMULA_SAFE_COLUMNS]
# A field of a CSV row that may begin with a formula character. Checked on every row COPY
# sends, in C and while the database produces the next rows (a CASE per cell in SQL made the
# export 40 % slower, and a pattern that does not start with the comma 4.5 times slower,
# bench/ledger.py); `canonical`'s JSON may match too (`[1,-2]`), which only costs that row
# the closer look of `formula_safe_row`.
_MAYBE_FORMULA = re.compile(rb',"?[=+@-]')  # the first field, seq, never needs it
_QUOTE, _COMMA = ord('"'), ord(",")


def formula_safe_row(row: bytes) -> bytes:
    """A CSV row as COPY wrote it, with `formula_safe` applied to its FORMULA_SAFE_COLUMNS."""
    starts, inside, at = [0], False, 0
    last = _SAFE_AT[-1]
    while at < len(row) and len(starts) <= last:
        byte = row[at]
        if byte == _QUOTE:
            inside = not inside  # a doubled quote inside a field toggles twice
        elif byte == _COMMA and not inside:
            starts.append(at + 1)
        at += 1
    inserts = []
    for index in _SAFE_AT:
        if index >= len(starts):
            break
        first = starts[index] + (1 if row[starts[index] : starts[index] + 1] == b'"' else 0)
        if row[first : first + 1] in (b"=", b"+", b"-", b"@"):
            inserts.append(first)
    for first in reversed(inserts):
        row = row[:first] + b"'" + row[first:]
    return row


def _csv_by_rows(selection: Selection, tally: Tally, progress: Progress | None) -> Iterator[bytes]:
    yield _header_bytes()
    split = len(RECORD_COLUMNS)
    for rows in keyset_chunks(selection.records(), _FIELDS, CHUNK_ROWS):
        erased = erasures_of(row[_SUBJECT] for row in rows)
        lines = []
        for row in rows:
            gone = erased.get(row[_SUBJECT])
            tail = (gone.moment, gone.erased_by, gone.reason) if gone else (None, None, None)
            cells = [*row[:split], *tail, *row[split:]]
            for at in _SAFE_AT:
                cells[at] = formula_safe(cells[at])
            lines.append(csv_line(cells))
        tally.saw(rows[0][0], rows[-1][0], len(rows))
        yield "".join(lines).encode()
        if progress:
            progress(tally.records)


_NEEDS_QUOTES = re.compile(r'[,"\r\n]')


def csv_line(values) -> str:
    """One CSV line as PostgreSQL's COPY (FORMAT csv) writes it: None is an empty field, empty
    text is quoted, text with a comma, quote or line break is quoted with quotes doubled."""
    return ",".join(map(_csv_cell, values)) + "\n"


def _csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        if not value or _NEEDS_QUOTES.search(value):
            return '"' + value.replace('"', '""') + '"'
        return value
    if isinstance(value, float):
        text = repr(value)  # shortest round-trip form, as PostgreSQL 12+ writes float8
        return text[:-2] if text.endswith(".0") else text
    if isinstance(value, datetime):
        return pg_timestamp(value)
    return str(value)


def pg_timestamp(moment: datetime) -> str:
    """A timestamp as PostgreSQL writes timestamptz in ISO style with the UTC time zone."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "+00"


def copy_query(
    selection: Selection, low: int, high: int, *, erasures: bool = True
) -> tuple[str, tuple]:
    """The SELECT that COPY writes for the selected records with low < seq <= high.

    Built from the selection's own queryset (visibility and filter included), selecting the
    stored columns as they are: COPY formats them itself, which keeps the database's work per
    row close to a bare COPY's. The erasure columns are scalar subqueries evaluated only for
    records that have a data subject; with `erasures` False (no subject was ever erased) they
    are plain NULLs.
    """
    erased = SubjectKey.objects.filter(subject_id=OuterRef("subject_id"), erased_at__isnull=False)

    def erasure(name: str, field):
        if not erasures:
            return Value(None, output_field=field)
        return Case(
            When(~Q(subject_id=""), then=Subquery(erased.values(name)[:1])),
            default=None,
            output_field=field,
        )

    columns = {
        **{f"c_{name}": F(name) for name in RECORD_COLUMNS},
        "c_erased_at": erasure("erased_at", DateTimeField()),
        "c_erased_by": erasure("erased_by", TextField()),
        "c_erasure_reason": erasure("erasure_reason", TextField()),
        **{f"c_{name}": F(name) for name in CHAIN_COLUMNS},
    }
    queryset = (
        selection.records()
        .filter(seq__gt=low, seq__lte=high)
        .annotate(**columns)
        .order_by("seq")
        .values_list(*columns)
    )
    sql, params = queryset.query.sql_with_params()
    return sql, params


def _csv_by_copy(selection: Selection, tally: Tally, progress: Progress | None) -> Iterator[bytes]:
    yield _header_bytes()
    first = selection.first_seq()
    if first is None:
        return
    low = first - 1
    while low < selection.upper_seq:
        high = min(low + COPY_WINDOW, selection.upper_seq)
        any_erased = SubjectKey.objects.filter(erased_at__isnull=False).exists()
        sql, params = copy_query(selection, low, high, erasures=any_erased)
        buffer = bytearray()
        rows = 0
        last_row_length = 0
        # Each COPY data message is exactly one row, so counting messages counts records and
        # the last message's length finds the last row's seq without parsing the CSV.
        statement = f"COPY ({sql}) TO STDOUT (FORMAT csv)"
        with transaction.atomic(), connection.cursor() as cursor:
            # The erasure subqueries inflate the planner's cost estimate past jit_above_cost,
            # and compiling the query costs more than a whole window takes to run: measured
            # at 1.2 s per 50,000-record window with JIT, 0.3 s without.
            cursor.execute("SET LOCAL jit = off")
            # The output forms csv_line follows, whatever the server's defaults.
            cursor.execute("SET LOCAL TimeZone = 'UTC'")
            cursor.execute("SET LOCAL DateStyle = 'ISO, YMD'")
            cursor.execute("SET LOCAL extra_float_digits = 1")
            with cursor.cursor.copy(statement, params) as copy:
                for data in copy:
                    if not rows:
                        first_row = bytes(data[:24])
                    if _MAYBE_FORMULA.search(data):  # rare: a closer look at this row
                        data = formula_safe_row(bytes(data))
                    buffer += data
                    rows += 1
                    last_row_length = len(data)
                    if len(buffer) >= FLUSH_BYTES:
                        last_seq = _leading_int(buffer[-last_row_length:])
                        tally.saw(_leading_int(first_row), last_seq, 0)
                        yield bytes(buffer)
                        buffer.clear()
        if rows:
            if buffer:
                tally.saw(_leading_int(first_row), _leading_int(buffer[-last_row_length:]), 0)
                yield bytes(buffer)
            tally.records += rows
        low = high
        if progress:
            progress(tally.records)


def _leading_int(row: bytes | bytearray) -> int:
    return int(bytes(row[: row.index(b",")]))


def jsonl_chunks(
    selection: Selection, tally: Tally, progress: Progress | None = None
) -> Iterator[bytes]:
    fields = ("seq", "hash", "prev_hash", "canonical", "subject_id")
    for rows in keyset_chunks(selection.records(), fields, CHUNK_ROWS):
        erased = erasures_of(row[4] for row in rows)
        lines = []
        for seq, digest, prev_hash, canonical, subject in rows:
            gone = erased.get(subject)
            erasure = json_text(gone.as_dict()) if gone else "null"
            lines.append(
                f'{{"seq":{seq},"hash":"{digest}","prev_hash":"{prev_hash}",'
                f'"record":{canonical},"erasure":{erasure}}}\n'
            )
        tally.saw(rows[0][0], rows[-1][0], len(rows))
        yield "".join(lines).encode()
        if progress:
            progress(tally.records)


def json_text(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
