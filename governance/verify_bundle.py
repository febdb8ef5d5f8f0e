"""Verify a Steward evidence bundle offline.

    python -m governance.verify_bundle BUNDLE.zip [--expect-key-id HEX | --public-key PEM]

Python's standard library plus the `cryptography` package, nothing else: no Django, nothing
of Steward's, so an auditor can copy this one file and run `python verify_bundle.py
BUNDLE.zip` anywhere. It checks, in this order, and stops at the first problem, naming the
file and the `seq`:

1. the manifest's Ed25519 signature (manifest.sig) with the public key in the bundle, after
   checking that key against the one you pin (--expect-key-id / --public-key), if you pin one;
2. every file's SHA-256 and size against the manifest, and that no file is missing or extra;
3. every checkpoint's signature, payload and key;
4. every record: its hash recomputed from its exact bytes and prev_hash, its seq;
5. the skeleton: seq contiguous, each prev_hash equal to the previous hash (the genesis value
   at seq 1), every selected record in it with the same hashes, every checkpoint that falls
   inside it matching it, and one checkpoint at or after the last selected record (the anchor);
6. the manifest's counts and ranges, and personal.jsonl against the records.

Exit status: 0 valid, 1 invalid (or unreadable), 2 bad usage. FORMAT.md in every bundle
describes the same checks for doing them by hand in any language.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import sys
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

FORMAT_NAME = "steward.evidence-bundle"
FORMAT_VERSIONS = (1,)
GENESIS = "0" * 64
SIGNED = ("manifest.json", "manifest.sig")
REQUIRED = (
    "FORMAT.md",
    "public_key.pem",
    "records.jsonl",
    "personal.jsonl",
    "skeleton.jsonl",
    "checkpoints.json",
)
PERSONAL_STATUSES = ("readable", "erased", "withheld", "unreadable")
MAX_SMALL_FILE = 64 * 1024 * 1024  # manifest, signature, key, checkpoints: read whole
HEX64 = re.compile(r"[0-9a-f]{64}")
READ_CHUNK = 1024 * 1024


class Invalid(Exception):
    """The bundle is not valid: `where` names the file (and line or seq), `problem` says why."""

    def __init__(self, where: str, problem: str):
        self.where = where
        self.problem = problem
        super().__init__(f"{where}: {problem}")


@dataclass
class Report:
    path: str
    key_id: str
    pinned: bool
    manifest: dict
    files: int = 0
    records: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    skeleton_first: int | None = None
    skeleton_last: int | None = None
    skeleton_entries: int = 0
    checkpoints: int = 0
    anchor: dict | None = None
    personal: dict = field(default_factory=dict)

    def lines(self) -> list[str]:
        manifest = self.manifest
        who = manifest.get("exported_by") or {}
        out = [f"VALID: {self.path}"]
        if self.records:
            out.append(
                f"  records: {self.records} selected, seq {self.first_seq}..{self.last_seq}; "
                "every hash recomputed from the record's bytes"
            )
            out.append(
                f"  skeleton: seq {self.skeleton_first}..{self.skeleton_last} "
                f"({self.skeleton_entries} entries), continuous; every selected record is in it"
            )
            out.append(
                f"  checkpoints: {self.checkpoints} signature(s) verified; anchored by the "
                f"checkpoint at seq {self.anchor['seq']} signed {self.anchor['signed_at']}"
            )
        else:
            out.append("  records: none selected")
            out.append(f"  checkpoints: {self.checkpoints} signature(s) verified")
        if self.personal:
            counts = ", ".join(f"{n} {status}" for status, n in sorted(self.personal.items()))
            out.append(f"  personal parts: {counts}")
        out.append(
            f"  files: {self.files} SHA-256 digests match the manifest; manifest signature verified"
        )
        if self.pinned:
            out.append(f"  key: {self.key_id} (the pinned key)")
        else:
            out.append(
                f"  key: {self.key_id} is the key INSIDE the bundle, not pinned: to know it is "
                "Steward's key, compare it with the key id your operator publishes or pass "
                "--expect-key-id / --public-key"
            )
        out.append(
            f"  exported by {who.get('name') or '?'} ({who.get('type') or '?'}) at "
            f"{manifest.get('exported_at')}; filters: {json.dumps(manifest.get('filters') or {})}"
        )
        return out


def key_id_of(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def load_public_key(pem: bytes, where: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise Invalid(where, f"not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise Invalid(where, f"a {type(key).__name__}, not an Ed25519 public key")
    return key


def chain_hash(prev_hash: str, canonical: bytes) -> str:
    return hashlib.sha256(bytes.fromhex(prev_hash) + canonical).hexdigest()


def verify(
    path: str, *, expect_key_id: str | None = None, public_key_pem: bytes | None = None
) -> Report:
    """Check the bundle at `path`: what was checked, or Invalid at the first problem."""
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile, zlib.error) as exc:
        raise Invalid(path, f"cannot open as a zip file ({exc})") from None
    with archive:
        return _verify(archive, path, expect_key_id, public_key_pem)


def _verify(archive, path, expect_key_id, public_key_pem) -> Report:
    names = archive.namelist()
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise Invalid(duplicates[0], "appears more than once in the zip")
    for name in (*SIGNED, "public_key.pem"):
        if name not in names:
            raise Invalid(name, "missing from the bundle")

    # 1. The key and the manifest's signature.
    key = load_public_key(_read_small(archive, "public_key.pem"), "public_key.pem")
    key_id = key_id_of(key)
    pinned = False
    if public_key_pem is not None:
        trusted = load_public_key(public_key_pem, "--public-key")
        if key_id_of(trusted) != key_id:
            raise Invalid(
                "public_key.pem",
                f"the bundle's key {key_id} is not the pinned key {key_id_of(trusted)}",
            )
        pinned = True
    if expect_key_id is not None:
        if expect_key_id.strip().lower() != key_id:
            raise Invalid(
                "public_key.pem",
                f"the bundle's key {key_id} is not the expected key {expect_key_id.strip()}",
            )
        pinned = True
    manifest_bytes = _read_small(archive, "manifest.json")
    signature_text = _read_small(archive, "manifest.sig").decode("ascii", "replace").strip()
    try:
        key.verify(bytes.fromhex(signature_text), manifest_bytes)
    except (InvalidSignature, ValueError):
        whose = "the pinned key" if pinned else "the public key in the bundle"
        raise Invalid(
            "manifest.sig", f"not a valid signature of manifest.json by {whose} {key_id}"
        ) from None
    try:
        manifest = json.loads(manifest_bytes)
    except ValueError as exc:
        raise Invalid("manifest.json", f"not JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise Invalid("manifest.json", "not a JSON object")
    if manifest.get("format") != FORMAT_NAME:
        raise Invalid("manifest.json", f"format is {manifest.get('format')!r}, not {FORMAT_NAME}")
    if manifest.get("format_version") not in FORMAT_VERSIONS:
        raise Invalid(
            "manifest.json",
            f"format_version {manifest.get('format_version')!r} is not one this verifier knows "
            f"({', '.join(map(str, FORMAT_VERSIONS))})",
        )
    if manifest.get("key_id") != key_id:
        raise Invalid(
            "manifest.json", f"names key {manifest.get('key_id')!r} but was signed by {key_id}"
        )
    report = Report(path=path, key_id=key_id, pinned=pinned, manifest=manifest)

    # 2. File digests.
    listed = manifest.get("files")
    if not isinstance(listed, dict):
        raise Invalid("manifest.json", "has no files object")
    for name in REQUIRED:
        if name not in listed:
            raise Invalid("manifest.json", f"does not list {name}")
    for name in names:
        if name not in listed and name not in SIGNED:
            raise Invalid(name, "is in the zip but not in the manifest")
    for name, expected in listed.items():
        if name in SIGNED:
            raise Invalid("manifest.json", f"lists {name}, which cannot carry its own digest")
        if name not in names:
            raise Invalid(name, "listed in the manifest but missing from the zip")
        digest, size = _digest(archive, name)
        if not isinstance(expected, dict) or expected.get("sha256") != digest:
            raise Invalid(name, "SHA-256 does not match the manifest: the file was changed")
        if expected.get("bytes") != size:
            raise Invalid(name, f"is {size} bytes; the manifest says {expected.get('bytes')}")
    report.files = len(listed)

    # 3. Checkpoints.
    checkpoints = _checkpoints(archive, key, key_id, manifest.get("chain", "main"))
    report.checkpoints = sum(len(found) for found in checkpoints.values())

    # 4 and 5. Records and skeleton, walked side by side in seq order (memory stays flat).
    subjects = _walk(archive, checkpoints, report)

    # 6. Manifest counts and personal parts.
    _check_counts(manifest, report)
    _check_personal(archive, manifest, subjects, report)
    return report


def _read_small(archive, name: str) -> bytes:
    info = archive.getinfo(name)
    if info.file_size > MAX_SMALL_FILE:
        raise Invalid(name, f"is {info.file_size} bytes; too large for this file")
    try:
        return archive.read(name)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
        raise Invalid(name, f"cannot be read from the zip ({exc})") from None


def _digest(archive, name: str) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    try:
        with archive.open(name) as handle:
            while chunk := handle.read(READ_CHUNK):
                digest.update(chunk)
                size += len(chunk)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
        raise Invalid(name, f"cannot be read from the zip ({exc})") from None
    return digest.hexdigest(), size


def _lines(archive, name: str) -> Iterator[tuple[int, dict]]:
    with archive.open(name) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="\n")
        try:
            for number, line in enumerate(text, start=1):
                if not line.strip():
                    raise Invalid(f"{name} line {number}", "empty line")
                try:
                    item = json.loads(line)
                except ValueError as exc:
                    raise Invalid(f"{name} line {number}", f"not JSON ({exc})") from None
                if not isinstance(item, dict):
                    raise Invalid(f"{name} line {number}", "not a JSON object")
                yield number, item
        except UnicodeDecodeError as exc:
            raise Invalid(name, f"not UTF-8 ({exc})") from None


def _seq(item: dict, where: str) -> int:
    seq = item.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise Invalid(where, f"seq {seq!r} is not a positive integer")
    return seq


def _hex64(item: dict, key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not HEX64.fullmatch(value):
        raise Invalid(where, f"{key} {value!r} is not 64 lowercase hex digits")
    return value


def _checkpoints(archive, key, key_id: str, chain: str) -> dict[int, list[dict]]:
    """seq -> the verified checkpoints at that seq (payload fields)."""
    try:
        items = json.loads(_read_small(archive, "checkpoints.json"))
    except ValueError as exc:
        raise Invalid("checkpoints.json", f"not JSON ({exc})") from None
    if not isinstance(items, list):
        raise Invalid("checkpoints.json", "not a JSON array")
    found: dict[int, list[dict]] = {}
    for index, item in enumerate(items):
        where = f"checkpoints.json item {index}"
        if not isinstance(item, dict) or not isinstance(item.get("payload"), str):
            raise Invalid(where, "not an object with a payload string")
        if item.get("key_id") != key_id:
            raise Invalid(where, f"signed by key {item.get('key_id')!r}, not the bundle's {key_id}")
        try:
            key.verify(bytes.fromhex(str(item.get("signature", ""))), item["payload"].encode())
        except (InvalidSignature, ValueError):
            raise Invalid(where, "signature does not verify with the bundle's key") from None
        try:
            payload = json.loads(item["payload"])
        except ValueError as exc:
            raise Invalid(where, f"payload is not JSON ({exc})") from None
        if not isinstance(payload, dict) or payload.get("type") != "steward.checkpoint":
            raise Invalid(where, "payload is not a steward.checkpoint")
        if payload.get("chain") != chain:
            raise Invalid(where, f"payload is for chain {payload.get('chain')!r}, not {chain!r}")
        seq = _seq(payload, where)
        where = f"checkpoints.json (checkpoint at seq {seq})"
        _hex64(payload, "hash", where)
        for other in found.get(seq, []):
            if other["hash"] != payload["hash"]:
                raise Invalid(where, "two signed checkpoints give different hashes for this seq")
        found.setdefault(seq, []).append(payload)
    return found


@dataclass
class _Record:
    seq: int
    prev_hash: str
    hash: str
    where: str


def _records(archive, subjects: dict[int, str]) -> Iterator[_Record]:
    """records.jsonl, each record's hash checked against its bytes, in ascending seq."""
    last = 0
    for number, item in _lines(archive, "records.jsonl"):
        where = f"records.jsonl line {number}"
        seq = _seq(item, where)
        where = f"records.jsonl seq {seq}"
        if seq <= last:
            raise Invalid(where, f"comes after seq {last}: records must ascend")
        last = seq
        prev_hash = _hex64(item, "prev_hash", where)
        digest = _hex64(item, "hash", where)
        canonical = item.get("canonical")
        if not isinstance(canonical, str):
            raise Invalid(where, "canonical is not a string")
        data = canonical.encode("utf-8")
        if chain_hash(prev_hash, data) != digest:
            raise Invalid(where, "hash does not match SHA-256(prev_hash || canonical bytes)")
        try:
            document = json.loads(canonical)
        except ValueError as exc:
            raise Invalid(where, f"canonical text is not JSON ({exc})") from None
        if not isinstance(document, dict) or document.get("seq") != seq:
            raise Invalid(where, "the canonical record's own seq differs from the line's seq")
        personal = document.get("personal")
        if isinstance(personal, dict):
            subjects[seq] = str(personal.get("subject", ""))
        yield _Record(seq, prev_hash, digest, where)


