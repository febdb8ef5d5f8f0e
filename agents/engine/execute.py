"""Executing one step attempt: claim it, run the agent outside any transaction, record.

1. Claim (short transaction, row locked): only a queued attempt, or a running one whose lease
   expired, is taken; the claimant gets a fresh lease token. A duplicate delivery finds the row
   claimed or finished and does nothing.
2. Execute the agent with no transaction open, renewing the lease from a side thread, so a
   slow model call holds no database lock and a dead worker's lease soon expires.
3. Record (transaction, run and step rows locked): only if the lease is still ours. The
   decision, its ledger records and the next ready steps are written together; a worker
   killed before this commit left nothing behind, and the attempt simply runs again.

Agents of the kinds in INLINE_KINDS do no I/O: the three happen in one transaction. Every
transaction locks the run before the step, and writes its ledger records last
(`ledger.deferred`), so the chain head is held for two statements and the commit.
"""

from __future__ import annotations

import logging
import random
import threading
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.utils import timezone

from agents.engine import dispatch, escalations, rows
from agents.engine.records import append_step
from agents.engine.specs import agent_spec
from agents.engine.taxonomy import AwaitingPerson, StepFailure, SystemUnavailable
from agents.kinds.base import run as run_agent
from agents.models import Run, StepRun
from governance import ledger

log = logging.getLogger(__name__)

BACKOFF_BASE_SECONDS = 2.0
BACKOFF_MAX_SECONDS = 300.0


def lease_seconds() -> int:
    return settings.STEWARD_STEP_LEASE_SECONDS


def backoff_seconds(attempt: int, rng=random) -> float:
    """Exponential backoff with full jitter: uniform in [base/2, base * 2**(attempt-1)]."""
    ceiling = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))
    return rng.uniform(ceiling / 2, ceiling)


# Kinds whose executors do no I/O and finish in milliseconds (a decision table; a human step,
# which only asks for a person): they run inside the transaction that claims and records them,
# one transaction per step instead of two, with no lease to keep (bench/engine.py). A worker
# killed meanwhile leaves nothing behind, as with the others.
INLINE_KINDS = frozenset({"rules", "human"})


def _lock(step_run_id: int) -> tuple[Run, StepRun] | None:
    """Lock the step's run, then the step: the order every writer of a run's rows takes
    (cancelling and resolving lock the run before touching its steps), so they never deadlock.
    """
    return rows.lock_step(step_run_id)


_CLAIM_FIELDS = ["status", "lease_token", "lease_expires_at", "started_at"]


def _claim_locked(run: Run, step_run: StepRun, *, persist: bool = True) -> uuid.UUID | None:
    """Take the attempt (rows locked by the caller): a fresh lease token, or None when it is
    not ours to run. `persist=False`: the caller records the attempt in the same transaction
    and saves the claim with it (one UPDATE of the step instead of two)."""
    now = timezone.now()
    if step_run.status == StepRun.Status.RUNNING:
        if step_run.lease_expires_at and step_run.lease_expires_at > now:
            return None  # another worker holds it
    elif step_run.status != StepRun.Status.QUEUED:
        return None  # already decided, escalated or cancelled
    if step_run.not_before and step_run.not_before > now:
        return None  # a retry whose backoff has not ended; the sweeper sends it
    if run.status == Run.Status.FINISHED:
        step_run.status = StepRun.Status.CANCELLED
        step_run.finished_at = now
        step_run.save(update_fields=["status", "finished_at"])
        return None
    token = uuid.uuid4()
    first_claim = step_run.started_at is None
    step_run.status = StepRun.Status.RUNNING
    step_run.lease_token = token
    step_run.lease_expires_at = now + timedelta(seconds=lease_seconds())
    step_run.started_at = step_run.started_at or now
    if persist:
        rows.update(step_run, _CLAIM_FIELDS)
    if first_claim:
        append_step("step.started", step_run, {"attempt": step_run.attempt})
    return token


class LeaseKeeper(threading.Thread):
    """Renews the lease while the agent runs; stops when told or when the lease is lost."""

    def __init__(self, step_run_id: int, token: uuid.UUID):
        super().__init__(daemon=True, name=f"lease-{step_run_id}")
        self.step_run_id = step_run_id
        self.token = token
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(lease_seconds() / 3):
                renewed = StepRun.objects.filter(
                    pk=self.step_run_id, lease_token=self.token, status=StepRun.Status.RUNNING
                ).update(lease_expires_at=timezone.now() + timedelta(seconds=lease_seconds()))
                if not renewed:
                    return
        except Exception:  # a failed renewal only shortens the lease; the sweeper covers it
            log.exception("lease renewal of step %s failed", self.step_run_id)
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=5)


def execute_step(step_run_id: int) -> str:
    """Run one attempt end to end; returns what happened (for logs and tests).

    Ledger records are written when each transaction's work is done (`ledger.deferred`), so
    the chain head is locked for the last two statements, not for the whole step."""
    with transaction.atomic(), ledger.deferred():
        locked = _lock(step_run_id)
        if locked is None:
            return "skipped"
        run, step_run = locked
        inline = step_run.agent.kind in INLINE_KINDS
        token = _claim_locked(run, step_run, persist=not inline)
        if token is None:
            return "skipped"
        # Read here, in the claim's transaction: a database failure then undoes the claim and
        # the attempt is sent again, where inside the executor it would pass for the agent's
        # own failure and escalate (seen in `make chaos`, connections dropped mid-step).
        spec = _spec(step_run)
        if inline:
            outcome = _execute(step_run, spec)
            if isinstance(outcome, (StepFailure, AwaitingPerson)):
                rows.update(step_run, _CLAIM_FIELDS)  # a decision's save includes it
            return _record_locked(run, step_run, token, outcome)
    keeper = LeaseKeeper(step_run_id, token)
    keeper.start()
    try:
        outcome = _execute(step_run, spec)
    finally:
        keeper.stop()
    # A long agent call may have outlived the connection (server restart, idle timeout). A
    # worker is never inside a transaction here; tests that drive steps in-process are.
    if not connection.in_atomic_block:
        close_old_connections()
    return record(step_run_id, token, outcome)


