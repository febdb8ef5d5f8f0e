"""Escalations: a step a person must decide, with everything needed to decide it.

Raised inside the transaction that records the failure (run row locked). Resolving one is an
`escalation.resolved` record and the run continues from that step:

- approve: take an option (or, for a human task, the person's answer) as the step's result;
- supply: give the missing data; the step runs again with it;
- retry: run the step again as it was;
- reject: end the run with the outcome "rejected".
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from agents.engine import dispatch
from agents.engine.records import append_step
from agents.engine.taxonomy import AwaitingPerson, DataMissing, LowConfidence, StepFailure
from agents.fields import parse_fields, validate_values
from agents.models import Escalation, Run, StepRun
from governance.models import Team

ACTIONS = ("approve", "supply", "retry", "reject")


class ResolutionError(ValueError):
    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


def _attempts(step_run: StepRun) -> list[dict]:
    rows = StepRun.objects.filter(
        run_id=step_run.run_id, step_key=step_run.step_key, activation=step_run.activation
    ).order_by("attempt")
    return [
        {
            "attempt": r.attempt,
            "status": r.status,
            "error": r.error,
            "started_at": r.started_at.isoformat() if r.started_at else None,
        }
        for r in rows
    ]


def _options(failure) -> list[dict]:
    if isinstance(failure, LowConfidence):
        return failure.options
    rules = getattr(failure, "rules", None)
    if rules:
        return [
            {
                "rule": r.get("row"),
                "decision": r.get("decision"),
                "output": r.get("outputs") or r.get("output") or {},
                "condition": r.get("condition"),
            }
            for r in rules
        ]
    return []


def raise_for(
    step_run: StepRun, failure, *, attempts=None, options=None, keep_status: bool = False
) -> Escalation:
    """Open an escalation for a failed (or waiting) step and put the run on hold."""
    run = step_run.run
    if Escalation.objects.filter(step_run=step_run).exists():
        # Only a person's resolution brings an escalated attempt here again, and an attempt
        # holds one escalation: refuse the decision (the resolution rolls back) instead.
        raise ResolutionError(
            "action", f"the run cannot go on with this decision: {failure.message}"[:500]
        )
    if isinstance(failure, AwaitingPerson):
        kind, team_id = failure.kind, int(failure.team_id) if failure.team_id else run.team_id
        status = StepRun.Status.WAITING
    else:
        kind, team_id = failure.kind, run.team_id
        status = StepRun.Status.ESCALATED
    context = {
        **failure.context(),
        "step": step_run.step_key,
        "activation": step_run.activation,
        "agent": {
            "id": step_run.agent_id,
            "name": step_run.agent.name,
            "version": step_run.agent_version.number,
        },
        "inputs": step_run.input,
        "tried": attempts if attempts is not None else _attempts(step_run),
        "options": options if options is not None else _options(failure),
    }
    if not keep_status:
        step_run.status = status
        step_run.error = failure.context() if isinstance(failure, StepFailure) else None
        step_run.finished_at = timezone.now()
        step_run.save(update_fields=["status", "error", "finished_at"])
    if not Team.objects.filter(pk=team_id).exists():
        team_id = run.team_id
    escalation = Escalation.objects.create(
        run=run,
        step_run=step_run,
        kind=kind,
        team_id=team_id,
        summary=failure.message[:300],
        context=context,
    )
    run.status = Run.Status.WAITING
    run.save(update_fields=["status"])
    append_step(
        "escalation.raised",
        step_run,
        {"escalation": escalation.pk, "type": kind, "context": _public(context)},
    )
    return escalation


def _public(context: dict) -> dict:
    """The escalation context without the inputs (already in the step's own records)."""
    return {k: v for k, v in context.items() if k != "inputs"}


def raise_limit(step_run: StepRun, kind: str, message: str, details: dict) -> Escalation:
    failure = StepFailure(message)
    failure.kind = kind
    escalation = raise_for(
        step_run,
        failure,
        attempts=[],
        keep_status=True,
        options=[
            {"action": "approve", "label": "Accept the latest result"},
            {"action": "retry", "label": "One more round"},
        ],
    )
    escalation.context = {**escalation.context, **details}
    escalation.save(update_fields=["context"])
    return escalation


@transaction.atomic
def resolve(
    escalation: Escalation,
    *,
    actor,
    action: str,
    option: int | None = None,
    data: dict | None = None,
    note: str = "",
) -> Escalation:
    """Resolve and let the run continue. `actor` must be allowed to (Escalation.restrict)."""
    if not Escalation.objects.restrict(actor, "resolve").filter(pk=escalation.pk).exists():
        raise PermissionDenied("you may not resolve this escalation")
    run = (
        Run.objects.select_for_update(of=("self",))
        .select_related("workflow", "workflow_version", "team")
        .get(pk=escalation.run_id)
    )
    escalation = Escalation.objects.select_for_update().get(pk=escalation.pk)
    if escalation.status != Escalation.Status.OPEN:
        raise ResolutionError("escalation", f"already {escalation.get_status_display().lower()}")
    if action not in ACTIONS:
        raise ResolutionError("action", f"one of {', '.join(ACTIONS)}")
    if len(note or "") > 2000:
        raise ResolutionError("note", "at most 2000 characters")
    step_run = StepRun.objects.select_related("agent", "agent_version").get(
        pk=escalation.step_run_id
    )
    step_run.run = run
    resolution = {"action": action, "note": (note or "").strip()}
    follow_up: list[StepRun] = []
    from agents.engine import advance, runs

    if action == "reject":
        _close(escalation, actor, resolution)
        _record(step_run, escalation, actor, resolution)
        runs.finish(
            run,
            Run.Outcome.REJECTED,
            actor=actor,
            reason=f"rejected at step {step_run.step_key}: {resolution['note']}"[:500],
        )
        return escalation
    if action in ("retry", "supply"):
        new_input = dict(step_run.input or {})
        if action == "supply":
            if not isinstance(data, dict) or not data:
                raise ResolutionError("data", "give the missing values")
            new_input.update(data)
            fields = parse_fields(
                step_run.agent_version.definition.get("input_fields", []), "input_fields"
            )
            try:
                new_input = validate_values(fields, new_input, what="data")
            except DataMissing as exc:
                raise ResolutionError("data", exc.message) from None
            resolution["data"] = sorted(data)
        if escalation.kind in ("round_limit", "turn_limit") and action == "retry":
            follow_up = _one_more_round(run, step_run)
        else:
            follow_up = [_next_attempt(step_run, new_input)]
            # This attempt is over; the new one carries the step on.
            step_run.status = StepRun.Status.RETRYING
            step_run.save(update_fields=["status"])
        _close(escalation, actor, resolution)
        _record(step_run, escalation, actor, resolution)
        run.status = Run.Status.RUNNING
        run.save(update_fields=["status"])
        dispatch.send_after_commit([s.pk for s in follow_up])
        return escalation
    # approve
    result = _approved_result(escalation, step_run, option, data)
    resolution.update(
        {"option": option, "output": result["output"], "decision": result["decision"]}
    )
    _close(escalation, actor, resolution)
    _record(step_run, escalation, actor, resolution)
    if escalation.kind in ("round_limit", "turn_limit"):
        runs.finish(run, Run.Outcome.COMPLETED, actor=actor, output=result["output"])
        return escalation
    if escalation.kind == "out_of_scope" and result.get("route"):
        run.context = {**(run.context or {}), "route": result["route"]}
        run.save(update_fields=["context"])
    elif escalation.kind == "out_of_scope" and result.get("specialists"):
        selection_field = run.workflow_version.definition["config"]["selection_field"]
        step_run.output = {**(step_run.output or {}), selection_field: [result["specialists"]]}
        step_run.save(update_fields=["output"])
    else:
        step_run.status = StepRun.Status.RESOLVED
        step_run.output = result["output"]
        step_run.decision = str(result["decision"] or "")[:200]
        step_run.confidence = result.get("confidence")
        step_run.rationale = f"decided by {actor.get_username()}: {resolution['note']}"[:2000]
        step_run.finished_at = timezone.now()
        step_run.save()
    run.status = Run.Status.RUNNING
    run.save(update_fields=["status"])
    follow_up = advance.after_step(run, step_run)
    dispatch.send_after_commit([s.pk for s in follow_up if s.status == StepRun.Status.QUEUED])
    return escalation


def _approved_result(escalation: Escalation, step_run: StepRun, option, data) -> dict:
    options = escalation.context.get("options") or []
    if escalation.kind == "human_task" or (data and not options):
        fields = parse_fields(
            step_run.agent_version.definition.get("output_fields", []), "output_fields"
        )
        try:
            output = validate_values(fields, data or {}, what="answer")
        except DataMissing as exc:
            raise ResolutionError("data", exc.message) from None
        decision = (data or {}).get("decision") or next(iter(output.values()), "")
        return {"output": output, "decision": decision, "confidence": 1.0}
    if escalation.kind in ("round_limit", "turn_limit"):
        run = step_run.run
        latest = (run.context or {}).get("draft") or step_run.output or {}
        if escalation.kind == "turn_limit":
            latest = step_run.output or {}
        return {"output": latest, "decision": "accepted", "confidence": None}
    if option is None or not isinstance(option, int) or not 0 <= option < len(options):
        raise ResolutionError("option", f"choose one of the {len(options)} option(s)")
    chosen = options[option]
    return {
        "output": chosen.get("output") or {},
        "decision": chosen.get("decision"),
        "confidence": chosen.get("confidence"),
        "route": chosen.get("route"),
        "specialists": chosen.get("specialist"),
    }


def _next_attempt(step_run: StepRun, new_input: dict) -> StepRun:
    last = StepRun.objects.filter(
        run_id=step_run.run_id, step_key=step_run.step_key, activation=step_run.activation
    ).aggregate(n=Max("attempt"))["n"]
    return StepRun.objects.create(
        run_id=step_run.run_id,
        step_key=step_run.step_key,
        activation=step_run.activation,
        attempt=last + 1,
        agent=step_run.agent,
        agent_version=step_run.agent_version,
        input=new_input,
        **dispatch.marked_as_sent(),
    )


def _one_more_round(run: Run, step_run: StepRun) -> list[StepRun]:
    from agents.engine import advance

    definition = run.workflow_version.definition
    first = next(s for s in definition["steps"] if s["role"] in ("maker", "participant"))
    if definition["pattern"] == "conversation":
        participants = [s for s in definition["steps"] if s["role"] == "participant"]
        first = participants[(step_run.activation + 1) % len(participants)]
        activation = step_run.activation + 1
    else:
        activation = step_run.activation + 1
    return [advance.create_step_run(run, first, activation=activation)]


def _close(escalation: Escalation, actor, resolution: dict) -> None:
    escalation.status = Escalation.Status.RESOLVED
    escalation.resolved_by = actor
    escalation.resolved_at = timezone.now()
    escalation.resolution = resolution
    escalation.save(update_fields=["status", "resolved_by", "resolved_at", "resolution"])


def _record(step_run: StepRun, escalation: Escalation, actor, resolution: dict) -> None:
    append_step(
        "escalation.resolved",
        step_run,
        {"escalation": escalation.pk, "type": escalation.kind, "resolution": resolution},
        actor=actor,
        personal_inputs=False,
    )
