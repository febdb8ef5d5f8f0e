"""The engine's rules, driven synchronously (the same execute_step a worker runs)."""

import json

import pytest
from django.core.exceptions import PermissionDenied

from agents.engine import escalations, runs
from agents.models import Escalation, Run, StepRun
from governance.models import DecisionRecord, Team
from tests.support.engine import drain, human_agent, rules_agent, workflow

pytestmark = pytest.mark.django_db


@pytest.fixture
def team(demo_people):
    return Team.objects.get(name="Onboarding")


@pytest.fixture
def kyc(team, demo_people):
    return rules_agent(
        "KYC",
        team,
        demo_people,
        inputs=[("customer_id", "text", True), ("country", "text", True)],
        outputs=[("risk", "text")],
        rows=[
            {
                "condition": "input.country in ['DE', 'FR', 'NL']",
                "outputs": {"risk": "low"},
                "decision": "pass",
                "confidence": 0.95,
            },
            {
                "condition": "input.country == 'XX'",
                "outputs": {"risk": "high"},
                "decision": "refer",
                "confidence": 0.4,
            },
        ],
        threshold=0.6,
    )


@pytest.fixture
def credit(team, demo_people):
    return rules_agent(
        "Credit",
        team,
        demo_people,
        inputs=[("risk", "text", True), ("amount", "number", True)],
        outputs=[("limit", "number")],
        rows=[
            {
                "condition": "input.risk == 'low' && input.amount <= 10000.0",
                "outputs": {"limit": 10000},
                "decision": "approve",
                "confidence": 0.9,
            },
            {
                "condition": "input.risk == 'low' && input.amount > 10000.0",
                "outputs": {"limit": 5000},
                "decision": "approve",
                "confidence": 0.9,
            },
            {
                "condition": "input.risk != 'low'",
                "outputs": {"limit": 0},
                "decision": "decline",
                "confidence": 0.9,
            },
        ],
        policy="unique",
    )


def events_of(run: Run) -> list[str]:
    return list(
        DecisionRecord.objects.filter(run_id=str(run.pk))
        .order_by("seq")
        .values_list("event", flat=True)
    )


def sequential(team, people, kyc, credit):
    return workflow(
        "Onboard",
        team,
        people,
        pattern="sequential",
        inputs=[("customer_id", "text"), ("country", "text"), ("amount", "number")],
        steps=[
            {"key": "kyc", "agent_id": kyc.pk},
            {
                "key": "credit",
                "agent_id": credit.pk,
                "input_mapping": {"risk": "steps.kyc.output.risk"},
            },
        ],
    )


def test_a_sequential_run_decides_each_step_in_order(team, demo_people, kyc, credit):
    flow = sequential(team, demo_people, kyc, credit)
    run = runs.start(
        flow.published_version,
        {"customer_id": "C1", "country": "DE", "amount": 500},
        actor=demo_people["operator"],
        trigger=Run.Trigger.MANUAL,
    )
    run = drain(run)
    assert (run.status, run.outcome) == (Run.Status.FINISHED, Run.Outcome.COMPLETED)
    assert run.output == {"limit": 10000}
    assert events_of(run) == [
        "run.started",
        "step.started",
        "agent.decided",
        "handoff",
        "step.started",
        "agent.decided",
        "run.finished",
    ]


def test_bad_input_starts_nothing(team, demo_people, kyc, credit):
    flow = sequential(team, demo_people, kyc, credit)
    with pytest.raises(runs.StartError) as caught:
        runs.start(
            flow.published_version,
            {"customer_id": "C1", "amount": "lots"},
            actor=demo_people["operator"],
            trigger=Run.Trigger.MANUAL,
        )
    assert caught.value.errors["country"] == "this field is required"
    assert "amount" in caught.value.errors
    assert not Run.objects.exists()


def test_only_people_who_may_run_it_start_a_run(team, demo_people, kyc, credit):
    flow = sequential(team, demo_people, kyc, credit)
    with pytest.raises(PermissionDenied):
        runs.start(
            flow.published_version, {}, actor=demo_people["builder2"], trigger=Run.Trigger.MANUAL
        )


def test_low_confidence_escalates_with_the_options_and_approval_resumes(
    team, demo_people, kyc, credit
):
    flow = sequential(team, demo_people, kyc, credit)
    run = drain(
        runs.start(
            flow.published_version,
            {"customer_id": "C1", "country": "XX", "amount": 500},
            actor=demo_people["operator"],
            trigger=Run.Trigger.MANUAL,
        )
    )
    assert run.status == Run.Status.WAITING
    escalation = Escalation.objects.get(run=run)
    assert escalation.kind == "low_confidence"
    assert escalation.step_run.started_at is not None
    assert escalation.step_run.started_at <= escalation.step_run.finished_at
    assert escalation.context["threshold"] == 0.6
    assert escalation.context["options"][0]["decision"] == "refer"
    escalations.resolve(
        escalation, actor=demo_people["approver"], action="approve", option=0, note="known customer"
    )
    run = drain(run)
    # The person's choice (risk high) flows on; the credit table declines.
    assert (run.status, run.outcome) == (Run.Status.FINISHED, Run.Outcome.COMPLETED)
    assert run.output == {"limit": 0}
    assert "escalation.resolved" in events_of(run)


