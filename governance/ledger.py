"""The decision ledger: `append` is the only way anything enters it.

Record format (also shipped as FORMAT.md in every evidence bundle):

- The canonical document of a record is the RFC 8785 serialisation of
  ``{"v": 1, "seq", "recorded_at", "event", "actor", "refs", "decision", "confidence",
  "body", "personal"}``; ``refs`` holds only the references given (team, workflow,
  workflow_version, agent, agent_version, run, step), each ``{"id", "name"}``.
- ``hash = SHA-256(prev_hash || canonical bytes)`` over raw bytes, stored as hex; the first
  record's ``prev_hash`` is 32 zero bytes.

Appends happen inside the caller's transaction. The chain head row (`LedgerHead`) is updated
first: its row lock serialises appenders until their transaction ends, so `seq` is gapless and
the chain never forks, and a rollback takes the record and the head back together.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from governance import personal as personal_data
from governance.actors import Actor, Ref, actor_of, ref_of
from governance.canonical import CanonicalError, canonical_bytes, check_json_value
from governance.models import DecisionRecord

FORMAT_VERSION = 1
CHAIN = "main"
GENESIS_HASH = "0" * 64
REF_NAMES = ("team", "workflow", "workflow_version", "agent", "agent_version", "run", "step")
EVENT_MAX = 64


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
    document, columns = _prepare(event, actor, body, personal, subject, refs)
    with transaction.atomic():
        seq, prev_hash = _advance_head()
        document["seq"] = seq
        document["recorded_at"] = _iso(columns["recorded_at"])
        canonical = canonical_bytes(document)
        if len(canonical) > settings.STEWARD_LEDGER_MAX_RECORD_BYTES:
            raise LedgerError(
                "body",
                f"record is {len(canonical)} bytes; the ledger accepts at most "
                f"{settings.STEWARD_LEDGER_MAX_RECORD_BYTES} (store large data elsewhere "
                "and record its digest)",
            )
        digest = chain_hash(prev_hash, canonical)
        record = DecisionRecord(
            seq=seq,
            canonical=canonical.decode("utf-8"),
            prev_hash=prev_hash,
            hash=digest,
            **columns,
        )
        _insert(record)
    return record


def _prepare(event, actor, body, personal, subject, refs) -> tuple[dict, dict]:
    """Validate everything before taking the chain lock, so the lock is held briefly."""
    if not isinstance(event, str) or not event or len(event) > EVENT_MAX:
        raise LedgerError("event", f"a non-empty name of at most {EVENT_MAX} characters")
    unknown = set(refs) - set(REF_NAMES)
    if unknown:
        raise LedgerError("refs", f"unknown reference(s) {sorted(unknown)}; use {REF_NAMES}")
    if not isinstance(body, dict):
        raise LedgerError("body", "must be a JSON object")
    try:
        check_json_value(body, "body")
    except CanonicalError as exc:
        raise LedgerError(exc.path, exc.problem) from None
    who: Actor = actor_of(actor)
    references: dict[str, Ref] = {}
    for name in REF_NAMES:
        ref = ref_of(refs.get(name))
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

    def ref_column(name: str, attr: str) -> str:
        ref = references.get(name)
        return getattr(ref, attr)[:200] if ref else ""

    columns = {
        "recorded_at": timezone.now(),
        "event": event,
        "actor_type": who.type,
        "actor_id": who.id[:64],
        "actor_name": who.name[:200],
        "team_id": ref_column("team", "id")[:64],
        "team_name": ref_column("team", "name"),
        "workflow_id": ref_column("workflow", "id")[:64],
        "workflow_name": ref_column("workflow", "name"),
        "agent_id": ref_column("agent", "id")[:64],
        "agent_name": ref_column("agent", "name"),
        "run_id": ref_column("run", "id")[:64],
        "decision": decision,
        "confidence": confidence,
        "subject_id": sealed["subject"] if sealed else "",
    }
    return document, columns


def _iso(moment) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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


def _insert(record: DecisionRecord) -> None:
    values = [getattr(record, field.attname) for field in DecisionRecord._meta.concrete_fields]
    values = [
        field.get_db_prep_save(value, connection)
        for field, value in zip(DecisionRecord._meta.concrete_fields, values, strict=True)
    ]
    placeholders = ", ".join(["%s"] * len(values))
    columns = ", ".join(connection.ops.quote_name(c) for c in _COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO governance_decisionrecord ({columns}) VALUES ({placeholders})",  # noqa: S608
            values,
        )
        cursor.execute(
            "UPDATE governance_ledgerhead SET hash = %s WHERE chain = %s", [record.hash, CHAIN]
        )


def head() -> Appended:
    """The last record's seq and hash as stored (0 and the genesis hash when empty)."""
    last = DecisionRecord.objects.order_by("-seq").values_list("seq", "hash").first()
    return Appended(*last) if last else Appended(0, GENESIS_HASH)
