"""The querysets of the operator pages and the API: runs, escalations and the inbox, always
through `restrict(user, action)`, joined so a list costs the same queries for any length,
and paged by keyset (created_at, id), never by OFFSET."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.utils import timezone

from agents.models import Escalation, Run

RUN_RELATED = ("workflow", "workflow_version", "team", "started_by")
ESCALATION_RELATED = (
    "run",
    "run__workflow",
    "run__workflow_version",
    "team",
    "step_run",
    "step_run__agent",
    "step_run__agent_version",
    "resolved_by",
)


def visible_runs(user) -> QuerySet[Run]:
    return Run.objects.restrict(user, "view").select_related(*RUN_RELATED)


def resolvable(user) -> QuerySet[Escalation]:
    """Open escalations `user` may resolve: the inbox."""
    return Escalation.objects.restrict(user, "resolve").filter(status=Escalation.Status.OPEN)


def inbox_count(user) -> int:
    """One query: the number on the Inbox badge."""
    if not getattr(user, "is_authenticated", False):
        return 0
    return resolvable(user).count()


def visible_escalations(user) -> QuerySet[Escalation]:
    """Escalations `user` may see: those of runs they may view, and those they may resolve
    (a human task's team may answer it without seeing the rest of the workflow)."""
    viewable = Escalation.objects.restrict(user, "view").values("pk")
    answerable = Escalation.objects.restrict(user, "resolve").values("pk")
    return Escalation.objects.filter(Q(pk__in=viewable) | Q(pk__in=answerable))


# --- Keyset pages ----------------------------------------------------------------------------


@dataclass
class KeysetPage:
    items: list
    next_cursor: str | None
    is_first: bool

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)


def cursor_of(obj) -> str:
    return f"{obj.created_at.isoformat()}|{obj.pk}"


def parse_cursor(text: str | None) -> tuple[datetime, str] | None:
    """(created_at, pk) of a cursor, or None for the first page (and for a malformed one)."""
    if not text or "|" not in text:
        return None
    stamp, _, pk = text.partition("|")
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    if timezone.is_naive(when):
        return None
    return when, pk


def keyset_page(queryset: QuerySet, cursor: str | None, *, size: int, newest_first: bool):
    """A page of `queryset` ordered by (created_at, id), after `cursor`; one query."""
    position = parse_cursor(cursor)
    if position is not None:
        try:
            position = (position[0], queryset.model._meta.pk.to_python(position[1]))
        except ValidationError:
            position = None
    if position is not None:
        when, pk = position
        if newest_first:
            queryset = queryset.filter(Q(created_at__lt=when) | Q(created_at=when, pk__lt=pk))
        else:
            queryset = queryset.filter(Q(created_at__gt=when) | Q(created_at=when, pk__gt=pk))
    order = ("-created_at", "-pk") if newest_first else ("created_at", "pk")
    rows = list(queryset.order_by(*order)[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    return KeysetPage(
        items=rows,
        next_cursor=cursor_of(rows[-1]) if more and rows else None,
        is_first=position is None,
    )


# --- Home panels -------------------------------------------------------------------------------


def escalation_summary(user, count: int = 3) -> dict:
    """For home panels: how many escalations wait for `user`, and the longest waiting."""
    waiting = resolvable(user)
    return {
        "open_count": waiting.count(),
        "oldest": list(
            waiting.select_related("run", "run__workflow", "step_run").order_by("created_at", "pk")[
                :count
            ]
        ),
    }


def operations_summary(user, count: int = 5) -> dict:
    """For the operator's home panel: recent runs, how many are in flight, and the inbox."""
    from django.db.models import Count

    runs = Run.objects.restrict(user, "view")
    by_status = dict(
        runs.exclude(status=Run.Status.FINISHED)
        .values_list("status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return {
        "recent_runs": list(runs.select_related(*RUN_RELATED).order_by("-created_at")[:count]),
        "running_count": by_status.get(Run.Status.RUNNING, 0) + by_status.get(Run.Status.QUEUED, 0),
        "waiting_count": by_status.get(Run.Status.WAITING, 0),
        **escalation_summary(user),
    }
