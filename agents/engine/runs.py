"""Starting, finishing and cancelling runs, and starting the runs other runs trigger."""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.utils import timezone

from agents.engine import dispatch, rows
from agents.engine.records import append_run, personal_split, run_refs
from agents.engine.taxonomy import DataMissing
from agents.fields import parse_fields, validate_values
from agents.models import Escalation, Run, StepRun, VersionStatus, Workflow, WorkflowVersion
from governance import ledger
from governance.permissions import allows

log = logging.getLogger(__name__)


class StartError(ValueError):
    """The run was not started; `errors` maps input fields (or "version") to problems."""

    def __init__(self, message: str, errors: dict):
        self.errors = errors
        super().__init__(message)


def start(
    version: WorkflowVersion,
    data,
    *,
    actor,
    trigger: str,
    trigger_detail: dict | None = None,
    check_actor=None,
    savepoint: bool = True,
) -> Run:
    """Validate the input, record `run.started` and queue the first steps (sent after commit).

    `actor` is who the ledger names (a person, or None for the system). `check_actor` is the
    person whose `run` permission is checked: the actor for console and API starts, the
    trigger's owner for webhooks, schedules and workflow triggers.

    The run comes back with `first_steps`, the step runs created with it (agent and version
    loaded), so a caller answering with them need not read them back.

    `savepoint=False`: the caller's transaction is rolled back whole when start fails (a
    webhook), so no savepoint is needed around it (two round trips fewer)."""
    # The ledger's chain head is locked for the end of the transaction only.
    with transaction.atomic(savepoint=savepoint), ledger.deferred():
        return _start(version, data, actor, trigger, trigger_detail, check_actor)


def _start(version, data, actor, trigger, trigger_detail, check_actor) -> Run:
    workflow = version.workflow
    if version.status != VersionStatus.PUBLISHED:
        raise StartError("only published versions run", {"version": "not published"})
    who = check_actor if check_actor is not None else actor
    if who is None or not allows(who, "run", workflow):
        raise PermissionDenied(f"{who} may not run {workflow}")
    definition = version.definition
    fields = parse_fields(definition.get("input_fields", []), "input_fields")
    try:
        cleaned = validate_values(fields, data, what="input")
    except DataMissing as exc:
        errors = {name: "this field is required" for name in exc.missing}
        errors.update(exc.invalid)
        raise StartError(str(exc), errors) from None
    run = rows.create(
        Run,
        workflow=workflow,
        workflow_version=version,
        team=workflow.team,  # loaded with the workflow by most callers; the records name it
        trigger=trigger,
        trigger_detail=trigger_detail or {},
        started_by=actor if getattr(actor, "is_authenticated", False) else None,
        input=cleaned,
        status=Run.Status.RUNNING,
    )
    run.workflow = workflow
    run.workflow_version = version
    ordinary, personal, subject = personal_split(definition, cleaned)
    ledger.append(
        "run.started",
        actor=actor,
        body={
            "input": ordinary,
            "trigger": trigger,
            "trigger_detail": trigger_detail or {},
            "version": version.number,
            "pattern": definition["pattern"],
        },
        personal={"input": personal} if personal else None,
        subject=subject,
        **run_refs(run),
    )
    from agents.engine import advance

    created = advance.start_steps(run)
    run.first_steps = created
    dispatch.send_after_commit([s.pk for s in created if s.status == StepRun.Status.QUEUED])
    return run


def finish(
    run: Run,
    outcome: str,
    *,
    output=None,
    actor=None,
    reason: str = "",
    nothing_open: bool = False,
) -> None:
    """Close the run (inside the caller's transaction, run row locked) and record it.

    Queued steps are cancelled and open escalations closed, unless the caller has just seen
    there are none (`nothing_open`: the run's steps read in this transaction)."""
    run.status = Run.Status.FINISHED
    run.outcome = outcome
    run.output = output
    run.finished_at = timezone.now()
    rows.update(run, ["status", "outcome", "output", "finished_at"])
    if not nothing_open:
        StepRun.objects.filter(run=run, status=StepRun.Status.QUEUED).update(
            status=StepRun.Status.CANCELLED, finished_at=run.finished_at
        )
        Escalation.objects.filter(run=run, status=Escalation.Status.OPEN).update(
            status=Escalation.Status.CANCELLED, resolved_at=run.finished_at
        )
    body = {
        "outcome": outcome,
        "output": output,
        "reason": reason,
        "duration_ms": round((run.finished_at - run.created_at).total_seconds() * 1000, 1),
    }
    append_run("run.finished", run, body, actor=actor)
    transaction.on_commit(lambda: start_followers(run.pk, workflow_id=run.workflow_id))


@transaction.atomic
def cancel(run: Run, *, actor, reason: str = "") -> Run:
    run = (
        Run.objects.select_for_update(of=("self",))
        .select_related("workflow", "workflow_version")
        .get(pk=run.pk)
    )
    if not allows(actor, "run", run.workflow):
        raise PermissionDenied(f"you may not operate runs of {run.workflow}")
    if run.status == Run.Status.FINISHED:
        raise StartError("the run has already finished", {"run": "finished"})
    finish(run, Run.Outcome.CANCELLED, actor=actor, reason=(reason or "cancelled")[:500])
    return run


def trigger_owner(version: WorkflowVersion, trigger: dict):
    """Whose `run` permission a trigger's runs are checked against, each time it fires."""
    username = trigger.get("run_as")
    if username:
        return rows.active_user(username)
    return version.submitted_by


def start_followers(run_id, *, workflow_id: int | None = None) -> list[Run]:
    """Start workflows whose published version waits for this run's outcome.

    The trigger's owner (who submitted that version) must hold `run` on the workflow it starts;
    a refusal is recorded, never silent."""
    if workflow_id is None:
        workflow_id = Run.objects.values_list("workflow_id", flat=True).get(pk=run_id)
    candidates = Workflow.objects.exclude(published_version=None).select_related(
        "published_version", "published_version__submitted_by"
    )
    if connection.vendor == "postgresql":
        # Every finished run asks this: let jsonb containment pick the few workflows that
        # follow this one instead of loading every published definition (bench/engine.py).
        candidates = candidates.filter(
            published_version__definition__triggers__contains=[
                {"type": "workflow", "workflow_id": workflow_id}
            ]
        )
    candidates = list(candidates)
    if not candidates:
        return []
    run = Run.objects.select_related("workflow").get(pk=run_id)
    started = []
    for workflow in candidates:
        version = workflow.published_version
        for trigger in version.definition.get("triggers", []):
            if trigger.get("type") != "workflow" or trigger.get("workflow_id") != run.workflow_id:
                continue
            if trigger.get("outcome") not in ("any", run.outcome):
                continue
            detail = {"run": str(run.pk), "workflow": run.workflow.name, "outcome": run.outcome}
            data = run.output if isinstance(run.output, dict) else {}
            data = {**run.input, **data}
            try:
                started.append(
                    start(
                        version,
                        data,
                        actor=None,
                        trigger=Run.Trigger.WORKFLOW,
                        trigger_detail=detail,
                        check_actor=trigger_owner(version, trigger),
                    )
                )
            except (StartError, PermissionDenied) as exc:
                log.warning("trigger of %s by run %s refused: %s", workflow, run.pk, exc)
                with transaction.atomic():
                    ledger.append(
                        "trigger.refused",
                        actor=None,
                        body={"trigger": "workflow", "detail": detail, "reason": str(exc)[:500]},
                        team=workflow.team,
                        workflow=workflow,
                    )
    return started
