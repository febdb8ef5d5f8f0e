"""The evidence bundle (DESIGN.md, The decision ledger; FORMAT.md inside every bundle).

A zip written as a stream: the zip module writes into a sink that is not seekable, so every
member carries a data descriptor and nothing is ever seeked back; the generator hands on the
sink's bytes as they come. Memory stays flat whatever the size, and the same stream serves a
download, a file written by the command or by the task.

Order of work: sign a fresh checkpoint (reason "export") so that one always covers the
selection; write the selected records, their personal parts, the skeleton from the first
selected record to the anchoring checkpoint (the earliest one at or after the last selected
record), the checkpoints inside that span plus the fresh one, and last the manifest, signed.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Iterable, Iterator
from datetime import UTC

from django.utils import timezone

from governance import checkpoints, keys, ledger
from governance.exports.format_doc import FORMAT_MD
from governance.exports.selection import (
    ExportError,
    Selection,
    erasures_of,
    iso_utc,
    keyset_chunks,
)
from governance.exports.tabular import CHUNK_ROWS, FLUSH_BYTES, Progress, Tally, json_text
from governance.models import Checkpoint, DecisionRecord
from governance.personal import SubjectKeyring

FORMAT_NAME = "steward.evidence-bundle"
FORMAT_VERSION = 1
SKELETON_CHUNK = 10_000
FILES = (
    "FORMAT.md",
    "public_key.pem",
    "records.jsonl",
    "personal.jsonl",
    "skeleton.jsonl",
    "checkpoints.json",
)


class _Sink:
    """A write-only, unseekable buffer: the zip module streams into it, we drain it."""

    def __init__(self):
        self._parts: list[bytes] = []
        self.size = 0

    def write(self, data) -> int:
        self._parts.append(bytes(data))
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        self.size = 0
        return data


def bundle_chunks(
    selection: Selection, tally: Tally, progress: Progress | None = None
) -> Iterator[bytes]:
    """The bundle's bytes. `tally.extra` receives the manifest's facts for `export.made`."""
    fresh = checkpoints.make_checkpoint("export")
    key_id = keys.key_id()
    exported_at = timezone.now()
    stamp = exported_at.astimezone(UTC).timetuple()[:6]
    sink = _Sink()
    digests: dict[str, dict] = {}
    personal_counts = {"readable": 0, "erased": 0, "withheld": 0, "unreadable": 0}
    with zipfile.ZipFile(sink, "w", allowZip64=True) as archive:

        def member(name: str, chunks: Iterable[bytes]) -> Iterator[bytes]:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            digest, size = hashlib.sha256(), 0
            with archive.open(info, "w", force_zip64=True) as handle:
                for chunk in chunks:
                    handle.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    if sink.size >= FLUSH_BYTES:
                        yield sink.drain()
            digests[name] = {"sha256": digest.hexdigest(), "bytes": size}
            yield sink.drain()

        yield from member("FORMAT.md", [FORMAT_MD.encode()])
        yield from member("public_key.pem", [keys.public_key_pem()])
        yield from member("records.jsonl", _record_lines(selection, tally, progress))
        yield from member("personal.jsonl", _personal_lines(selection, personal_counts))

        anchor = None
        if tally.records:
            anchor = (
                Checkpoint.objects.filter(key_id=key_id, seq__gte=tally.last_seq)
                .order_by("seq", "signed_at")
                .first()
            )
            if anchor is None:  # make_checkpoint covered the head, so this means a bug
                raise ExportError("checkpoints", f"no checkpoint covers seq {tally.last_seq}")
        span = (tally.first_seq, anchor.seq) if anchor else None
        skeleton = {"entries": 0}
        yield from member("skeleton.jsonl", _skeleton_lines(span, skeleton, tally, progress))
        chosen: list[Checkpoint] = []
        yield from member("checkpoints.json", _checkpoint_array(span, fresh, key_id, chosen))

        manifest = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "chain": ledger.CHAIN,
            "exported_at": iso_utc(exported_at),
            "exported_by": selection.actor.as_dict(),
            "visibility": selection.visibility,
            "filters": selection.filter.as_dict(),
            "snapshot_seq": selection.upper_seq,
            "selection": {
                "records": tally.records,
                "first_seq": tally.first_seq,
                "last_seq": tally.last_seq,
            },
            "skeleton": {
                "first_seq": span[0] if span else None,
                "last_seq": span[1] if span else None,
                "entries": skeleton["entries"],
            },
            "checkpoints": {
                "count": len(chosen),
                "anchor_seq": anchor.seq if anchor else None,
                "fresh_seq": fresh.seq if fresh else None,
            },
            "personal": {"decrypted": selection.may_see_personal, **personal_counts},
            "key_id": key_id,
            "files": digests,
        }
        manifest_bytes = (
            json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        ).encode()
        signature = keys.signing_key().sign(manifest_bytes).hex()
        yield from member("manifest.json", [manifest_bytes])
        yield from member("manifest.sig", [(signature + "\n").encode()])
    yield sink.drain()
    tally.extra = {
        "manifest_sha256": hashlib.sha256(manifest_bytes).hexdigest(),
        "key_id": key_id,
        "skeleton": manifest["skeleton"],
        "checkpoints": manifest["checkpoints"],
        "personal": manifest["personal"],
    }


def _record_lines(selection: Selection, tally: Tally, progress: Progress | None):
    fields = ("seq", "prev_hash", "hash", "canonical")
    for rows in keyset_chunks(selection.records(), fields, CHUNK_ROWS):
        yield "".join(
            f'{{"seq":{seq},"prev_hash":"{prev_hash}","hash":"{digest}",'
            f'"canonical":{json_text(canonical)}}}\n'
            for seq, prev_hash, digest, canonical in rows
        ).encode()
        tally.saw(rows[0][0], rows[-1][0], len(rows))
        if progress:
            progress(tally.records)


def _personal_lines(selection: Selection, counts: dict):
    """Per selected record with a personal part: readable (decrypted, only for exporters who
    may see personal data), erased (when, by whom, why), withheld or unreadable."""
    queryset = selection.records().exclude(subject_id="")
    fields = ("seq", "subject_id", "canonical")
    for rows in keyset_chunks(queryset, fields, CHUNK_ROWS):
        erased = erasures_of(row[1] for row in rows)
        keyring = SubjectKeyring()  # one per chunk: memory stays flat over many subjects
        if selection.may_see_personal:
            keyring.preload(row[1] for row in rows)
        lines = []
        for seq, subject, canonical in rows:
            entry = {"seq": seq, "subject": subject}
            gone = erased.get(subject)
            if gone:
                entry.update(status="erased", **_erasure_fields(gone.as_dict()))
            elif not selection.may_see_personal:
                entry.update(status="withheld", reason="the exporter may not see personal data")
            else:
                opened = keyring.open(json.loads(canonical)["personal"])
                if opened.status == "readable":
                    entry.update(status="readable", data=opened.data)
                elif opened.status == "erased":
                    entry.update(
                        status="erased",
                        erased_at=iso_utc(opened.erased_at),
                        erased_by=opened.erased_by,
                        reason=opened.reason,
                    )
                else:
                    entry.update(status="unreadable", reason=opened.reason)
            counts[entry["status"]] += 1
            lines.append(json_text(entry) + "\n")
        yield "".join(lines).encode()


def _erasure_fields(erasure: dict) -> dict:
    return {key: value for key, value in erasure.items() if key != "subject"}


def _skeleton_lines(span, facts: dict, tally: Tally, progress: Progress | None):
    if span is None:
        return
    queryset = DecisionRecord.objects.filter(seq__gte=span[0], seq__lte=span[1])
    done = tally.records
    for rows in keyset_chunks(queryset, ("seq", "prev_hash", "hash"), SKELETON_CHUNK):
        yield "".join(
            f'{{"seq":{seq},"prev_hash":"{prev_hash}","hash":"{digest}"}}\n'
            for seq, prev_hash, digest in rows
        ).encode()
        facts["entries"] += len(rows)
        if progress:
            progress(done + facts["entries"])


def _checkpoint_array(span, fresh: Checkpoint | None, key_id: str, chosen: list):
    """The checkpoints signed with the current key inside the skeleton span, and the fresh
    one; a JSON array, written as it is read."""
    if span is not None:
        inside = Checkpoint.objects.filter(key_id=key_id, seq__gte=span[0], seq__lte=span[1])
        for checkpoint in inside.order_by("seq", "signed_at").iterator(chunk_size=1000):
            chosen.append(checkpoint)
    if fresh is not None and all(c.pk != fresh.pk for c in chosen):
        chosen.append(fresh)
    items = [json_text(checkpoints.as_document(c)) for c in chosen]
    yield ("[\n" + ",\n".join(items) + ("\n" if items else "") + "]\n").encode()
