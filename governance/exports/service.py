"""Making an export and recording it.

Every export, whatever its format and whoever asks (page, command, task), is itself a ledger
record `export.made` naming the exporter, the format, the filters, the counts, the range and
the SHA-256 of the bytes produced, appended when the export ends; a checkpoint (reason
"export") is signed right after it, in the same transaction. A download the client abandons
half-way is recorded too, with `"complete": false`, since its first bytes already left.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from governance import checkpoints, ledger
from governance.exports.bundle import bundle_chunks
from governance.exports.selection import FORMATS, ExportError, Selection
from governance.exports.tabular import Progress, Tally, csv_chunks, jsonl_chunks
from governance.models import Checkpoint, DecisionRecord

logger = logging.getLogger(__name__)

EXTENSIONS = {"csv": "csv", "jsonl": "jsonl", "bundle": "zip"}
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/jsonl; charset=utf-8",
    "bundle": "application/zip",
}
PERSONAL_IN_TABLES = "ciphertext only"
VIA = ("page", "command", "task")


@dataclass(frozen=True)
class ExportResult:
    format: str
    records: int
    range: dict | None
    sha256: str
    bytes: int
    record: DecisionRecord  # the export.made record
    checkpoint: Checkpoint | None


class Export:
    """One export: iterate `chunks()` for its bytes, then call `record()`."""

    def __init__(
        self,
        selection: Selection,
        fmt: str,
        *,
        via: str,
        job_id: int | None = None,
        progress: Progress | None = None,
    ):
        if fmt not in FORMATS:
            raise ExportError("format", f"one of {', '.join(FORMATS)}; got {fmt!r}")
        if via not in VIA:
            raise ValueError(f"via: one of {VIA}")
        self.selection = selection
        self.format = fmt
        self.via = via
        self.job_id = job_id
        self.progress = progress
        self.tally = Tally()
        self.digest = hashlib.sha256()
        self.bytes = 0
        self.recorded: ExportResult | None = None

    def chunks(self) -> Iterator[bytes]:
        make = {"csv": csv_chunks, "jsonl": jsonl_chunks, "bundle": bundle_chunks}[self.format]
        for chunk in make(self.selection, self.tally, self.progress):
            if not chunk:
                continue
            self.digest.update(chunk)
            self.bytes += len(chunk)
            yield chunk

    def body(self, *, complete: bool) -> dict:
        selection = self.selection
        body = {
            "format": self.format,
            "via": self.via,
            "filters": selection.filter.as_dict(),
            "visibility": "all" if selection.sees_everything else "restricted",
            "snapshot_seq": selection.upper_seq,
            "records": self.tally.records,
            "range": self.tally.range,
            "sha256": self.digest.hexdigest(),
            "bytes": self.bytes,
            "complete": complete,
        }
        if self.format == "bundle":
            body.update(self.tally.extra)
        else:
            body["personal"] = PERSONAL_IN_TABLES
        if self.job_id is not None:
            body["job"] = self.job_id
        return body

    def record(self, *, complete: bool = True) -> ExportResult:
        self.recorded = record_export(self, actor=self.selection.actor, complete=complete)
        return self.recorded


@transaction.atomic
def record_export(export: Export, *, actor, complete: bool = True) -> ExportResult:
    """Append `export.made` for `export` and sign a checkpoint after it."""
    record = ledger.append("export.made", actor=actor, body=export.body(complete=complete))
    checkpoint = checkpoints.make_checkpoint("export")
    return ExportResult(
        format=export.format,
        records=export.tally.records,
        range=export.tally.range,
        sha256=export.digest.hexdigest(),
        bytes=export.bytes,
        record=record,
        checkpoint=checkpoint,
    )


def stream_and_record(export: Export) -> Iterator[bytes]:
    """The export's chunks for a streamed response, recorded when the stream ends.

    If the client goes away (the server closes the generator) or the export fails half-way,
    what already left is recorded as an incomplete export before the error goes on.
    """
    try:
        yield from export.chunks()
    except BaseException:
        if export.bytes:
            try:
                export.record(complete=False)
            except Exception:
                logger.exception("could not record an incomplete %s export", export.format)
        raise
    export.record()


def export_to_path(export: Export, path: Path) -> ExportResult:
    """Write the export to `path` (through `path`.part, renamed when whole) and record it."""
    part = path.with_name(path.name + ".part")
    try:
        with open(part, "wb") as handle:
            for chunk in export.chunks():
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(part, path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return export.record()


def export_to_stream(export: Export, stream) -> ExportResult:
    """Write the export to an open binary stream (e.g. standard output) and record it."""
    for chunk in export.chunks():
        stream.write(chunk)
    stream.flush()
    return export.record()


def download_name(fmt: str, moment=None) -> str:
    moment = moment or timezone.now()
    return f"steward-decisions-{moment:%Y%m%d-%H%M%S}.{EXTENSIONS[fmt]}"