def _walk(archive, checkpoints: dict[int, list[dict]], report: Report) -> dict[int, str]:
    subjects: dict[int, str] = {}
    records = _records(archive, subjects)
    pending = next(records, None)
    if pending is not None:
        report.first_seq = pending.seq
    previous = None  # (seq, hash) of the last skeleton entry
    anchors = []
    for number, item in _lines(archive, "skeleton.jsonl"):
        where = f"skeleton.jsonl line {number}"
        seq = _seq(item, where)
        where = f"skeleton.jsonl seq {seq}"
        prev_hash = _hex64(item, "prev_hash", where)
        digest = _hex64(item, "hash", where)
        if previous is None:
            report.skeleton_first = seq
            if seq == 1 and prev_hash != GENESIS:
                raise Invalid(where, "the first record's prev_hash is not the genesis value")
        else:
            if seq != previous[0] + 1:
                raise Invalid(
                    where, f"follows seq {previous[0]}: the skeleton has a gap (a record omitted)"
                )
            if prev_hash != previous[1]:
                raise Invalid(where, f"prev_hash is not the hash of seq {previous[0]}")
        if pending is not None and pending.seq < seq:
            raise Invalid(pending.where, "is not in the skeleton")
        if pending is not None and pending.seq == seq:
            if (pending.hash, pending.prev_hash) != (digest, prev_hash):
                raise Invalid(pending.where, "hash or prev_hash differs from the skeleton's")
            report.records += 1
            report.last_seq = seq
            pending = next(records, None)
        for checkpoint in checkpoints.get(seq, []):
            if checkpoint["hash"] != digest:
                raise Invalid(
                    f"checkpoints.json (checkpoint at seq {seq})",
                    "its signed hash differs from the skeleton's hash at that seq",
                )
            anchors.append(checkpoint)
        previous = (seq, digest)
        report.skeleton_entries += 1
    if pending is not None:
        end = f"ends at seq {previous[0]}" if previous else "is empty"
        raise Invalid(pending.where, f"is outside the skeleton, which {end}")
    report.skeleton_last = previous[0] if previous else None
    if report.records:
        covering = [c for c in anchors if c["seq"] >= report.last_seq]
        if not covering:
            raise Invalid(
                "checkpoints.json",
                f"no signed checkpoint inside the skeleton at or after the last selected record "
                f"(seq {report.last_seq}): nothing signed covers the selection",
            )
        report.anchor = min(covering, key=lambda c: c["seq"])
    return subjects