def _spec(step_run: StepRun):
    """The executor's spec of the agent version, or the failure that stands for it (a
    connection whose secret no longer decrypts, say). Database errors propagate."""
    try:
        return agent_spec(step_run.agent_version)
    except DatabaseError:
        raise
    except Exception as exc:
        return _internal_error(step_run, exc)


def _execute(step_run: StepRun, spec):
    """The agent's decision, or the failure that stands for it (never raises)."""
    if isinstance(spec, StepFailure):
        return spec
    try:
        return run_agent(spec, step_run.input)
    except (StepFailure, AwaitingPerson) as exc:
        return exc
    except Exception as exc:
        return _internal_error(step_run, exc)


def _internal_error(step_run: StepRun, exc: Exception) -> StepFailure:
    """A bug, or a broken setting, must still reach a person: out of scope, with the error."""
    log.exception("step %s: executor error", step_run.pk)
    problem = f"internal error in the {step_run.agent.kind} executor: {type(exc).__name__}"
    outcome = StepFailure(f"{problem}: {exc}"[:500])
    outcome.kind = "out_of_scope"
    return outcome


def record(step_run_id: int, token: uuid.UUID, outcome) -> str:
    with transaction.atomic(), ledger.deferred():
        locked = _lock(step_run_id)
        if locked is None:
            return "lease lost"
        run, step_run = locked
        return _record_locked(run, step_run, token, outcome)


def _record_locked(run: Run, step_run: StepRun, token: uuid.UUID, outcome) -> str:
    if step_run.lease_token != token or step_run.status != StepRun.Status.RUNNING:
        return "lease lost"  # the sweeper gave it to another worker; theirs counts
    if run.status == Run.Status.FINISHED:
        step_run.status = StepRun.Status.CANCELLED
        step_run.finished_at = timezone.now()
        step_run.save(update_fields=["status", "finished_at"])
        return "cancelled"
    step_run.lease_token = None
    step_run.lease_expires_at = None
    if isinstance(outcome, (StepFailure, AwaitingPerson)):
        return _record_failure(run, step_run, outcome)
    return _record_decision(run, step_run, outcome)


_DECISION_FIELDS = ["output", "decision", "confidence", "rationale", "finished_at", "decision_seq"]


def _record_decision(run: Run, step_run: StepRun, decision) -> str:
    from agents.engine import advance

    step_run.status = StepRun.Status.SUCCEEDED
    step_run.output = decision.output
    step_run.decision = str(decision.decision or "")[:200]
    step_run.confidence = decision.confidence
    step_run.rationale = (decision.rationale or "")[:5000]
    step_run.finished_at = timezone.now()
    record = append_step("agent.decided", step_run, decision.as_body())
    step_run.decision_seq = record.seq  # None until the deferred records are written
    rows.update(step_run, [*_CLAIM_FIELDS, *_DECISION_FIELDS])
    if record.seq is None:
        ledger.when_written(
            record,
            lambda written: rows.set_decision_seq(step_run.pk, written.seq),
        )
    for call in decision.tool_calls:
        append_step("tool.called", step_run, {"call": call}, personal_inputs=False)
    follow_up = advance.after_step(run, step_run)
    dispatch.send_after_commit([s.pk for s in follow_up if s.status == StepRun.Status.QUEUED])
    return "decided"


def _record_failure(run: Run, step_run: StepRun, failure) -> str:
    if isinstance(failure, AwaitingPerson):
        escalations.raise_for(step_run, failure)
        return "waiting"
    step_run.error = failure.context()
    step_run.finished_at = timezone.now()
    append_step("step.failed", step_run, {"attempt": step_run.attempt, "error": failure.context()})
    limit = step_run.agent_version.definition.get("retry_limit", 3)
    if isinstance(failure, SystemUnavailable) and step_run.attempt <= limit:
        delay = backoff_seconds(step_run.attempt)
        step_run.status = StepRun.Status.RETRYING
        step_run.save()
        retry = StepRun.objects.create(
            run=run,
            step_key=step_run.step_key,
            activation=step_run.activation,
            attempt=step_run.attempt + 1,
            agent=step_run.agent,
            agent_version=step_run.agent_version,
            input=step_run.input,
            not_before=timezone.now() + timedelta(seconds=delay),
            **dispatch.marked_as_sent(),
        )
        append_step(
            "step.retried",
            step_run,
            {
                "attempt": step_run.attempt,
                "next_attempt": retry.attempt,
                "delay_seconds": round(delay, 3),
                "retry_limit": limit,
            },
            personal_inputs=False,
        )
        dispatch.send_after_commit([retry.pk], countdown=delay)
        return "retrying"
    step_run.status = StepRun.Status.ESCALATED
    step_run.save()
    escalations.raise_for(step_run, failure)
    return "escalated"
