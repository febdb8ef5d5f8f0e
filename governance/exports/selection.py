"""What an export holds: the exporter's visible records, narrowed by a DecisionFilter, up to the
chain head when the export began.

The ledger only grows, so bounding every query by that `seq` gives a consistent snapshot without
holding a transaction open for the length of a download. Reads walk the records in `seq` order
by keyset (never OFFSET), a chunk at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import QuerySet

from governance import ledger
from governance.actors import Actor, actor_of
from governance.decisions import DecisionFilter, DecisionFilterForm, may_see_everything
from governance.decisions import visible_decisions as visible_to
from governance.models import DecisionRecord, SubjectKey

FORMATS = ("csv", "jsonl", "bundle")
COMMAND_ACTOR = Actor("system", "", "export_decisions command")


class ExportError(ValueError):
    """An export was refused or could not be made; `field` names what was wrong."""

    def __init__(self, field: str, problem: str):
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


@dataclass(frozen=True)
class Selection:
    filter: DecisionFilter
    exporter: object | None  # a user; None for a system export (the command without --as)
    actor: Actor  # whom the `export.made` record names
    sees_everything: bool
    may_see_personal: bool  # may the bundle carry decrypted personal parts?
    upper_seq: int  # the chain head when the export began: nothing later is exported

    def records(self) -> QuerySet[DecisionRecord]:
        base = DecisionRecord.objects.all() if self.exporter is None else visible_to(self.exporter)
        return self.filter.apply(base).filter(seq__lte=self.upper_seq)

    @property
    def visibility(self) -> str:
        if self.sees_everything:
            return "all records"
        return f"records visible to {self.actor.name}: their teams' and their own actions"

    def first_seq(self) -> int | None:
        return self.records().order_by("seq").values_list("seq", flat=True).first()

    def count_up_to(self, limit: int) -> int:
        """The number of selected records, counted no further than `limit` + 1.

        A COUNT over a LIMIT subquery: it stops at limit + 1 matches, so a page can tell small
        exports from large ones without an exact COUNT over unindexed filters.
        """
        return self.records().order_by()[: limit + 1].count()


def select(
    decision_filter: DecisionFilter, *, exporter=None, include_personal: bool = False
) -> Selection:
    """The selection an export by `exporter` (None: the system) of `decision_filter` holds.

    Compliance officers and admins see the whole log and may see personal data; anyone else
    exports what `visible_decisions` shows them and never personal data. A system export sees
    everything and carries personal data only when asked (`include_personal`).
    """
    if exporter is None:
        sees_everything, personal, actor = True, include_personal, COMMAND_ACTOR
    else:
        if not getattr(exporter, "is_authenticated", False) or not exporter.is_active:
            raise ExportError("exporter", "only an active user may export")
        sees_everything = may_see_everything(exporter)
        personal = sees_everything
        actor = actor_of(exporter)
        if include_personal and not personal:
            raise ExportError(
                "include_personal",
                f"{exporter.get_username()} may not see personal data (compliance officers "
                "and admins only)",
            )
    return Selection(
        filter=decision_filter,
        exporter=exporter,
        actor=actor,
        sees_everything=sees_everything,
        may_see_personal=personal,
        upper_seq=ledger.head().seq,
    )


def filter_from_dict(data: dict) -> DecisionFilter:
    """A DecisionFilter from `DecisionFilter.as_dict()` (e.g. an ExportJob's stored filters)."""
    form = DecisionFilterForm(data={key: str(value) for key, value in (data or {}).items()})
    if not form.is_valid():
        field, errors = next(iter(form.errors.items()))
        raise ExportError(field, "; ".join(errors))
    return form.to_filter()


def keyset_chunks(
    queryset: QuerySet, fields: tuple[str, ...], chunk_size: int
) -> Iterator[list[tuple]]:
    """`queryset`'s rows as value tuples in ascending `seq`, `chunk_size` at a time.

    `fields[0]` must be "seq". Each chunk is one query (`seq > last ORDER BY seq LIMIT n`), so
    no cursor or transaction stays open between chunks.
    """
    if fields[0] != "seq":
        raise ValueError("keyset_chunks: the first field must be seq")
    last = 0
    while True:
        rows = list(queryset.filter(seq__gt=last).order_by("seq").values_list(*fields)[:chunk_size])
        if not rows:
            return
        yield rows
        if len(rows) < chunk_size:
            return
        last = rows[-1][0]


@dataclass(frozen=True)
class Erasure:
    subject: str
    erased_at: str  # ISO 8601, UTC, as the ledger writes timestamps
    erased_by: str
    reason: str
    moment: datetime | None = None  # erased_at as a datetime

    def as_dict(self) -> dict:
        return {
            "subject": self.subject,
            "erased_at": self.erased_at,
            "erased_by": self.erased_by,
            "reason": self.reason,
        }


def erasures_of(subject_ids) -> dict[str, Erasure]:
    """The erased subjects among `subject_ids` (one query)."""
    wanted = {s for s in subject_ids if s}
    if not wanted:
        return {}
    rows = SubjectKey.objects.filter(subject_id__in=wanted, erased_at__isnull=False).values_list(
        "subject_id", "erased_at", "erased_by", "erasure_reason"
    )
    return {
        subject: Erasure(subject, iso_utc(erased_at), erased_by, reason, erased_at)
        for subject, erased_at, erased_by, reason in rows
    }


def iso_utc(moment) -> str:
    """The ledger's timestamp form: UTC, microseconds, a Z (as in the canonical records)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
