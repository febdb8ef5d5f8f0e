"""Each orchestration pattern end to end (synchronously; tests/integration runs them on workers)."""

import hashlib
import time

import pytest

from agents.engine import runs, triggers
from agents.models import Run, StepRun, WebhookDelivery
from governance.models import DecisionRecord
from tests.support.engine import drain, workflow
from tests.support.patterns import build_all

pytestmark = pytest.mark.django_db


@pytest.fixture
def flows(demo_people):
    return build_all(demo_people)


def start(flow, data, people):
    return runs.start(
        flow.published_version, data, actor=people["operator"], trigger=Run.Trigger.MANUAL
    )


@pytest.mark.parametrize(
    "pattern", ["sequential", "concurrent", "router", "maker_checker", "supervisor", "conversation"]
)
def test_each_pattern_runs_to_its_expected_output(flows, demo_people, pattern):
    flow, data, expected = flows[pattern]
    run = drain(start(flow, data, demo_people))
    assert (run.status, run.outcome) == (Run.Status.FINISHED, Run.Outcome.COMPLETED)
    assert run.output == expected
    events = list(
        DecisionRecord.objects.filter(run_id=str(run.pk))
        .order_by("seq")
        .values_list("event", flat=True)
    )
    assert events[0] == "run.started"
    assert events[-1] == "run.finished"
    decided = StepRun.objects.filter(run=run, status=StepRun.Status.SUCCEEDED).count()
    assert events.count("agent.decided") == decided


def test_concurrent_join_waits_for_both_branches(flows, demo_people):
    flow, data, _ = flows["concurrent"]
    run = start(flow, data, demo_people)
    assert set(StepRun.objects.filter(run=run).values_list("step_key", flat=True)) == {
        "score",
        "check",
    }
    drain(run)
    order = list(
        StepRun.objects.filter(run=run)
        .order_by("created_at", "pk")
        .values_list("step_key", flat=True)
    )
    assert order[-1] == "combine"
    assert order.count("combine") == 1


def test_maker_checker_sends_feedback_back_to_the_maker(flows, demo_people):
    flow, data, _ = flows["maker_checker"]
    run = drain(start(flow, data, demo_people))
    makers = StepRun.objects.filter(run=run, step_key="write").order_by("activation")
    assert [m.input.get("feedback") for m in makers] == [None, "add more detail"]


def test_maker_checker_escalates_after_the_round_limit(demo_people, flows):
    flow, _, _ = flows["maker_checker"]
    definition = dict(flow.published_version.definition)
    definition["config"] = {"max_rounds": 1, "approve_decision": "approve"}
    from agents import versions

    versions.save_draft(flow, definition, actor=demo_people["builder"])
    versions.submit(flow, actor=demo_people["builder"])
    versions.approve(flow, actor=demo_people["approver"], number=2)
    flow.refresh_from_db()
    run = drain(start(flow, {"topic": "x"}, demo_people))
    assert run.status == Run.Status.WAITING
    escalation = run.escalations.get()
    assert escalation.kind == "round_limit"
    assert escalation.context["rounds"][0]["feedback"] == "add more detail"


def test_conversation_escalates_at_the_turn_limit(demo_people, flows):
    flow, _, _ = flows["conversation"]
    definition = dict(flow.published_version.definition)
    definition["config"] = {"stop_condition": "last.decision == 'never'", "max_turns": 3}
    from agents import versions

    versions.save_draft(flow, definition, actor=demo_people["builder"])
    versions.submit(flow, actor=demo_people["builder"])
    versions.approve(flow, actor=demo_people["approver"], number=2)
    flow.refresh_from_db()
    run = drain(start(flow, {"item": "lamp"}, demo_people))
    escalation = run.escalations.get()
    assert escalation.kind == "turn_limit"
    assert len(escalation.context["transcript"]) == 3


def test_router_takes_the_other_branch(flows, demo_people):
    flow, _, _ = flows["router"]
    run = drain(start(flow, {"topic": "it crashes"}, demo_people))
    assert run.output == {"answer": "restart it"}
    assert not StepRun.objects.filter(run=run, step_key="billing").exists()


def test_supervisor_runs_only_the_chosen_specialists_then_synthesises(flows, demo_people):
    flow, data, _ = flows["supervisor"]
    run = drain(start(flow, data, demo_people))
    keys = list(
        StepRun.objects.filter(run=run)
        .order_by("created_at", "pk")
        .values_list("step_key", "activation")
    )
    assert keys == [("lead", 0), ("risk", 0), ("lead", 1)]
    synthesis = StepRun.objects.get(run=run, step_key="lead", activation=1)
    assert synthesis.input["specialist_outputs"] == {"risk": {"risk": "low"}}


