"""Reading the decision log: keyset pages, one record in readable form, its hash check.

Every queryset handed in here already comes from `visible_decisions(user)`; nothing in this
module widens what a user may see. Pages are keyset pages on `seq` (the primary key, gapless,
newest first): never OFFSET, and never an exact COUNT, which over a million records and
unindexed filters would cost more than the page itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import QuerySet
from django.urls import reverse
from django.utils.http import urlencode

from governance import ledger
from governance.models import DecisionRecord
from governance.personal import SubjectKeyring

PAGE_SIZE = 50

# What a row of the log table needs; the canonical text (about 1 kB a record) stays behind.
LIST_COLUMNS = (
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


# --- Keyset pages -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogPage:
    """One page of records, newest first, and where the pages beside it start."""

    records: list[DecisionRecord]
    has_newer: bool
    has_older: bool
    newer_cursor: int  # ?after=<this> shows the page above
    older_cursor: int  # ?before=<this> shows the page below
    is_first: bool  # the newest page (no cursor given)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def is_whole(self) -> bool:
        """Every matching record is on this page, so its length is the exact count."""
        return not self.has_newer and not self.has_older


def keyset_page(
    records: QuerySet[DecisionRecord],
    *,
    before: int | None = None,
    after: int | None = None,
    size: int = PAGE_SIZE,
) -> LogPage:
    """The page of `records` just below `before`, just above `after`, or the newest one.

    One query for the page (LIMIT size + 1 tells whether more lie in that direction) and, off
    the first page, one LIMIT 1 query for the other direction. Both walk the (filter, seq)
    indexes; the cost does not depend on how deep into the log the page is.
    """
    records = records.only(*LIST_COLUMNS)
    if after is not None:
        rows = list(records.filter(seq__gt=after).order_by("seq")[: size + 1])
        has_newer = len(rows) > size
        rows = rows[:size]
        rows.reverse()
        oldest = rows[-1].seq if rows else after + 1
        has_older = records.filter(seq__lt=oldest).exists()
        newest = rows[0].seq if rows else after
    else:
        below = records.filter(seq__lt=before) if before is not None else records
        rows = list(below.order_by("-seq")[: size + 1])
        has_older = len(rows) > size
        rows = rows[:size]
        newest = rows[0].seq if rows else (before - 1 if before is not None else 0)
        has_newer = before is not None and records.filter(seq__gt=newest).exists()
        oldest = rows[-1].seq if rows else (before if before is not None else 1)
    return LogPage(
        records=rows,
        has_newer=has_newer,
        has_older=has_older,
        newer_cursor=newest,
        older_cursor=oldest,
        is_first=before is None and after is None,
    )


# --- One record, readable ----------------------------------------------------------------------

REF_LABELS = {
    "team": "Team",
    "workflow": "Workflow",
    "workflow_version": "Workflow version",
    "agent": "Agent",
    "agent_version": "Agent version",
    "run": "Run",
    "step": "Step",
}
# References the log can be filtered by (DecisionFilter's names).
FILTERABLE_REFS = ("team", "workflow", "agent", "run")

# What a decision rested on, in the order a reader wants it (DESIGN.md, The decision ledger).
EVIDENCE_KEYS = {
    "inputs": "Inputs",
    "data_considered": "Data considered",
    "rules_applied": "Rules applied",
    "output": "Output",
    "rationale": "Rationale",
}
FACT_KEYS = ("decision", "confidence", "model", "latency_ms", "latency", "error")


@dataclass(frozen=True)
class RefView:
    kind: str
    label: str
    id: str
    name: str
    filter_url: str = ""


@dataclass(frozen=True)
class Entry:
    """A record read from its canonical JSON, the only source a reader should trust."""

    record: DecisionRecord
    document: dict = field(default_factory=dict)
    parse_error: str = ""

    @classmethod
    def of(cls, record: DecisionRecord) -> Entry:
        try:
            document = json.loads(record.canonical)
        except ValueError as exc:
            return cls(record, {}, f"the stored text is not JSON ({exc})")
        if not isinstance(document, dict):
            return cls(record, {}, "the stored text is not a JSON object")
        return cls(record, document)

    @property
    def seq(self):
        return self.document.get("seq")

    @property
    def event(self) -> str:
        return str(self.document.get("event", ""))

    @property
    def recorded_at(self) -> datetime | None:
        value = self.document.get("recorded_at")
        try:
            return datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            return None

    @property
    def recorded_at_text(self) -> str:
        return str(self.document.get("recorded_at", ""))

    @property
    def actor(self) -> dict:
        actor = self.document.get("actor")
        return actor if isinstance(actor, dict) else {}

    @property
    def body(self) -> dict:
        body = self.document.get("body")
        return body if isinstance(body, dict) else {}

    @property
    def refs(self) -> list[RefView]:
        refs = self.document.get("refs")
        if not isinstance(refs, dict):
            return []
        result = []
        known = [name for name in REF_LABELS if name in refs]
        for name in known + sorted(set(refs) - set(REF_LABELS)):
            ref = refs[name] if isinstance(refs[name], dict) else {}
            ref_id, ref_name = str(ref.get("id", "")), str(ref.get("name", ""))
            url = ""
            if name in FILTERABLE_REFS and ref_id:
                url = reverse("decision-list") + "?" + urlencode({name: ref_id})
            label = REF_LABELS.get(name, name.replace("_", " ").capitalize())
            result.append(RefView(name, label, ref_id, ref_name, url))
        return result

    def fact(self, key: str):
        """A top-level value of the record, or the body's when the record has none."""
        value = self.document.get(key)
        return self.body.get(key) if value is None else value

    @property
    def decision(self):
        return self.fact("decision")

    @property
    def confidence(self):
        value = self.fact("confidence")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return value

    @property
    def model(self):
        return self.body.get("model")

    @property
    def latency(self) -> str:
        if "latency_ms" in self.body:
            value = self.body["latency_ms"]
            return f"{value} ms" if isinstance(value, (int, float)) else str(value)
        value = self.body.get("latency")
        return "" if value is None else str(value)

    @property
    def error(self):
        return self.body.get("error")

    @property
    def evidence(self) -> list[tuple[str, str, object]]:
        """(key, label, value) of what the decision rested on, known keys first."""
        return [
            (key, label, self.body[key]) for key, label in EVIDENCE_KEYS.items() if key in self.body
        ]

    @property
    def other_details(self) -> dict:
        """Body values that are neither evidence nor facts (governance events carry these)."""
        skip = set(EVIDENCE_KEYS) | set(FACT_KEYS)
        return {key: value for key, value in self.body.items() if key not in skip}

    @property
    def personal_part(self) -> dict | None:
        part = self.document.get("personal")
        return part if isinstance(part, dict) else None

    @property
    def pretty(self) -> str:
        if self.parse_error:
            return ""
        return json.dumps(self.document, indent=2, ensure_ascii=False)


