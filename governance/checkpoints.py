"""Checkpoints: Ed25519 signatures over the chain head.

A checkpoint says "at seq N the chain's hash was H", signed with Steward's signing key. Kept in
the database and, when STEWARD_CHECKPOINT_DIR is set, also as a file there: only something
outside the database makes tampering evident to whoever controls the database (a truncated
tail, or a chain recomputed after a change, no longer matches a signed head).
"""

from __future__ import annotations

import json
import os
from datetime import UTC
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from governance import keys, ledger
from governance.canonical import canonical_bytes
from governance.models import Checkpoint

REASONS = ("schedule", "export", "manual", "verification")


def payload_for(seq: int, digest: str, signed_at) -> dict:
    return {
        "type": "steward.checkpoint",
        "v": 1,
        "chain": ledger.CHAIN,
        "seq": seq,
        "hash": digest,
        "signed_at": signed_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }


@transaction.atomic
def make_checkpoint(reason: str, head: ledger.Appended | None = None) -> Checkpoint | None:
    """Sign the current head, or `head` when given (verification signs the head it
    recomputed, not records appended since); None when the ledger is empty."""
    if reason not in REASONS:
        raise ValueError(f"reason: one of {REASONS}")
    head = head or ledger.head()
    if head.seq == 0:
        return None
    now = timezone.now()
    payload = canonical_bytes(payload_for(head.seq, head.hash, now))
    signature = keys.signing_key().sign(payload).hex()
    checkpoint = Checkpoint.objects.create(
        seq=head.seq,
        hash=head.hash,
        signed_at=now,
        reason=reason,
        payload=payload.decode(),
        signature=signature,
        key_id=keys.key_id(),
    )
    directory = settings.STEWARD_CHECKPOINT_DIR
    if directory:
        transaction.on_commit(lambda: write_file(checkpoint, Path(directory)))
    return checkpoint


def checkpoint_if_grown(reason: str = "schedule") -> Checkpoint | None:
    """Sign the head unless the latest checkpoint already covers it (the beat task)."""
    head = ledger.head()
    latest = Checkpoint.objects.order_by("-seq").values_list("seq", flat=True).first()
    if head.seq == 0 or (latest is not None and latest >= head.seq):
        return None
    return make_checkpoint(reason)


def as_document(checkpoint: Checkpoint) -> dict:
    """The checkpoint as written to files and bundles."""
    return {
        "payload": checkpoint.payload,
        "signature": checkpoint.signature,
        "key_id": checkpoint.key_id,
        "reason": checkpoint.reason,
    }


def write_file(checkpoint: Checkpoint, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    name = f"checkpoint-{checkpoint.seq:012d}-{checkpoint.signed_at:%Y%m%dT%H%M%S%f}.json"
    path = directory / name
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(as_document(checkpoint), indent=2, sort_keys=True))
    os.replace(tmp, path)
    return path


def signature_problem(payload: str, signature_hex: str, public_key: Ed25519PublicKey) -> str | None:
    """None when `signature_hex` is a valid signature of `payload`, else why not."""
    try:
        public_key.verify(bytes.fromhex(signature_hex), payload.encode())
    except (InvalidSignature, ValueError):
        return "signature does not verify with Steward's public key"
    return None