def test_rule_conflict_escalates_naming_both_rules(team, demo_people, kyc):
    conflicted = rules_agent(
        "Overlap",
        team,
        demo_people,
        inputs=[("amount", "number", True)],
        outputs=[("band", "text")],
        rows=[
            {"condition": "input.amount > 10.0", "outputs": {"band": "a"}, "decision": "a"},
            {"condition": "input.amount > 5.0", "outputs": {"band": "b"}, "decision": "b"},
        ],
        policy="unique",
    )
    flow = workflow(
        "Bands",
        team,
        demo_people,
        pattern="sequential",
        inputs=[("amount", "number")],
        steps=[{"key": "band", "agent_id": conflicted.pk}],
    )
    run = drain(
        runs.start(
            flow.published_version,
            {"amount": 20},
            actor=demo_people["operator"],
            trigger=Run.Trigger.MANUAL,
        )
    )
    escalation = Escalation.objects.get(run=run)
    assert escalation.kind == "rule_conflict"
    assert len(escalation.context["rules"]) == 2
    escalations.resolve(escalation, actor=demo_people["approver"], action="approve", option=1)
    run = drain(run)
    assert run.output == {"band": "b"}


def test_out_of_scope_escalates_and_reject_ends_the_run(team, demo_people, kyc, credit):
    flow = sequential(team, demo_people, kyc, credit)
    run = drain(
        runs.start(
            flow.published_version,
            {"customer_id": "C1", "country": "US", "amount": 500},
            actor=demo_people["operator"],
            trigger=Run.Trigger.MANUAL,
        )
    )
    escalation = Escalation.objects.get(run=run)
    assert escalation.kind == "out_of_scope"
    escalations.resolve(
        escalation, actor=demo_people["approver"], action="reject", note="not our market"
    )
    run.refresh_from_db()
    assert (run.status, run.outcome) == (Run.Status.FINISHED, Run.Outcome.REJECTED)
    assert events_of(run)[-1] == "run.finished"


def test_a_handoff_error_names_the_missing_field_and_supplied_data_resumes(
    team, demo_people, credit
):
    partial = rules_agent(
        "Partial",
        team,
        demo_people,
        inputs=[("customer_id", "text", True)],
        outputs=[("risk", "text"), ("note", "text")],
        rows=[{"condition": "true", "outputs": {"note": "x"}, "decision": "ok"}],
        policy="collect",
    )
    flow = workflow(
        "Handoff",
        team,
        demo_people,
        pattern="sequential",
        inputs=[("customer_id", "text"), ("amount", "number")],
        steps=[
            {"key": "first", "agent_id": partial.pk},
            {
                "key": "credit",
                "agent_id": credit.pk,
                "input_mapping": {"risk": "steps.first.output.risk"},
            },
        ],
    )
    run = drain(
        runs.start(
            flow.published_version,
            {"customer_id": "C1", "amount": 5},
            actor=demo_people["operator"],
            trigger=Run.Trigger.MANUAL,
        )
    )
    escalation = Escalation.objects.get(run=run)
    assert escalation.kind == "handoff_error"
    assert escalation.context["to_step"] == "credit"
    escalations.resolve(
        escalation, actor=demo_people["approver"], action="supply", data={"risk": "low"}
    )
    run = drain(run)
    assert run.output == {"limit": 10000}


def test_human_steps_wait_in_the_inbox_and_the_answer_continues(team, demo_people):
    person = human_agent(
        "Review", team, demo_people, inputs=["customer_id"], outputs=[("verdict", "text")]
    )
    flow = workflow(
        "Manual",
        team,
        demo_people,
        pattern="sequential",
        inputs=[("customer_id", "text")],
        steps=[{"key": "review", "agent_id": person.pk}],
    )
    run = drain(
        runs.start(
            flow.published_version,
            {"customer_id": "C9"},
            actor=demo_people["operator"],
            trigger=Run.Trigger.MANUAL,
        )
    )
    task = Escalation.objects.get(run=run)
    assert task.kind == "human_task"
    waiting = StepRun.objects.get(run=run)
    assert waiting.status == StepRun.Status.WAITING
    assert waiting.started_at is not None  # the inline claim is saved with the escalation
    # A builder of the answering team may answer a human task.
    escalations.resolve(
        task, actor=demo_people["builder"], action="approve", data={"verdict": "fine"}
    )
    run = drain(run)
    assert run.output == {"verdict": "fine"}


