"""The escalation inbox: open escalations the user may resolve, by type, age and workflow, each
with its context laid out and the ways to resolve it; and one page per escalation.

Rows come from `Escalation.objects.restrict(user, "resolve")` (the inbox) or from what the
user may view or resolve (the escalation page): anything else is a 404. Resolving goes through
`agents.engine.escalations.resolve`; in the inbox it is an htmx post that swaps the card out
(or back in, with the errors next to the fields) and updates the messages and the badge.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_POST, require_safe
from django_htmx.http import push_url

from agents.forms.operate import InboxFilterForm, Resolution
from agents.models import Escalation, Run, Workflow
from agents.run_display import (
    KIND_TONES,
    Context,
    context_of,
    duration_label,
    duration_seconds,
    headline,
    kind_label,
)
from agents.run_queries import (
    ESCALATION_RELATED,
    inbox_count,
    keyset_page,
    resolvable,
    visible_escalations,
)
from governance.htmx import render_page_or_partial, wants_partial

PAGE_SIZE = 25


@dataclass
class Card:
    escalation: Escalation
    context: Context
    resolution: Resolution | None
    run_visible: bool
    kind_label: str
    tone: str
    age: str
    title: str

    @property
    def dom_id(self) -> str:
        return f"escalation-{self.escalation.pk}"


def cards_for(user, escalations, *, resolvable_ids=None, posted=None) -> list[Card]:
    """Cards for escalations already joined (ESCALATION_RELATED): one query in all, for which
    of their runs the user may open."""
    run_ids = {e.run_id for e in escalations}
    visible = set(
        Run.objects.restrict(user, "view").filter(pk__in=run_ids).values_list("pk", flat=True)
    )
    now = timezone.now()
    cards = []
    for escalation in escalations:
        may_resolve = escalation.status == Escalation.Status.OPEN and (
            resolvable_ids is None or escalation.pk in resolvable_ids
        )
        resolution = None
        if may_resolve:
            resolution = (
                posted
                if posted is not None and posted.escalation.pk == escalation.pk
                else Resolution(escalation)
            )
        cards.append(
            Card(
                escalation=escalation,
                context=context_of(escalation),
                resolution=resolution,
                run_visible=escalation.run_id in visible,
                kind_label=kind_label(escalation.kind),
                tone=KIND_TONES.get(escalation.kind, "warn"),
                age=duration_label(duration_seconds(escalation.created_at, now)),
                title=headline(escalation),
            )
        )
    return cards


@require_safe
def inbox_badge(request):
    """The sidebar's count of open escalations the user may resolve; htmx loads it after the
    page, so no page waits for its query."""
    context = {"count": inbox_count(request.user), "count_id": "nav-inbox-count"}
    return render(request, "components/nav_count.html", context)


@require_safe
def inbox(request):
    user = request.user
    base = resolvable(user)
    workflows = Workflow.objects.filter(pk__in=base.values("run__workflow")).only("pk", "name")
    form = InboxFilterForm(request.GET or None, workflows=workflows.order_by("name"))
    items = base
    filter_params = {}
    if form.is_bound and form.is_valid():
        items = form.apply(items, timezone.now())
        filter_params = {k: request.GET[k] for k in form.fields if request.GET.get(k)}
    page = keyset_page(
        items.select_related(*ESCALATION_RELATED),
        request.GET.get("after"),
        size=PAGE_SIZE,
        newest_first=False,
    )
    path = reverse("escalation-list")
    query = urlencode(filter_params)
    context = {
        "form": form,
        "page": page,
        "cards": cards_for(user, page.items),
        "filtered": bool(filter_params),
        "total": base.count(),
        "first_url": path + (f"?{query}" if query else ""),
        "next_url": path + "?" + urlencode({**filter_params, "after": page.next_cursor})
        if page.next_cursor
        else None,
    }
    response = render_page_or_partial(
        request, "agents/escalations/inbox.html", "agents/escalations/_inbox_results.html", context
    )
    if wants_partial(request):
        params = {**filter_params}
        if request.GET.get("after"):
            params["after"] = request.GET["after"]
        push_url(response, path + (f"?{urlencode(params)}" if params else ""))
    return response


def _escalation(user, pk):
    return get_object_or_404(visible_escalations(user).select_related(*ESCALATION_RELATED), pk=pk)


@require_safe
def escalation_detail(request, pk: int):
    user = request.user
    escalation = _escalation(user, pk)
    may = set(resolvable(user).filter(pk=escalation.pk).values_list("pk", flat=True))
    card = cards_for(user, [escalation], resolvable_ids=may)[0]
    return render(request, "agents/escalations/detail.html", {"card": card})


SUCCESS = {
    "approve": "approved",
    "supply": "data supplied; the step runs again",
    "retry": "the step runs again",
    "reject": "rejected; the run has ended",
}


@require_POST
def escalation_resolve(request, pk: int):
    user = request.user
    escalation = _escalation(user, pk)
    if not resolvable(user).filter(pk=escalation.pk).exists() and (
        escalation.status == Escalation.Status.OPEN
    ):
        raise PermissionDenied("you may not resolve this escalation")
    partial = wants_partial(request)
    if escalation.status != Escalation.Status.OPEN:
        messages.info(
            request, f"This escalation is already {escalation.get_status_display().lower()}."
        )
        return _gone(request, escalation) if partial else redirect(escalation)
    resolution = Resolution(escalation, request.POST)
    if resolution.submit(user):
        chosen = next(f for f in resolution.forms if f.name == resolution.posted)
        outcome = SUCCESS[chosen.action]
        if escalation.kind == "human_task" and chosen.action == "approve":
            outcome = "answered; the run goes on"
        text = f"{kind_label(escalation.kind)} in run {escalation.run.short_id}: {outcome}."
        messages.success(request, text)
        if partial:
            return _gone(request, escalation, note=text)
        return redirect(_after(request, escalation))
    escalation.refresh_from_db(fields=["status", "resolved_by", "resolved_at"])
    if escalation.status != Escalation.Status.OPEN:  # someone else was quicker
        messages.info(
            request, f"This escalation is already {escalation.get_status_display().lower()}."
        )
        return _gone(request, escalation) if partial else redirect(escalation)
    card = cards_for(user, [escalation], posted=resolution)[0]
    if partial:
        return render(request, "agents/escalations/_card.html", {"card": card, "inbox": True})
    return render(request, "agents/escalations/detail.html", {"card": card})


def _gone(request, escalation, note: str = ""):
    """The card gives way to a one-line note where it stood (the page's messages may be out
    of sight); the messages and the inbox badge are swapped out of band."""
    run_visible = Run.objects.restrict(request.user, "view").filter(pk=escalation.run_id).exists()
    return render(
        request,
        "agents/escalations/_resolved.html",
        {
            "escalation": escalation,
            "note": note,
            "run_visible": run_visible,
            "inbox_count": inbox_count(request.user),
        },
    )


def _after(request, escalation) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    if Run.objects.restrict(request.user, "view").filter(pk=escalation.run_id).exists():
        return escalation.run.get_absolute_url()
    return reverse("escalation-list")