# --- Personal parts -----------------------------------------------------------------------------

WITHHELD = "Personal data is shown to compliance officers and admins only."


@dataclass(frozen=True)
class PersonalView:
    subject_id: str
    status: str  # readable, withheld, erased or unreadable
    data: dict | None
    explanation: str


def personal_view(part: dict | None, keyring: SubjectKeyring, *, may_see: bool):
    """What a reader may learn of a record's personal part; None when it has none.

    Only compliance officers and admins read the data. Everyone may learn that a part exists
    and, when it was erased, when, by whom and why.
    """
    if part is None:
        return None
    opened = keyring.open(part)
    if opened.status == "readable":
        if not may_see:
            return PersonalView(opened.subject_id, "withheld", None, WITHHELD)
        return PersonalView(opened.subject_id, "readable", opened.data, "")
    return PersonalView(opened.subject_id, opened.status, None, opened.explanation)


# --- Per-record hash check ----------------------------------------------------------------------


@dataclass(frozen=True)
class HashCheck:
    """Does the stored hash match the stored bytes, and does the record link to its neighbours?"""

    seq: int
    stored: str
    recomputed: str
    problem: str  # why the hash could not be recomputed, if it could not
    prev_hash: str
    previous_seq: int | None  # None for the first record
    previous_hash: str | None  # None when the previous record is missing
    next_seq: int
    next_prev_hash: str | None  # None when there is no next record (yet)

    @property
    def hash_matches(self) -> bool:
        return not self.problem and self.recomputed == self.stored

    @property
    def links_to_previous(self) -> bool:
        if self.previous_seq is None:
            return self.prev_hash == ledger.GENESIS_HASH
        return self.previous_hash is not None and self.prev_hash == self.previous_hash

    @property
    def next_links_here(self) -> bool | None:
        return None if self.next_prev_hash is None else self.next_prev_hash == self.stored

    @property
    def ok(self) -> bool:
        return self.hash_matches and self.links_to_previous and self.next_links_here is not False


def recompute_hash(record: DecisionRecord) -> tuple[str, str]:
    """SHA-256(prev_hash || canonical bytes) of the stored values: (hex digest, problem)."""
    try:
        return ledger.chain_hash(record.prev_hash, record.canonical.encode("utf-8")), ""
    except ValueError:
        return "", "the stored prev_hash is not 64 hexadecimal digits"


def hash_check(record: DecisionRecord, neighbours: dict[int, tuple[str, str]] | None = None):
    """Check one record; `neighbours` maps seq -> (hash, prev_hash) and is loaded when omitted.

    The neighbours are read whoever may see them: only their hashes are compared, and a hash
    tells nothing about a record's content.
    """
    if neighbours is None:
        neighbours = {
            seq: (digest, prev)
            for seq, digest, prev in DecisionRecord.objects.filter(
                seq__in=[record.seq - 1, record.seq + 1]
            ).values_list("seq", "hash", "prev_hash")
        }
    recomputed, problem = recompute_hash(record)
    previous_seq = record.seq - 1 if record.seq > 1 else None
    previous = neighbours.get(record.seq - 1)
    following = neighbours.get(record.seq + 1)
    return HashCheck(
        seq=record.seq,
        stored=record.hash,
        recomputed=recomputed,
        problem=problem,
        prev_hash=record.prev_hash,
        previous_seq=previous_seq,
        previous_hash=previous[0] if previous else None,
        next_seq=record.seq + 1,
        next_prev_hash=following[1] if following else None,
    )