# --- Event-driven: webhooks, schedules, another workflow's outcome ---------------------------
def test_a_signed_webhook_starts_a_run_once(flows, demo_people):
    flow, _, _ = flows["sequential"]
    _add_triggers(flow, demo_people, [{"type": "webhook", "run_as": "operator"}])
    secret = triggers.rotate_webhook_secret(flow, actor=demo_people["builder"])
    body = b'{"amount": 12}'
    stamp = int(time.time())
    signature = triggers.sign(secret, stamp, body)
    run = triggers.receive_webhook(flow.slug, body, str(stamp), signature)
    assert (run.trigger, run.input) == (Run.Trigger.WEBHOOK, {"amount": 12})
    with pytest.raises(triggers.WebhookRefused) as replay:
        triggers.receive_webhook(flow.slug, body, str(stamp), signature)
    assert replay.value.status == 409
    assert WebhookDelivery.objects.count() == 1


@pytest.mark.parametrize(
    ("timestamp_shift", "tamper", "status"),
    [(0, True, 401), (-301, False, 401), (400, False, 401)],
)
def test_webhooks_with_bad_signatures_or_stale_times_are_refused(
    flows, demo_people, timestamp_shift, tamper, status
):
    flow, _, _ = flows["sequential"]
    _add_triggers(flow, demo_people, [{"type": "webhook", "run_as": "operator"}])
    secret = triggers.rotate_webhook_secret(flow, actor=demo_people["builder"])
    stamp = int(time.time()) + timestamp_shift
    signature = triggers.sign(secret, stamp, b'{"amount": 1}')
    body = b'{"amount": 2}' if tamper else b'{"amount": 1}'
    with pytest.raises(triggers.WebhookRefused) as refused:
        triggers.receive_webhook(flow.slug, body, str(stamp), signature)
    assert refused.value.status == status
    assert not Run.objects.exists()


def test_a_schedule_starts_a_run_each_interval(flows, demo_people):
    flow, _, _ = flows["sequential"]
    _add_triggers(
        flow,
        demo_people,
        [{"type": "schedule", "every_minutes": 60, "input": {"amount": 3}, "run_as": "operator"}],
    )
    assert len(triggers.fire_schedules()) == 1
    assert triggers.fire_schedules() == []
    assert Run.objects.get().trigger == Run.Trigger.SCHEDULE


def test_a_workflow_outcome_starts_its_follower(flows, demo_people):
    leader, data, _ = flows["sequential"]
    follower = workflow(
        "Follow",
        leader.team,
        demo_people,
        pattern="sequential",
        inputs=[("amount", "number")],
        steps=[{"key": "check", "agent_id": _agent_id(leader)}],
        triggers=[
            {
                "type": "workflow",
                "workflow_id": leader.pk,
                "outcome": "completed",
                "run_as": "operator",
            }
        ],
    )
    run = drain(start(leader, data, demo_people))
    started = runs.start_followers(run.pk)
    assert [r.workflow for r in started] == [follower]
    assert started[0].trigger_detail["run"] == str(run.pk)


def test_a_trigger_owner_without_run_permission_is_refused_and_recorded(flows, demo_people):
    flow, _, _ = flows["sequential"]
    _add_triggers(
        flow,
        demo_people,
        [{"type": "schedule", "every_minutes": 5, "input": {"amount": 3}, "run_as": "operator"}],
    )
    from governance import roles
    from governance.roles import Role

    # The trigger runs as the operator, who then loses the role that gave `run`.
    roles.revoke_role(demo_people["operator"], Role.OPERATOR, actor=None)
    assert triggers.fire_schedules() == []
    assert DecisionRecord.objects.filter(event="trigger.refused").exists()


def _agent_id(flow):
    return flow.published_version.definition["steps"][-1]["agent_id"]


def _add_triggers(flow, people, new_triggers):
    from agents import versions

    definition = dict(flow.published_version.definition)
    definition["triggers"] = new_triggers
    versions.save_draft(flow, definition, actor=people["builder"])
    versions.submit(flow, actor=people["builder"])
    pending = versions.pending_of(flow)
    versions.approve(flow, actor=people["approver"], number=pending.number)
    flow.refresh_from_db()


def test_webhook_digest_is_of_the_signature(flows):
    assert len(hashlib.sha256(b"x").hexdigest()) == 64
