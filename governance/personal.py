"""Personal data in the ledger: sealed per data subject, erasable by destroying the key.

A record's personal part is AES-256-GCM ciphertext under a key that belongs to one data
subject. The subject keys live in `SubjectKey`, wrapped with Steward's encryption key, never in
the ledger table. The record's hash covers the ciphertext, so destroying the key (erasure)
makes the part unreadable everywhere while the chain still verifies.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from datetime import datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.db import IntegrityError, transaction

from governance import keys
from governance.canonical import CanonicalError, canonical_bytes, check_json_value
from governance.models import SubjectKey

ALGORITHM = "AES-256-GCM"
MAX_SUBJECT_ID = 200


class PersonalDataError(ValueError):
    pass


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _aad(subject_id: str) -> bytes:
    return f"steward-personal:{subject_id}".encode()


def check_subject_id(subject_id) -> str:
    if not isinstance(subject_id, str) or not subject_id.strip():
        raise PersonalDataError("subject: a data subject id is required with personal data")
    if len(subject_id) > MAX_SUBJECT_ID:
        raise PersonalDataError(f"subject: at most {MAX_SUBJECT_ID} characters")
    return subject_id.strip()


def _subject_key(subject_id: str) -> bytes:
    """The subject's raw AES key, created on first use."""
    row = SubjectKey.objects.filter(subject_id=subject_id).first()
    if row is None:
        try:
            with transaction.atomic():
                row = SubjectKey.objects.create(
                    subject_id=subject_id,
                    wrapped_key=keys.fernet().encrypt(AESGCM.generate_key(bit_length=256)),
                )
        except IntegrityError:  # another process created it first
            row = SubjectKey.objects.get(subject_id=subject_id)
    if row.is_erased:
        raise PersonalDataError(
            f"subject: {subject_id!r} was erased on {row.erased_at:%Y-%m-%d}; no personal "
            "data may be recorded for it again"
        )
    return keys.fernet().decrypt(bytes(row.wrapped_key))


def seal(subject_id: str, data: dict) -> dict:
    """Encrypt `data` for `subject_id`; returns the part stored in the canonical record."""
    subject_id = check_subject_id(subject_id)
    if not isinstance(data, dict):
        raise PersonalDataError("personal: must be an object of named values")
    try:
        check_json_value(data, "personal")
    except CanonicalError as exc:
        raise PersonalDataError(str(exc)) from None
    nonce = os.urandom(12)
    ciphertext = AESGCM(_subject_key(subject_id)).encrypt(
        nonce, canonical_bytes(data), _aad(subject_id)
    )
    return {
        "subject": subject_id,
        "alg": ALGORITHM,
        "nonce": _b64(nonce),
        "ciphertext": _b64(ciphertext),
    }


@dataclass(frozen=True)
class OpenedPart:
    subject_id: str
    status: str  # "readable", "erased" or "unreadable"
    data: dict | None = None
    erased_at: datetime | None = None
    erased_by: str = ""
    reason: str = ""

    @property
    def explanation(self) -> str:
        if self.status == "erased":
            return (
                f"Erased on {self.erased_at:%Y-%m-%d %H:%M} UTC by {self.erased_by or 'an admin'}: "
                f"{self.reason or 'no reason given'}"
            )
        if self.status == "unreadable":
            return self.reason
        return ""


class SubjectKeyring:
    """Opens personal parts; loads each subject's key once (one query per page of records)."""

    def __init__(self):
        self._rows: dict[str, SubjectKey | None] = {}

    def preload(self, subject_ids) -> None:
        wanted = {s for s in subject_ids if s and s not in self._rows}
        if not wanted:
            return
        for row in SubjectKey.objects.filter(subject_id__in=wanted):
            self._rows[row.subject_id] = row
        for subject_id in wanted:
            self._rows.setdefault(subject_id, None)

    def open(self, part: dict) -> OpenedPart:
        subject_id = part.get("subject", "")
        self.preload([subject_id])
        row = self._rows.get(subject_id)
        if row is None:
            return OpenedPart(subject_id, "unreadable", reason="no key is known for this subject")
        if row.is_erased:
            return OpenedPart(
                subject_id,
                "erased",
                erased_at=row.erased_at,
                erased_by=row.erased_by,
                reason=row.erasure_reason,
            )
        try:
            raw = keys.fernet().decrypt(bytes(row.wrapped_key))
            plain = AESGCM(raw).decrypt(
                base64.b64decode(part["nonce"]),
                base64.b64decode(part["ciphertext"]),
                _aad(subject_id),
            )
        except (InvalidTag, KeyError, ValueError) as exc:
            return OpenedPart(
                subject_id, "unreadable", reason=f"cannot decrypt: {type(exc).__name__}"
            )
        return OpenedPart(subject_id, "readable", data=json.loads(plain))


class ErasureError(ValueError):
    pass


def forget_subject(subject_id: str, *, actor, reason: str):
    """Destroy the subject's key (right to erasure) and record the erasure in the ledger.

    Every personal part sealed for the subject becomes unreadable wherever it appears; the
    records themselves, and so the chain, stay as they were. New personal data for the subject
    is refused from now on. Returns the `subject.erased` ledger record.
    """
    from django.utils import timezone

    from governance import ledger
    from governance.actors import actor_of
    from governance.models import DecisionRecord

    try:
        subject_id = check_subject_id(subject_id)
    except PersonalDataError as exc:
        raise ErasureError(str(exc)) from None
    reason = (reason or "").strip()
    if not reason:
        raise ErasureError("reason: say why (e.g. the erasure request's reference)")
    if len(reason) > 1000:
        raise ErasureError("reason: at most 1000 characters")
    who = actor_of(actor)
    with transaction.atomic():
        row, _ = SubjectKey.objects.select_for_update().get_or_create(
            subject_id=subject_id, defaults={"wrapped_key": None}
        )
        if row.is_erased:
            raise ErasureError(
                f"subject: {subject_id!r} was already erased on {row.erased_at:%Y-%m-%d %H:%M} UTC"
            )
        row.wrapped_key = None
        row.erased_at = timezone.now()
        row.erased_by = who.name or who.type
        row.erasure_reason = reason
        row.save(update_fields=["wrapped_key", "erased_at", "erased_by", "erasure_reason"])
        affected = DecisionRecord.objects.filter(subject_id=subject_id).count()
        return ledger.append(
            "subject.erased",
            actor=actor,
            body={"subject": subject_id, "reason": reason, "records_affected": affected},
        )
