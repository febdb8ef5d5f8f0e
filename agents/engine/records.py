"""Ledger records of the engine, with the references every record of a run carries."""

from __future__ import annotations

from agents.fields import parse_fields, split_personal
from agents.models import Run, StepRun
from governance import ledger
from governance.actors import Actor, Ref


def run_refs(run: Run) -> dict:
    version = run.workflow_version
    return {
        "team": run.team,
        "workflow": Ref(str(run.workflow_id), run.workflow.name),
        "workflow_version": Ref(str(version.pk), f"{run.workflow.name} v{version.number}"),
        "run": Ref(str(run.pk), f"run {run.short_id}"),
    }


def step_refs(step_run: StepRun) -> dict:
    agent, version = step_run.agent, step_run.agent_version
    return {
        **run_refs(step_run.run),
        "agent": Ref(str(agent.pk), agent.name),
        "agent_version": Ref(str(version.pk), f"{agent.name} v{version.number}"),
        "step": Ref(
            str(step_run.pk),
            f"{step_run.step_key}#{step_run.activation}.{step_run.attempt}",
        ),
    }


def agent_actor(step_run: StepRun) -> Actor:
    return Actor(
        "agent", str(step_run.agent_id), f"{step_run.agent.name} v{step_run.agent_version.number}"
    )


def personal_split(definition: dict, values: dict) -> tuple[dict, dict | None, str | None]:
    """(ordinary values, personal part or None, data subject or None) for a ledger body."""
    fields = parse_fields(definition.get("input_fields", []), "input_fields")
    ordinary, personal = split_personal(fields, values)
    subject_field = definition.get("subject_field")
    subject = values.get(subject_field) if subject_field else None
    if not personal:
        return ordinary, None, None
    if subject in (None, ""):
        # No data subject to seal it for: keep the values out of the ledger, say so.
        return {**ordinary, "personal_withheld": sorted(personal)}, None, None
    return ordinary, personal, str(subject)


def append_step(event: str, step_run: StepRun, body: dict, *, actor=None, personal_inputs=True):
    """Append a step's record; the agent's personal input fields go into the personal part."""
    inputs = step_run.input or {}
    ordinary, personal, subject = personal_split(step_run.agent_version.definition, inputs)
    if personal_inputs:
        body = {"inputs": ordinary, **body}
    return ledger.append(
        event,
        actor=actor if actor is not None else agent_actor(step_run),
        body=body,
        personal={"inputs": personal} if personal else None,
        subject=subject if personal else None,
        **step_refs(step_run),
    )


def append_run(event: str, run: Run, body: dict, *, actor=None):
    return ledger.append(event, actor=actor, body=body, **run_refs(run))
