"""The engine's hand-written reads (agents.engine.rows) give the models the ORM gives."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from agents.engine import rows
from agents.models import AgentVersion, Run, StepRun
from tests.support.engine import drain
from tests.support.operate import kyc_flow, start

pytestmark = pytest.mark.django_db

GOOD = {"customer_id": "C1", "country": "DE", "amount": 10}


def _fields(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def test_a_locked_step_reads_as_the_orm_reads_it(demo_people):
    run = start(kyc_flow(demo_people), GOOD, demo_people, run_it=False)
    drain(run, limit=1)  # one decided step (output, decision, JSON, datetimes) and one queued
    for step in StepRun.objects.filter(run=run):
        expected = StepRun.objects.select_related(
            "agent",
            "agent_version",
            "run__workflow",
            "run__workflow_version",
            "run__team",
        ).get(pk=step.pk)
        got_run, got = rows.lock_step(step.pk)
        assert _fields(got) == _fields(expected)
        assert _fields(got.agent) == _fields(expected.agent)
        assert _fields(got.agent_version) == _fields(expected.agent_version)
        assert got.agent_version.agent is got.agent
        assert got.run is got_run
        for part in ("workflow", "workflow_version", "team"):
            assert _fields(getattr(got_run, part)) == _fields(getattr(expected.run, part))
        assert _fields(got_run) == _fields(expected.run)
        assert not got._state.adding
        assert got._state.db == "default"


def test_locking_takes_the_run_then_the_step_and_nothing_else(demo_people):
    run = start(kyc_flow(demo_people), GOOD, demo_people, run_it=False)
    step = StepRun.objects.get(run=run)
    with CaptureQueriesContext(connection) as queries:
        rows.lock_step(step.pk)
    sqls = [q["sql"] for q in queries.captured_queries]
    assert len(sqls) == 2
    if connection.features.has_select_for_update_of:
        assert sqls[0].endswith("FOR UPDATE OF r")
        assert '"agents_run" r' in sqls[0]
        assert sqls[1].endswith("FOR UPDATE OF s")
        assert '"agents_steprun" s' in sqls[1]


def test_a_missing_step_locks_nothing():
    assert rows.lock_step(10**9) is None


def test_an_agent_version_with_its_agent(demo_people):
    flow = kyc_flow(demo_people)
    step = flow.published_version.definition["steps"][0]
    version = rows.agent_version(step["agent_id"], step["agent_version"])
    expected = AgentVersion.objects.get(agent_id=step["agent_id"], number=step["agent_version"])
    assert _fields(version) == _fields(expected)
    assert version.agent.pk == step["agent_id"]
    with pytest.raises(AgentVersion.DoesNotExist):
        rows.agent_version(step["agent_id"], 999)


def test_step_results_in_activation_order_with_decoded_outputs(demo_people):
    run = start(kyc_flow(demo_people), GOOD, demo_people)
    assert run.status == Run.Status.FINISHED
    results = rows.step_results(run.pk)
    expected = list(
        StepRun.objects.filter(run=run)
        .order_by("activation", "attempt", "pk")
        .values_list("status", "step_key", "output", "decision", "confidence", "rationale")
    )
    assert results == expected
    assert all(isinstance(output, dict) for _, _, output, *_ in results)


def test_create_saves_what_the_orm_would_and_sets_the_key(demo_people):
    run = start(kyc_flow(demo_people), GOOD, demo_people, run_it=False)
    first = StepRun.objects.get(run=run)
    made = rows.create(
        StepRun,
        run=run,
        step_key="again",
        activation=1,
        attempt=1,
        agent_id=first.agent_id,
        agent_version_id=first.agent_version_id,
        input={"customer_id": "C1", "nested": {"a": [1, 2.5, None]}},
    )
    assert made.pk is not None
    assert not made._state.adding
    assert made.created_at is not None  # auto_now_add, as create() sets it
    assert _fields(StepRun.objects.get(pk=made.pk)) == _fields(made)
    assert made.status == StepRun.Status.QUEUED  # the model's default


def test_update_writes_only_the_fields_named(demo_people):
    run = start(kyc_flow(demo_people), GOOD, demo_people, run_it=False)
    step = StepRun.objects.get(run=run)
    step.output = {"limit": 5, "why": ["a", "b"]}
    step.confidence = 0.5
    step.decision = "not written"
    rows.update(step, ["output", "confidence"])
    stored = StepRun.objects.get(pk=step.pk)
    assert (stored.output, stored.confidence, stored.decision) == (
        {"limit": 5, "why": ["a", "b"]},
        0.5,
        "",
    )
    run.output = {"done": True}
    rows.update(run, ["output"])  # a UUID key
    assert Run.objects.get(pk=run.pk).output == {"done": True}


def test_a_workflow_by_slug_with_its_team_and_published_version(demo_people):
    from agents import versions
    from agents.models import Workflow
    from tests.support.operate import onboarding

    flow = kyc_flow(demo_people)
    got = rows.workflow_by_slug(flow.slug)
    expected = Workflow.objects.select_related("team", "published_version").get(pk=flow.pk)
    assert _fields(got) == _fields(expected)
    assert _fields(got.team) == _fields(expected.team)
    assert _fields(got.published_version) == _fields(expected.published_version)
    assert got.published_version.workflow is got
    assert _fields(rows.workflow_by_id(flow.pk)) == _fields(expected)
    assert _fields(rows.workflow_by_id(str(flow.pk)).published_version) == _fields(
        expected.published_version
    )
    assert rows.workflow_by_id("not a number") is None
    assert rows.workflow_by_id(10**9) is None
    draft = versions.create(
        versions.WORKFLOW,
        actor=demo_people["builder"],
        name="Never published",
        team=onboarding(),
        definition=dict(flow.published_version.definition),
    )
    assert rows.workflow_by_slug(draft.slug).published_version is None
    assert rows.workflow_by_slug("no-such-workflow") is None


def test_an_active_user_by_name(demo_people):
    operator = demo_people["operator"]
    assert rows.active_user("operator").pk == operator.pk
    assert _fields(rows.active_user("operator")) == _fields(
        type(operator).objects.get(pk=operator.pk)
    )
    operator.is_active = False
    operator.save(update_fields=["is_active"])
    assert rows.active_user("operator") is None
    assert rows.active_user("nobody") is None
