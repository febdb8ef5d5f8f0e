"""Helpers for engine tests on real workers: wait for runs (acting as beat's sweeper while
waiting), and the exactly-once checks every chaos scenario ends with."""

from __future__ import annotations

import json
import time
from collections import Counter

from agents.engine import dispatch
from agents.models import Run, StepRun
from governance.models import DecisionRecord
from governance.verify import verify_chain


def wait_for_runs(runs, *, timeout: float = 60, sweep_every: float = 0.5) -> list[Run]:
    """Wait until every run is finished or waiting for a person, sweeping like beat does."""
    deadline = time.monotonic() + timeout
    last_sweep = 0.0
    ids = [r.pk for r in runs]
    while time.monotonic() < deadline:
        if time.monotonic() - last_sweep >= sweep_every:
            dispatch.sweep()
            last_sweep = time.monotonic()
        states = list(Run.objects.filter(pk__in=ids).values_list("status", flat=True))
        if all(s in (Run.Status.FINISHED, Run.Status.WAITING) for s in states):
            break
        time.sleep(0.1)
    return list(Run.objects.filter(pk__in=ids).order_by("created_at"))


def wait_for_step(run: Run, step_key: str, status: str, timeout: float = 30) -> StepRun | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = StepRun.objects.filter(run=run, step_key=step_key, status=status).first()
        if found:
            return found
        time.sleep(0.02)
    return None


def assert_exactly_once(run: Run) -> None:
    """Every finished step decided once in the ledger, none twice, none missing."""
    records = [
        json.loads(text)
        for text in DecisionRecord.objects.filter(run_id=str(run.pk), event="agent.decided")
        .order_by("seq")
        .values_list("canonical", flat=True)
    ]
    decided_steps = Counter(
        r["refs"]["step"]["name"].rsplit(".", 1)[0] for r in records
    )  # "key#activation"
    twice = {k: n for k, n in decided_steps.items() if n > 1}
    assert not twice, f"decisions recorded twice: {twice}"
    succeeded = StepRun.objects.filter(run=run, status=StepRun.Status.SUCCEEDED)
    expected = {f"{s.step_key}#{s.activation}" for s in succeeded}
    assert set(decided_steps) == expected, (decided_steps, expected)
    assert all(s.decision_seq for s in succeeded)


def assert_ledger_intact() -> None:
    report = verify_chain()
    assert report.ok, f"ledger broken at {report.first_bad_seq}: {report.reason}"