def _check_counts(manifest: dict, report: Report) -> None:
    selection = manifest.get("selection") or {}
    actual = {"records": report.records, "first_seq": report.first_seq, "last_seq": report.last_seq}
    for key, value in actual.items():
        if selection.get(key) != value:
            raise Invalid(
                "manifest.json",
                f"selection.{key} is {selection.get(key)!r}; the files hold {value!r}",
            )
    skeleton = manifest.get("skeleton") or {}
    actual = {
        "first_seq": report.skeleton_first,
        "last_seq": report.skeleton_last,
        "entries": report.skeleton_entries,
    }
    for key, value in actual.items():
        if skeleton.get(key) != value:
            raise Invalid(
                "manifest.json",
                f"skeleton.{key} is {skeleton.get(key)!r}; the files hold {value!r}",
            )


def _check_personal(archive, manifest: dict, subjects: dict[int, str], report: Report) -> None:
    decrypted = bool((manifest.get("personal") or {}).get("decrypted"))
    seen: set[int] = set()
    counts: dict[str, int] = {}
    for number, item in _lines(archive, "personal.jsonl"):
        where = f"personal.jsonl line {number}"
        seq = _seq(item, where)
        where = f"personal.jsonl seq {seq}"
        if seq not in subjects:
            raise Invalid(where, "is not a selected record with a personal part")
        if seq in seen:
            raise Invalid(where, "appears twice")
        seen.add(seq)
        if item.get("subject") != subjects[seq]:
            raise Invalid(where, "subject differs from the record's personal part")
        status = item.get("status")
        if status not in PERSONAL_STATUSES:
            raise Invalid(where, f"status {status!r} is not one of {', '.join(PERSONAL_STATUSES)}")
        if status == "readable" and (not decrypted or not isinstance(item.get("data"), dict)):
            raise Invalid(where, "readable data in a bundle whose manifest says none is decrypted")
        if status == "erased" and not item.get("erased_at"):
            raise Invalid(where, "erased without saying when")
        counts[status] = counts.get(status, 0) + 1
    missing = sorted(set(subjects) - seen)
    if missing:
        raise Invalid(
            f"personal.jsonl seq {missing[0]}", "the record's personal part is not listed"
        )
    report.personal = counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m governance.verify_bundle",
        description="Verify a Steward evidence bundle (zip) offline. Exit 0 valid, 1 invalid.",
    )
    parser.add_argument("bundle", help="path of the bundle (.zip)")
    pin = parser.add_mutually_exclusive_group()
    pin.add_argument(
        "--expect-key-id",
        metavar="HEX",
        help="SHA-256 (hex) of the raw Ed25519 public key you trust; the bundle's must match",
    )
    pin.add_argument(
        "--public-key",
        metavar="PEM",
        help="a PEM file with the public key you trust; the bundle's must be that key",
    )
    args = parser.parse_args(argv)
    public_key_pem = None
    if args.public_key:
        try:
            with open(args.public_key, "rb") as handle:
                public_key_pem = handle.read()
        except OSError as exc:
            parser.error(f"--public-key: cannot read {args.public_key}: {exc.strerror}")
    if args.expect_key_id is not None and not HEX64.fullmatch(args.expect_key_id.strip().lower()):
        parser.error("--expect-key-id: 64 hex digits (the SHA-256 of the raw public key)")
    try:
        report = verify(
            args.bundle, expect_key_id=args.expect_key_id, public_key_pem=public_key_pem
        )
    except Invalid as problem:
        print(f"INVALID: {args.bundle}: {problem.where}: {problem.problem}")
        return 1
    print("\n".join(report.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
