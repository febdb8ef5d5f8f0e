"""The decision log browser: a filtered, keyset-paged list and one page per record.

Records come only from `visible_decisions(user)`: compliance officers and admins see the whole
log, everyone else their teams' records and their own actions. A record someone may not see
is a 404, the same answer as a record that does not exist.
"""

from __future__ import annotations

from django import forms
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_safe
from django_htmx.http import push_url

from governance import ledger
from governance.decisions import DecisionFilterForm, may_see_everything, visible_decisions
from governance.htmx import render_page_or_partial, wants_partial
from governance.log_queries import (
    Entry,
    hash_check,
    keyset_page,
    personal_view,
)
from governance.models import Team
from governance.personal import SubjectKeyring
from governance.verify import last_verification

# Suggestions for the event filter (any name is accepted: the ledger's events grow over time).
KNOWN_EVENTS = (
    "agent.decided",
    "definition.published",
    "definition.submitted",
    "escalation.raised",
    "escalation.resolved",
    "export.made",
    "grant.changed",
    "handoff",
    "ledger.verified",
    "run.finished",
    "run.started",
    "step.failed",
    "step.retried",
    "step.started",
    "subject.erased",
    "tool.called",
    "user.signed_in",
)
DATETIME_LOCAL = "%Y-%m-%dT%H:%M:%S"
# Filters tucked under "More filters" unless one of them is set.
MORE_FILTERS = ("workflow", "agent", "run", "actor", "confidence_min", "confidence_max")


class LogFilterForm(DecisionFilterForm):
    """The shared decision filters, dressed for the log page: a team picker, event
    suggestions, and date-time inputs the browser fills in its own local-time widget."""

    def __init__(self, *args, teams=(), **kwargs):
        super().__init__(*args, **kwargs)
        zone = timezone.get_current_timezone_name()
        for name in ("since", "until"):
            self.fields[name].widget = forms.DateTimeInput(
                attrs={"type": "datetime-local", "step": "1"}, format=DATETIME_LOCAL
            )
            self.fields[name].help_text = zone
        choices = [("", "All teams"), *((str(team.pk), team.name) for team in teams)]
        current = self.data.get("team", "")
        if current and current not in {value for value, _ in choices}:
            # A team since deleted (the log keeps its id), or one typed into the URL.
            choices.append((current, f"Team id {current}"))
        self.fields["team"].widget = forms.Select(choices=choices)
        self.fields["team"].label = "Team"
        self.fields["event"].widget.attrs.update(list="known-events", placeholder="Any event")
        self.fields["decision"].widget.attrs["placeholder"] = "Any decision"
        self.fields["actor"].widget.attrs["placeholder"] = "Username or id"
        self.fields["actor"].help_text = ""
        for name in ("workflow", "agent", "run"):
            self.fields[name].widget.attrs["placeholder"] = "Id"
        for name in ("confidence_min", "confidence_max"):
            self.fields[name].widget.attrs.update(step="0.01", placeholder="0 to 1")


class CursorForm(forms.Form):
    """Where a keyset page starts: below `before` or above `after` (both are seq values)."""

    before = forms.IntegerField(required=False, min_value=1)
    after = forms.IntegerField(required=False, min_value=0)

    def clean(self):
        data = super().clean()
        if data.get("before") is not None and data.get("after") is not None:
            self.add_error("after", "give either before or after, not both")
        return data


def _query(data, names) -> dict[str, str]:
    """The non-empty parameters among `names`, in a stable order (shareable URLs)."""
    return {name: data[name] for name in names if data.get(name, "").strip()}


@require_safe
def decision_list(request):
    user = request.user
    everything = may_see_everything(user)
    teams = Team.objects.all() if everything else Team.objects.of_user(user)
    form = LogFilterForm(request.GET, teams=teams)
    cursor = CursorForm(request.GET)
    filter_params = _query(request.GET, form.fields)
    cursor_params = _query(request.GET, cursor.fields)

    page = decision_filter = None
    if form.is_valid() and cursor.is_valid():
        decision_filter = form.to_filter()
        records = decision_filter.apply(visible_decisions(user))
        page = keyset_page(
            records, before=cursor.cleaned_data["before"], after=cursor.cleaned_data["after"]
        )
    errors = _errors_by_field(form, cursor)
    base = request.path
    filter_query = urlencode(filter_params)
    context = {
        "form": form,
        "page": page,
        "errors": errors,
        "filtered": bool(filter_params),
        "everything": everything,
        "filter_query": filter_query,
        "newest_url": base + (f"?{filter_query}" if filter_query else ""),
        "known_events": KNOWN_EVENTS,
        "more_filters_open": any(name in filter_params for name in MORE_FILTERS),
        "log_total": _log_total(page, everything, filter_params),
    }
    if page is not None:
        context["newer_url"] = base + "?" + urlencode({**filter_params, "after": page.newer_cursor})
        context["older_url"] = (
            base + "?" + urlencode({**filter_params, "before": page.older_cursor})
        )
    if not wants_partial(request):
        context["verification"] = last_verification()
        context["head"] = ledger.head() if everything else None
    response = render_page_or_partial(
        request, "governance/decision_list.html", "governance/decision_list_results.html", context
    )
    if wants_partial(request):
        query = urlencode({**filter_params, **cursor_params})
        push_url(response, base + (f"?{query}" if query else ""))
    return response


def _errors_by_field(*forms_) -> list[tuple[str, str]]:
    """(field label, message) for every error, so the summary names what to fix."""
    result = []
    for form in forms_:
        for name, messages in form.errors.items():
            label = form[name].label if name in form.fields else "Filters"
            result.extend((label, message) for message in messages)
    return result


def _log_total(page, everything: bool, filter_params: dict) -> int | None:
    """The exact size of the log when it is free: seq is gapless, so on the newest unfiltered
    page of someone who sees everything, the top record's seq is the count."""
    if page is None or not everything or filter_params or not page.is_first or not page.records:
        return None
    return page.records[0].seq


@require_safe
def decision_detail(request, seq: int):
    user = request.user
    record = get_object_or_404(visible_decisions(user), seq=seq)
    entry = Entry.of(record)
    everything = may_see_everything(user)
    check = hash_check(record)
    neighbours = [s for s in (check.previous_seq, check.next_seq) if s]
    if everything:
        visible_neighbours = set(neighbours)
    else:
        visible_neighbours = set(
            visible_decisions(user).filter(seq__in=neighbours).values_list("seq", flat=True)
        )
    context = {
        "record": record,
        "entry": entry,
        "check": check,
        "personal": personal_view(entry.personal_part, SubjectKeyring(), may_see=everything),
        "previous_visible": check.previous_seq in visible_neighbours,
        "next_visible": check.next_prev_hash is not None and check.next_seq in visible_neighbours,
        "byte_count": len(record.canonical.encode("utf-8")),
        "has_outcome": entry.decision is not None or entry.confidence is not None,
    }
    return render(request, "governance/decision_detail.html", context)


def log_summary(user, count: int = 5) -> dict:
    """For home panels: the chain head, the newest records `user` may see, the last
    verification. Three small queries, none of them a COUNT (seq is gapless: the head's seq
    is the number of records)."""
    return {
        "head": ledger.head(),
        "latest": keyset_page(visible_decisions(user), size=count).records,
        "verification": last_verification(),
    }
