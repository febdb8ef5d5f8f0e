"""FORMAT.md, shipped in every evidence bundle: how to verify one by hand, in any language."""

FORMAT_MD = """\
# Steward evidence bundle, format 1

This zip holds records of Steward's decision log, the evidence that they are exactly what the
log holds, and how to check that yourself without Steward. `python -m
governance.verify_bundle BUNDLE.zip` (Python standard library plus `cryptography`) does every
check below; any other language can do the same.

## Files

- `records.jsonl`: the selected records, one JSON object per line, ascending `seq`:
  `{"seq", "prev_hash", "hash", "canonical"}`; `canonical` is a JSON string holding the
  record's canonical text exactly as it was hashed.
- `skeleton.jsonl`: `{"seq", "prev_hash", "hash"}` for EVERY record from the first selected
  one to the anchoring checkpoint (below), selected or not, ascending and without gaps: a
  filtered export still proves that nothing between its records is missing.
- `checkpoints.json`: a JSON array of signed checkpoints:
  `{"payload", "signature", "key_id", "reason"}`.
- `personal.jsonl`: one line per selected record that has a personal part:
  `{"seq", "subject", "status", ...}` (below).
- `manifest.json`: what was exported, by whom, when, with which filters, the counts and
  ranges, and the SHA-256 and size of every other file except `manifest.sig`.
- `manifest.sig`: the Ed25519 signature of the exact bytes of `manifest.json`, hex (a
  trailing newline may follow).
- `public_key.pem`: the Ed25519 public key (SubjectPublicKeyInfo PEM) that signed the
  manifest and the checkpoints.
- `FORMAT.md`: this description.

No other file may appear in the zip.

## Records: canonical form and hash rule

A record's canonical text is the RFC 8785 (JSON Canonicalization Scheme) serialisation of
`{"v": 1, "seq", "recorded_at", "event", "actor", "refs", "decision", "confidence", "body",
"personal"}`, encoded as UTF-8. It is stored once, when the record is appended, and never
computed again: to verify, hash the bytes you are given, do not re-serialise.

    hash = SHA-256( bytes.fromhex(prev_hash) || canonical_bytes )      (lowercase hex)

`prev_hash` is the previous record's `hash`; the first record of the log (`seq` 1) has the
genesis `prev_hash`, 32 zero bytes (64 "0" characters). `seq` is gapless from 1, and the
canonical text's own `seq` equals the line's `seq`.

For every line of `records.jsonl`: decode `canonical` from the JSON string, encode it as UTF-8,
check that SHA-256(prev_hash bytes + those bytes) equals `hash`, and that the skeleton has the
same `hash` and `prev_hash` at that `seq`.

## Skeleton continuity

`skeleton.jsonl` must start at or before the first selected record and end at or after the
last. Its `seq` values are consecutive integers and each entry's `prev_hash` equals the
previous entry's `hash`; if it starts at `seq` 1 the first `prev_hash` is the genesis value.
Because every selected record's hash is in the skeleton and the skeleton links up to a signed
checkpoint, the signature covers every selected record and proves that no record between them
was removed, inserted or changed. The skeleton shows the hashes, not the contents, of records
the export did not select.

## Checkpoints

A checkpoint's `payload` is a string holding canonical JSON:

    {"chain":"main","hash":H,"seq":N,"signed_at":"...Z","type":"steward.checkpoint","v":1}

It says "at `seq` N the chain's hash was H". `signature` is the hex Ed25519 signature of the
UTF-8 bytes of `payload`; `key_id` is the hex SHA-256 of the raw 32-byte public key. Check each
signature with `public_key.pem`. When N falls inside the skeleton, H must equal the skeleton's
`hash` at N. At least one checkpoint (the anchor) must fall inside the skeleton at or after
the last selected record: the exporter signs a fresh checkpoint before building the bundle, so
one always exists. Checkpoints beyond the skeleton are included for their signatures only.

## Manifest and signature

`manifest.json` is UTF-8 JSON. Its `files` object maps each file name (every file above except
`manifest.json` and `manifest.sig`) to `{"sha256", "bytes"}`; each file's SHA-256 and size must
match. Verify `manifest.sig` (hex) as an Ed25519 signature of the exact bytes of
`manifest.json` with `public_key.pem`. The manifest's `selection` (`records`, `first_seq`,
`last_seq`) and `skeleton` (`first_seq`, `last_seq`, `entries`) must agree with the files.

`public_key.pem` comes with the bundle, so a valid signature proves only that whoever holds
that key made the bundle. To know it is Steward's key, compare its `key_id` (in the manifest)
with the key id your Steward operator publishes, or pass it to the verifier:
`--expect-key-id HEX` or `--public-key steward-public.pem`.

## Personal data

Personal parts are stored encrypted (AES-256-GCM, a key per data subject) inside the record's
canonical text, and the hash covers the ciphertext. `personal.jsonl` gives, per selected record
with a personal part, `status`:

- `readable`: `data` holds the decrypted part (only when the exporter may see personal data:
  compliance officers and admins);
- `erased`: the subject's key was destroyed (right to erasure); `erased_at`, `erased_by` and
  `reason` say when, by whom and why. The ciphertext stays and the chain still verifies;
- `withheld`: the exporter may not see personal data;
- `unreadable`: the part could not be decrypted; `reason` says why.

The decrypted data is vouched for by the manifest's signature, not by the chain (the chain
covers the ciphertext).
"""
