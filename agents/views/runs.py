"""Operator pages: the run list, starting a run from a form generated from the workflow's input
fields, the live run page and cancelling a run.

Runs come only from `Run.objects.restrict(user, action)`: a run someone may not see is a 404.
Starting needs `run` on the workflow (the start page is a 404 without it); the engine checks
it again. Writes go through `agents.engine.runs`; its errors are shown next to the fields.
"""

from __future__ import annotations

import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django_htmx.http import push_url

from agents.engine import runs as engine_runs
from agents.fields import FieldSpecError, parse_fields
from agents.forms.operate import CancelForm, RunFilterForm
from agents.forms.typed import TypedFieldsForm
from agents.models import Escalation, Run, StepRun, Workflow
from agents.run_display import (
    duration_label,
    duration_seconds,
    ordered_input,
    run_state,
    timeline,
)
from agents.run_display import trigger_label as describe_trigger
from agents.run_queries import RUN_RELATED as RELATED
from agents.run_queries import keyset_page, visible_runs
from agents.workflow_display import pattern_label
from governance.access import object_or_404
from governance.canonical import CanonicalError
from governance.htmx import render_page_or_partial, wants_partial
from governance.ledger import LedgerError
from governance.models import DecisionRecord
from governance.permissions import allows

PAGE_SIZE = 50
POLL_SECONDS = 2


# --- The run list --------------------------------------------------------------------------------


@require_safe
def run_list(request):
    user = request.user
    workflows = Workflow.objects.restrict(user, "view").only("pk", "name").order_by("name")
    form = RunFilterForm(request.GET or None, workflows=workflows)
    runs = visible_runs(user)
    filter_params = {}
    if form.is_bound and form.is_valid():
        runs = form.apply(runs)
        filter_params = {k: request.GET[k] for k in form.fields if request.GET.get(k)}
    page = keyset_page(runs, request.GET.get("before"), size=PAGE_SIZE, newest_first=True)
    for run in page:
        run.state_label, run.state_tone = run_state(run)
        run.duration_label = duration_label(duration_seconds(run.created_at, run.finished_at))
        run.trigger_text = describe_trigger(run)
    query = urlencode(filter_params)
    base = reverse("run-list")
    context = {
        "form": form,
        "page": page,
        "filtered": bool(filter_params),
        "newest_url": base + (f"?{query}" if query else ""),
        "older_url": base + "?" + urlencode({**filter_params, "before": page.next_cursor})
        if page.next_cursor
        else None,
        "runnable": _runnable(user)[:50],
    }
    response = render_page_or_partial(
        request, "agents/runs/list.html", "agents/runs/_list_results.html", context
    )
    if wants_partial(request):
        params = {**filter_params}
        if request.GET.get("before"):
            params["before"] = request.GET["before"]
        push_url(response, base + (f"?{urlencode(params)}" if params else ""))
    return response


def _runnable(user):
    return (
        Workflow.objects.restrict(user, "run")
        .exclude(published_version=None)
        .select_related("team")
        .order_by("name")
    )


@require_safe
def run_new(request):
    """Pick a workflow to start: the published ones the user may run."""
    workflows = list(_runnable(request.user).select_related("published_version"))
    for workflow in workflows:
        workflow.pattern_label = pattern_label(workflow.published_version.definition.get("pattern"))
        workflow.input_count = len(workflow.published_version.definition.get("input_fields", []))
    return render(request, "agents/runs/new.html", {"workflows": workflows})


# --- Starting a run ------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def run_start(request, pk: int):
    user = request.user
    workflow = object_or_404(user, Workflow, "run", pk=pk)
    version = workflow.published_version
    if version is not None:
        version.workflow = workflow
    form = None
    problem = ""
    if version is None:
        problem = "This workflow has no published version yet: runs need one."
    else:
        try:
            specs = parse_fields(version.definition.get("input_fields", []), "input_fields")
        except FieldSpecError as exc:  # a frozen version with a broken field list
            specs, problem = [], f"The published version's input fields are unusable: {exc}"
        if not problem:
            form = TypedFieldsForm(
                specs, request.POST if request.method == "POST" else None, prefix="input"
            )
    if request.method == "POST" and form is not None and form.is_valid():
        try:
            run = engine_runs.start(version, form.values(), actor=user, trigger=Run.Trigger.MANUAL)
        except engine_runs.StartError as exc:
            form.add_engine_errors(exc.errors)
        except (LedgerError, CanonicalError) as exc:
            form.add_error(None, f"the input cannot be recorded: {exc}")
        except PermissionDenied as exc:
            raise PermissionDenied(str(exc)) from None
        else:
            messages.success(request, f"Run {run.short_id} of {workflow.name} started.")
            return redirect(run)
    context = {
        "workflow": workflow,
        "version": version,
        "form": form,
        "problem": problem,
        "pattern_label": pattern_label((version.definition if version else {}).get("pattern")),
        "description": (version.definition if version else {}).get("description", ""),
    }
    return render(request, "agents/runs/start.html", context)


