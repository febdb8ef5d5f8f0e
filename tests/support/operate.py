"""Workflows that escalate in each way a person resolves, for the operator pages' tests
(run pages, inbox, runs API). Built from rules and human agents, so they run with no outside
service; runs are driven synchronously with `drain`."""

from __future__ import annotations

from agents import versions
from agents.engine import runs
from agents.models import Escalation, Run
from governance.models import Team
from tests.support.engine import drain, human_agent, publish, rules_agent, workflow


def keep_test_connection(monkeypatch) -> None:
    """Kept for callers: execute_step used to close the test's own connection on PostgreSQL
    (close_old_connections inside the test transaction); the engine now skips that inside a
    transaction (a5eee48), so this only makes sure of it."""
    monkeypatch.setattr("agents.engine.execute.close_old_connections", lambda: None)


def onboarding() -> Team:
    return Team.objects.get(name="Onboarding")


def kyc_flow(people):
    """KYC then credit. Country XX: low confidence; US: out of scope (no rule matches)."""
    team = onboarding()
    kyc = rules_agent(
        "KYC",
        team,
        people,
        inputs=[("customer_id", "text", True), ("country", "text", True)],
        outputs=[("risk", "text")],
        rows=[
            {
                "condition": "input.country in ['DE', 'FR', 'NL']",
                "outputs": {"risk": "low"},
                "decision": "pass",
                "confidence": 0.95,
                "rationale": "EU customer with a clean record",
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
    credit = rules_agent(
        "Credit",
        team,
        people,
        inputs=[("risk", "text", True), ("amount", "number", True)],
        outputs=[("limit", "number")],
        rows=[
            {
                "condition": "input.risk == 'low'",
                "outputs": {"limit": 10000},
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


def conflict_flow(people):
    team = onboarding()
    bands = rules_agent(
        "Bands",
        team,
        people,
        inputs=[("amount", "number", True)],
        outputs=[("band", "text")],
        rows=[
            {"condition": "input.amount > 10.0", "outputs": {"band": "a"}, "decision": "a"},
            {"condition": "input.amount > 5.0", "outputs": {"band": "b"}, "decision": "b"},
        ],
        policy="unique",
    )
    return workflow(
        "Banding",
        team,
        people,
        pattern="sequential",
        inputs=[("amount", "number")],
        steps=[{"key": "band", "agent_id": bands.pk}],
    )


def handoff_flow(people):
    """The first step leaves `risk` out, so the second one's input is missing it."""
    team = onboarding()
    partial = rules_agent(
        "Partial",
        team,
        people,
        inputs=[("customer_id", "text", True)],
        outputs=[("risk", "text"), ("note", "text")],
        rows=[{"condition": "true", "outputs": {"note": "x"}, "decision": "ok"}],
        policy="collect",
    )
    limit = rules_agent(
        "Limit",
        team,
        people,
        inputs=[("risk", "text", True), ("amount", "number", True)],
        outputs=[("limit", "number")],
        rows=[{"condition": "true", "outputs": {"limit": 500}, "decision": "approve"}],
    )
    return workflow(
        "Handoff",
        team,
        people,
        pattern="sequential",
        inputs=[("customer_id", "text"), ("amount", "number")],
        steps=[
            {"key": "first", "agent_id": partial.pk},
            {
                "key": "limit",
                "agent_id": limit.pk,
                "input_mapping": {"risk": "steps.first.output.risk"},
            },
        ],
    )


def human_flow(people):
    team = onboarding()
    person = human_agent(
        "Manual review",
        team,
        people,
        inputs=["customer_id"],
        outputs=[("verdict", "text"), ("limit", "number")],
    )
    return workflow(
        "Manual",
        team,
        people,
        pattern="sequential",
        inputs=[("customer_id", "text")],
        steps=[{"key": "review", "agent_id": person.pk}],
    )


def typed_flow(people):
    """A workflow with one input field of every type, for the start form."""
    team = onboarding()
    echo = rules_agent(
        "Echo",
        team,
        people,
        inputs=[("customer_id", "text", True)],
        outputs=[("seen", "text")],
        rows=[{"condition": "true", "outputs": {"seen": "yes"}, "decision": "seen"}],
    )
    definition = {
        "description": "Takes every kind of input",
        "input_fields": [
            {"name": "customer_id", "type": "text", "required": True},
            {"name": "amount", "type": "number", "required": True},
            {"name": "vip", "type": "boolean", "required": False},
            {"name": "since", "type": "date", "required": False},
            {"name": "segment", "type": "choice", "choices": ["retail", "business"]},
            {"name": "extra", "type": "json", "required": False},
        ],
        "pattern": "sequential",
        "steps": [{"key": "echo", "agent_id": echo.pk}],
        "config": {},
        "triggers": [],
    }
    return publish(
        versions.WORKFLOW,
        None,
        definition,
        author=people["builder"],
        approver=people["approver"],
        name="Typed",
        team=team,
    )


def start(flow, data, people, *, who="operator", run_it=True) -> Run:
    run = runs.start(flow.published_version, data, actor=people[who], trigger=Run.Trigger.MANUAL)
    return drain(run) if run_it else run


def with_limit(flow, people, config):
    """Publish a new version of `flow` with another config (a lower round or turn limit)."""
    definition = dict(flow.published_version.definition)
    definition["config"] = config
    versions.save_draft(flow, definition, actor=people["builder"])
    versions.submit(flow, actor=people["builder"])
    pending = versions.pending_of(flow)
    versions.approve(flow, actor=people["approver"], number=pending.number)
    flow.refresh_from_db()
    return flow


def escalated(flow, data, people) -> Escalation:
    run = start(flow, data, people)
    assert run.status == Run.Status.WAITING, (run.status, run.outcome)
    return run.escalations.get(status=Escalation.Status.OPEN)
