"""A small decision log for export and bundle tests: two teams, three standing users, decisions
in both teams, and records carrying two data subjects' personal parts."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

from django.utils import timezone

from governance import ledger
from governance.actors import Actor, Ref
from governance.decisions import DecisionFilter
from governance.exports.selection import select
from governance.exports.service import Export
from governance.models import DecisionRecord, SubjectKey
from governance.roles import Role
from tests.factories import TeamFactory, UserFactory

JANE = {"name": "Jane Roe", "iban": "DE89370400440532013000"}
JOHN = {"name": "John Doe", "phone": "+44 20 7946 0958"}


@dataclass
class SampleLedger:
    compliance: object
    builder: object  # member of team `risk`
    outsider: object  # member of team `support` only
    risk: object
    support: object
    decisions: list[DecisionRecord]  # agent.decided records, both teams


def make_sample_ledger() -> SampleLedger:
    risk = TeamFactory(name="Risk")
    support = TeamFactory(name="Support")
    compliance = UserFactory(username="carol", roles=[Role.COMPLIANCE])
    builder = UserFactory(username="bob", roles=[Role.BUILDER], teams=[risk])
    outsider = UserFactory(username="olga", roles=[Role.BUILDER], teams=[support])
    agent = Actor("agent", "7", "KYC check v3")
    decisions = []
    for n in range(6):
        team = risk if n % 2 == 0 else support
        personal = {}
        if n == 0:
            personal = {"personal": JANE, "subject": "cust-jane"}
        elif n == 3:
            personal = {"personal": JOHN, "subject": "cust-john"}
        decisions.append(
            ledger.append(
                "agent.decided",
                actor=agent,
                body={
                    "decision": "approve" if n % 3 else "refer",
                    "confidence": round(0.5 + n / 20, 2),
                    "inputs": {"amount": 1000 + n, "note": 'comma, "quote"\nnewline'},
                },
                team=team,
                agent=Ref("7", "KYC check"),
                run=(f"run-{n}", f"run {n}"),
                **personal,
            )
        )
        ledger.append("step.started", actor=agent, body={"n": n}, team=team)
    ledger.append("definition.published", actor=builder, body={"what": "agent 7"})
    return SampleLedger(compliance, builder, outsider, risk, support, decisions)


def erase(subject_id: str, *, by: str = "carol", reason: str = "GDPR request 2026-114") -> None:
    """Erase a subject the way forget_subject does, directly (tests only)."""
    SubjectKey.objects.filter(subject_id=subject_id).update(
        wrapped_key=None, erased_at=timezone.now(), erased_by=by, erasure_reason=reason
    )


def run_export(
    fmt: str,
    *,
    exporter=None,
    decision_filter: DecisionFilter | None = None,
    include_personal: bool = False,
    via: str = "command",
) -> tuple[bytes, object]:
    """The export's bytes and its result (export.made recorded)."""
    selection = select(
        decision_filter or DecisionFilter(), exporter=exporter, include_personal=include_personal
    )
    export = Export(selection, fmt, via=via)
    data = b"".join(export.chunks())
    return data, export.record()


def zip_members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def make_zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()