# --- The run page ------------------------------------------------------------------------------


def run_context(request, run: Run) -> dict:
    steps = list(
        StepRun.objects.filter(run=run)
        .select_related("agent", "agent_version")
        .order_by("created_at", "pk")
    )
    escalations = list(
        Escalation.objects.filter(run=run)
        .select_related("step_run", "resolved_by")
        .order_by("created_at", "pk")
    )
    rows = timeline(run, steps, escalations)
    ledger = escalation_records(run) if escalations else {}
    for row in rows:
        if row.escalation is not None:
            row.ledger = ledger.get(row.escalation.pk, {})
    finished = run.status == Run.Status.FINISHED
    state_label, state_tone = run_state(run)
    open_escalations = [e for e in escalations if e.status == Escalation.Status.OPEN]
    decided = sum(
        1 for s in steps if s.status in (StepRun.Status.SUCCEEDED, StepRun.Status.RESOLVED)
    )
    return {
        "run": run,
        "input": ordered_input(run),
        "workflow": run.workflow,
        "version": run.workflow_version,
        "pattern_label": pattern_label(run.workflow_version.definition.get("pattern")),
        "rows": rows,
        "finished": finished,
        "state_label": state_label,
        "state_tone": state_tone,
        "duration": duration_label(duration_seconds(run.created_at, run.finished_at)),
        "trigger_text": describe_trigger(run),
        "open_escalations": open_escalations,
        "decided_count": decided,
        "step_count": len(steps),
        "poll_seconds": POLL_SECONDS,
        "ledger_url": reverse("decision-list") + "?" + urlencode({"run": str(run.pk)}),
    }


def escalation_records(run: Run) -> dict[int, dict[str, int]]:
    """{escalation id: {"raised": seq, "resolved": seq}}: one query over the run's records."""
    found: dict[int, dict[str, int]] = {}
    records = DecisionRecord.objects.filter(
        run_id=str(run.pk), event__in=("escalation.raised", "escalation.resolved")
    ).values_list("seq", "event", "canonical")
    for seq, event, canonical in records:
        try:
            escalation_id = json.loads(canonical)["body"]["escalation"]
        except (ValueError, KeyError, TypeError):
            continue
        found.setdefault(escalation_id, {})[event.split(".")[1]] = seq
    return found


@require_safe
def run_detail(request, pk):
    user = request.user
    run = get_object_or_404(Run.objects.restrict(user, "view").select_related(*RELATED), pk=pk)
    context = run_context(request, run)
    partial = wants_partial(request)
    context["partial"] = partial
    if not partial:
        context["may_run"] = allows(user, "run", run.workflow)
        context["cancel_form"] = CancelForm(prefix="cancel")
    return render_page_or_partial(
        request, "agents/runs/detail.html", "agents/runs/_live.html", context
    )


@require_POST
def run_cancel(request, pk):
    user = request.user
    run = object_or_404(user, Run, "view", pk=pk)
    form = CancelForm(request.POST, prefix="cancel")
    if not form.is_valid():
        messages.error(request, "The reason is too long (500 characters at most).")
        return redirect(run)
    try:
        engine_runs.cancel(run, actor=user, reason=form.cleaned_data["reason"])
    except PermissionDenied:
        raise PermissionDenied("you may not operate runs of this workflow") from None
    except engine_runs.StartError:
        messages.info(request, f"Run {run.short_id} had already finished; nothing was cancelled.")
    else:
        messages.success(request, f"Run {run.short_id} cancelled.")
    return redirect(run)