def test_strangers_cannot_resolve(team, demo_people, kyc, credit):
    flow = sequential(team, demo_people, kyc, credit)
    run = drain(
        runs.start(
            flow.published_version,
            {"customer_id": "C1", "country": "US", "amount": 1},
            actor=demo_people["operator"],
            trigger=Run.Trigger.MANUAL,
        )
    )
    escalation = Escalation.objects.get(run=run)
    with pytest.raises(PermissionDenied):
        escalations.resolve(escalation, actor=demo_people["builder2"], action="reject")


def test_cancel_finishes_the_run_and_closes_its_escalations(team, demo_people, kyc, credit):
    flow = sequential(team, demo_people, kyc, credit)
    run = drain(
        runs.start(
            flow.published_version,
            {"customer_id": "C1", "country": "US", "amount": 1},
            actor=demo_people["operator"],
            trigger=Run.Trigger.MANUAL,
        )
    )
    runs.cancel(run, actor=demo_people["operator"], reason="duplicate request")
    run.refresh_from_db()
    assert run.outcome == Run.Outcome.CANCELLED
    assert Escalation.objects.get(run=run).status == Escalation.Status.CANCELLED


def test_a_repeated_delivery_changes_nothing(team, demo_people, kyc, credit):
    from agents.engine.execute import execute_step

    flow = sequential(team, demo_people, kyc, credit)
    run = runs.start(
        flow.published_version,
        {"customer_id": "C1", "country": "DE", "amount": 1},
        actor=demo_people["operator"],
        trigger=Run.Trigger.MANUAL,
    )
    first = StepRun.objects.get(run=run)
    assert execute_step(first.pk) == "decided"
    assert execute_step(first.pk) == "skipped"
    assert DecisionRecord.objects.filter(event="agent.decided", run_id=str(run.pk)).count() == 1


def test_records_of_a_run_name_its_versions(team, demo_people, kyc, credit):
    flow = sequential(team, demo_people, kyc, credit)
    run = drain(
        runs.start(
            flow.published_version,
            {"customer_id": "C1", "country": "DE", "amount": 1},
            actor=demo_people["operator"],
            trigger=Run.Trigger.MANUAL,
        )
    )
    decided = json.loads(
        DecisionRecord.objects.filter(event="agent.decided", run_id=str(run.pk))
        .order_by("seq")
        .first()
        .canonical
    )
    assert decided["refs"]["agent_version"]["name"] == "KYC v1"
    assert decided["refs"]["workflow_version"]["name"] == "Onboard v1"
    assert decided["actor"] == {"type": "agent", "id": str(kyc.pk), "name": "KYC v1"}
    assert decided["body"]["decision"] == "pass"


