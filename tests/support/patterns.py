"""One small published workflow per orchestration pattern, built from rules agents only, so
it runs with no outside service. Used by the engine's unit and integration tests."""

from __future__ import annotations

from governance.models import Team
from tests.support.engine import rules_agent, workflow


def _agent(name, team, people, inputs, outputs, rows, **kwargs):
    return rules_agent(name, team, people, inputs=inputs, outputs=outputs, rows=rows, **kwargs)


def build_all(people) -> dict:
    """{pattern: (workflow, sample input, expected output)}"""
    team = Team.objects.get(name="Onboarding")
    score = _agent(
        "Score",
        team,
        people,
        [("amount", "number", True)],
        [("score", "number")],
        [
            {
                "condition": "input.amount > 0.0",
                "outputs": {"score": 7},
                "decision": "scored",
                "confidence": 0.9,
            }
        ],
    )
    check = _agent(
        "Check",
        team,
        people,
        [("amount", "number", True)],
        [("flag", "text")],
        [
            {"condition": "input.amount < 1000.0", "outputs": {"flag": "small"}, "decision": "ok"},
            {"condition": "input.amount >= 1000.0", "outputs": {"flag": "large"}, "decision": "ok"},
        ],
    )
    combine = _agent(
        "Combine",
        team,
        people,
        [("score", "number", True), ("flag", "text", True)],
        [("verdict", "text")],
        [
            {
                "condition": "input.score > 5.0 && input.flag == 'small'",
                "outputs": {"verdict": "accept"},
                "decision": "accept",
            }
        ],
        default={"outputs": {"verdict": "refer"}, "decision": "refer"},
    )
    classify = _agent(
        "Classify",
        team,
        people,
        [("topic", "text", True)],
        [("queue", "text")],
        [
            {
                "condition": "input.topic.contains('invoice')",
                "outputs": {"queue": "billing"},
                "decision": "billing",
            },
            {
                "condition": "!input.topic.contains('invoice')",
                "outputs": {"queue": "tech"},
                "decision": "tech",
            },
        ],
        policy="unique",
    )
    billing = _agent(
        "Billing desk",
        team,
        people,
        [("topic", "text", True)],
        [("answer", "text")],
        [{"condition": "true", "outputs": {"answer": "refund issued"}, "decision": "answered"}],
    )
    tech = _agent(
        "Tech desk",
        team,
        people,
        [("topic", "text", True)],
        [("answer", "text")],
        [{"condition": "true", "outputs": {"answer": "restart it"}, "decision": "answered"}],
    )
    maker = _agent(
        "Writer",
        team,
        people,
        [("topic", "text", True), ("feedback", "text", False)],
        [("text", "text")],
        [
            {
                "condition": "!has(input.feedback)",
                "outputs": {"text": "short draft"},
                "decision": "drafted",
            },
            {
                "condition": "has(input.feedback)",
                "outputs": {"text": "long draft"},
                "decision": "drafted",
            },
        ],
        policy="unique",
    )
    checker = _agent(
        "Checker",
        team,
        people,
        [("text", "text", True)],
        [("comment", "text")],
        [
            {
                "condition": "input.text == 'long draft'",
                "outputs": {"comment": "good"},
                "decision": "approve",
            },
            {
                "condition": "input.text != 'long draft'",
                "outputs": {"comment": "thin"},
                "decision": "reject",
                "rationale": "add more detail",
            },
        ],
        policy="unique",
    )
    manager = _agent(
        "Manager",
        team,
        people,
        [("case", "text", True), ("phase", "text", False), ("specialist_outputs", "json", False)],
        [("specialists", "json"), ("summary", "text")],
        [
            {
                "condition": "!has(input.phase) || input.phase == 'plan'",
                "outputs": {"specialists": ["risk"], "summary": "planning"},
                "decision": "delegate",
            },
            {
                "condition": "has(input.phase) && input.phase == 'synthesis'",
                "outputs": {"specialists": [], "summary": "risk reviewed"},
                "decision": "final",
            },
        ],
        policy="unique",
    )
    specialist = _agent(
        "Risk specialist",
        team,
        people,
        [("case", "text", True)],
        [("risk", "text")],
        [{"condition": "true", "outputs": {"risk": "low"}, "decision": "low"}],
    )
    buyer = _agent(
        "Buyer",
        team,
        people,
        [("price", "number", False)],
        [("offer", "number")],
        [
            {"condition": "!has(input.price)", "outputs": {"offer": 80}, "decision": "offer"},
            {"condition": "has(input.price)", "outputs": {"offer": 90}, "decision": "offer"},
        ],
        policy="unique",
    )
    seller = _agent(
        "Seller",
        team,
        people,
        [("offer", "number", True)],
        [("price", "number")],
        [
            {"condition": "input.offer >= 90.0", "outputs": {"price": 90}, "decision": "agreed"},
            {"condition": "input.offer < 90.0", "outputs": {"price": 100}, "decision": "counter"},
        ],
        policy="unique",
    )
    flows = {}
    flows["sequential"] = (
        workflow(
            "Seq",
            team,
            people,
            pattern="sequential",
            inputs=[("amount", "number")],
            steps=[{"key": "score", "agent_id": score.pk}, {"key": "check", "agent_id": check.pk}],
        ),
        {"amount": 10},
        {"flag": "small"},
    )
    flows["concurrent"] = (
        workflow(
            "Fan",
            team,
            people,
            pattern="concurrent",
            inputs=[("amount", "number")],
            steps=[
                {"key": "score", "agent_id": score.pk},
                {"key": "check", "agent_id": check.pk},
                {
                    "key": "combine",
                    "agent_id": combine.pk,
                    "after": ["score", "check"],
                    "input_mapping": {
                        "score": "steps.score.output.score",
                        "flag": "steps.check.output.flag",
                    },
                },
            ],
        ),
        {"amount": 10},
        {"verdict": "accept"},
    )
    flows["router"] = (
        workflow(
            "Route",
            team,
            people,
            pattern="router",
            inputs=[("topic", "text")],
            steps=[
                {"key": "classify", "agent_id": classify.pk, "role": "router"},
                {
                    "key": "billing",
                    "agent_id": billing.pk,
                    "role": "route",
                    "when": "router.decision == 'billing'",
                },
                {
                    "key": "tech",
                    "agent_id": tech.pk,
                    "role": "route",
                    "when": "router.decision == 'tech'",
                },
            ],
        ),
        {"topic": "my invoice is wrong"},
        {"answer": "refund issued"},
    )
    flows["maker_checker"] = (
        workflow(
            "Write",
            team,
            people,
            pattern="maker_checker",
            inputs=[("topic", "text")],
            steps=[
                {
                    "key": "write",
                    "agent_id": maker.pk,
                    "role": "maker",
                    "input_mapping": {"feedback": "context.feedback"},
                },
                {
                    "key": "review",
                    "agent_id": checker.pk,
                    "role": "checker",
                    "input_mapping": {"text": "steps.write.output.text"},
                },
            ],
            config={"max_rounds": 3},
        ),
        {"topic": "pricing"},
        {"text": "long draft", "checked_by": "review", "rounds": 2},
    )
    flows["supervisor"] = (
        workflow(
            "Supervise",
            team,
            people,
            pattern="supervisor",
            inputs=[("case", "text")],
            steps=[
                {
                    "key": "lead",
                    "agent_id": manager.pk,
                    "role": "manager",
                    "input_mapping": {
                        "phase": "context.phase",
                        "specialist_outputs": "context.specialist_outputs",
                    },
                },
                {"key": "risk", "agent_id": specialist.pk, "role": "specialist"},
            ],
        ),
        {"case": "loan 42"},
        {"specialists": [], "summary": "risk reviewed"},
    )
    flows["conversation"] = (
        workflow(
            "Haggle",
            team,
            people,
            pattern="conversation",
            inputs=[("item", "text")],
            steps=[
                {
                    "key": "buyer",
                    "agent_id": buyer.pk,
                    "role": "participant",
                    "input_mapping": {"price": "steps.seller.output.price"},
                },
                {
                    "key": "seller",
                    "agent_id": seller.pk,
                    "role": "participant",
                    "input_mapping": {"offer": "steps.buyer.output.offer"},
                },
            ],
            config={"stop_condition": "last.decision == 'agreed'", "max_turns": 6},
        ),
        {"item": "chair"},
        {"price": 90, "turns": 4},
    )
    return flows
