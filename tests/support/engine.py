"""Building published agents and workflows for engine tests, and driving runs synchronously.

`drain` executes queued step attempts in this process, the way a worker would (same
`execute_step`), so unit tests see the engine's logic without a broker; integration tests run
the same workflows on real worker processes.
"""

from __future__ import annotations

from agents import versions
from agents.engine.execute import execute_step
from agents.models import Run, StepRun


def publish(kind, obj_or_none, definition, *, author, approver, name=None, team=None):
    obj = obj_or_none or versions.create(
        kind, actor=author, name=name, team=team, definition=definition
    )
    if obj_or_none is not None:
        versions.save_draft(obj, definition, actor=author)
    versions.submit(obj, actor=author)
    draft = versions.pending_of(obj)
    versions.approve(obj, actor=approver, number=draft.number)
    obj.refresh_from_db()
    return obj


def rules_agent(
    name,
    team,
    people,
    *,
    inputs,
    outputs,
    rows,
    policy="first",
    default=None,
    threshold=0.0,
    retry_limit=1,
):
    definition = {
        "kind": "rules",
        "description": name,
        "input_fields": [{"name": n, "type": t, "required": r} for n, t, r in inputs],
        "output_fields": [{"name": n, "type": t, "required": True} for n, t in outputs],
        "confidence_threshold": threshold,
        "retry_limit": retry_limit,
        "config": {
            "hit_policy": policy,
            "rules": rows,
            **({"default": default} if default else {}),
        },
    }
    return publish(
        versions.AGENT,
        None,
        definition,
        author=people["builder"],
        approver=people["approver"],
        name=name,
        team=team,
    )


def human_agent(name, team, people, *, inputs, outputs):
    definition = {
        "kind": "human",
        "description": name,
        "input_fields": [{"name": n, "type": "text", "required": True} for n in inputs],
        "output_fields": [{"name": n, "type": t, "required": True} for n, t in outputs],
        "config": {"team_id": team.pk, "instructions": f"Answer for {name}."},
    }
    return publish(
        versions.AGENT,
        None,
        definition,
        author=people["builder"],
        approver=people["approver"],
        name=name,
        team=team,
    )


def workflow(name, team, people, *, pattern, steps, inputs, config=None, triggers=None):
    definition = {
        "description": name,
        "input_fields": [{"name": n, "type": t, "required": True} for n, t in inputs],
        "pattern": pattern,
        "steps": steps,
        "config": config or {},
        "triggers": triggers or [],
    }
    return publish(
        versions.WORKFLOW,
        None,
        definition,
        author=people["builder"],
        approver=people["approver"],
        name=name,
        team=team,
    )


def drain(run: Run, *, limit: int = 200) -> Run:
    """Execute queued attempts (ignoring retry backoff) until none is left."""
    for _ in range(limit):
        pending = (
            StepRun.objects.filter(run=run, status=StepRun.Status.QUEUED)
            .order_by("created_at", "pk")
            .first()
        )
        if pending is None:
            break
        if pending.not_before is not None:
            StepRun.objects.filter(pk=pending.pk).update(not_before=None)
        execute_step(pending.pk)
    run.refresh_from_db()
    return run