def test_engine_locks_only_its_own_rows(team, demo_people, kyc, credit):
    """A lock on joined rows (the agent, the workflow) deadlocks with the foreign-key checks of
    concurrent starts; every SELECT ... FOR UPDATE of the engine names its own table."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from agents.engine.execute import execute_step

    flow = sequential(team, demo_people, kyc, credit)
    run = runs.start(
        flow.published_version,
        {"customer_id": "C1", "country": "DE", "amount": 1},
        actor=demo_people["operator"],
        trigger=Run.Trigger.MANUAL,
    )
    with CaptureQueriesContext(connection) as queries:
        execute_step(StepRun.objects.get(run=run).pk)
    locking = [
        q["sql"]
        for q in queries.captured_queries
        if "FOR UPDATE" in q["sql"] and " JOIN " in q["sql"]
    ]
    if connection.features.has_select_for_update_of:
        assert locking
        for sql in locking:
            assert "FOR UPDATE OF" in sql, sql


def _start_one(flow, people):
    return runs.start(
        flow.published_version,
        {"customer_id": "C1", "country": "DE", "amount": 1},
        actor=people["operator"],
        trigger=Run.Trigger.MANUAL,
    )


def test_a_rules_step_is_claimed_run_and_recorded_in_one_transaction(
    team, demo_people, kyc, credit
):
    """Rules executors do no I/O: claiming, deciding and recording take one transaction and a
    bounded number of queries (bench/engine.py's per-step overhead), locking the run first."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from agents.engine.execute import execute_step

    run = _start_one(sequential(team, demo_people, kyc, credit), demo_people)
    step = StepRun.objects.get(run=run)
    with CaptureQueriesContext(connection) as queries:
        assert execute_step(step.pk) == "decided"
    sqls = [q["sql"] for q in queries.captured_queries]
    # Inside the test's transaction every atomic block is a savepoint.
    assert sum(sql.startswith("SAVEPOINT") for sql in sqls) == 1, sqls
    assert len(sqls) <= 13, "\n".join(sqls)
    # The claim is saved with the decision (one UPDATE), then the decision's ledger seq.
    assert sum(sql.startswith('UPDATE "agents_steprun"') for sql in sqls) == 2, sqls
    locked = [
        sql.split(" FROM ")[1].split()[0]
        for sql in sqls
        if sql.startswith("SELECT") and "FOR UPDATE" in sql
    ]
    if connection.features.has_select_for_update:
        assert locked == ['"agents_run"', '"agents_steprun"']
        # The chain head is locked last, by the statement that chains and inserts the step's
        # records (steward_ledger_chain): after it only the step's link to its decision record
        # and the end of the transaction (other appenders wait for no more).
        head = next(i for i, sql in enumerate(sqls) if "steward_ledger_chain" in sql)
        assert not any("governance_ledgerhead" in sql for sql in sqls[:head])
        after = [" ".join(sql.split()[:2]) for sql in sqls[head + 1 :]]
        assert after == ['UPDATE "agents_steprun"', "RELEASE SAVEPOINT"], after
    step.refresh_from_db()
    assert step.status == StepRun.Status.SUCCEEDED
    assert step.started_at is not None
    assert step.lease_token is None
    events = list(
        DecisionRecord.objects.filter(run_id=str(run.pk))
        .order_by("seq")
        .values_list("event", flat=True)
    )
    assert events == ["run.started", "step.started", "agent.decided", "handoff"]


def test_new_attempts_count_as_sent_and_a_failed_send_leaves_them_to_the_sweeper(
    team, demo_people, kyc, credit, monkeypatch, django_capture_on_commit_callbacks
):
    from kombu.exceptions import OperationalError

    from agents.engine import dispatch
    from agents.engine.tasks import execute_step as task

    published = []

    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    flow = sequential(team, demo_people, kyc, credit)
    monkeypatch.setattr(task, "apply_async", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        run = _start_one(flow, demo_people)
    step = StepRun.objects.get(run=run)
    assert (step.status, step.dispatched_at, step.dispatch_count) == (
        StepRun.Status.QUEUED,
        None,
        1,
    ), "a send that failed must not look sent"

    monkeypatch.setattr(task, "apply_async", lambda args, **kw: published.append(args))
    assert dispatch.sweep()["sent"] == 1
    step.refresh_from_db()
    assert published == [(step.pk,)]
    assert step.dispatched_at is not None

    # Created and sent in the normal way, an attempt counts as sent from its INSERT, so the
    # sweeper leaves it alone until STEWARD_RESEND_AFTER_SECONDS have passed.
    published.clear()
    with django_capture_on_commit_callbacks(execute=True):
        other = _start_one(flow, demo_people)
    sent = StepRun.objects.get(run=other)
    assert published == [(sent.pk,)]
    assert sent.dispatched_at is not None
    assert dispatch.sweep()["due"] == 0


def test_a_database_failure_before_the_agent_runs_leaves_the_attempt_to_run_again(
    team, demo_people, kyc, credit, monkeypatch
):
    """Connections dropped between the claim and the agent (make chaos) are the system's
    failure, not the agent's: the claim is undone and the attempt runs again, no escalation."""
    from django.db import OperationalError

    from agents.engine import execute

    run = _start_one(sequential(team, demo_people, kyc, credit), demo_people)
    step = StepRun.objects.get(run=run)
    real = execute.agent_spec

    def connection_dropped(version):
        raise OperationalError("terminating connection due to administrator command")

    monkeypatch.setattr(execute, "agent_spec", connection_dropped)
    with pytest.raises(OperationalError):
        execute.execute_step(step.pk)
    step.refresh_from_db()
    assert (step.status, step.started_at) == (StepRun.Status.QUEUED, None)
    assert not Escalation.objects.filter(run=run).exists()
    assert not DecisionRecord.objects.filter(run_id=str(run.pk), event="step.started").exists()

    monkeypatch.setattr(execute, "agent_spec", real)
    assert execute.execute_step(step.pk) == "decided"


def test_a_setting_that_breaks_the_agent_spec_escalates_with_the_error(
    team, demo_people, kyc, credit, monkeypatch
):
    from agents.engine import execute

    run = _start_one(sequential(team, demo_people, kyc, credit), demo_people)
    step = StepRun.objects.get(run=run)

    def undecryptable(version):
        raise ValueError("the connection's secret no longer decrypts")

    monkeypatch.setattr(execute, "agent_spec", undecryptable)
    assert execute.execute_step(step.pk) == "escalated"
    escalation = Escalation.objects.get(run=run)
    assert escalation.kind == "out_of_scope"
    assert "no longer decrypts" in json.dumps(escalation.context)
