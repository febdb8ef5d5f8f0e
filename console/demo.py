"""Demo content of `seed_demo`: published agents of every kind and one workflow per pattern.

Everything is built through the same services builders and approvers use (create, submit,
approve by a second person), so the demo also shows the ledger trail of four-eyes publishing.
Idempotent: objects that exist already (by name) are left as they are.

What runs without any outside service: rules agents, human steps, and the http agent, which
calls Steward's own API (`/readyz` via the `demo-service` account's token) on the server that
`make run` starts. The llm agent uses STEWARD_DEMO_LLM_URL / STEWARD_DEMO_LLM_MODEL (a local
Ollama, say); without them its tries fail as "system unavailable", which the pages show as such.
"""

from __future__ import annotations

import os

from django.contrib.auth import get_user_model
from django.db import transaction

from agents import connections, versions
from agents.models import Agent, Connection, Workflow
from governance.models import Team

DEMO_BASE_URL = os.environ.get("STEWARD_DEMO_BASE_URL", "http://127.0.0.1:8000")
SERVICE_ACCOUNT = "demo-service"
POLITE = "input.reply.contains('sorry') && input.reply.contains('working day')"


def field(name, kind="text", required=True, **extra):
    return {"name": name, "type": kind, "required": required, **extra}


def _people():
    return {u.username: u for u in get_user_model().objects.all()}


def _publish(kind, name, team, definition, people, author="builder"):
    model = Agent if kind is versions.AGENT else Workflow
    existing = model.objects.filter(name=name).first()
    if existing is not None:
        return existing
    obj = versions.create(kind, actor=people[author], name=name, team=team, definition=definition)
    versions.submit(obj, actor=people[author], note="demo content")
    versions.approve(obj, actor=people["approver"], number=1, reason="demo content reviewed")
    obj.refresh_from_db()
    return obj


def _rules(
    description, inputs, outputs, rows, *, policy="first", default=None, threshold=0.0, subject=None
):
    config = {"hit_policy": policy, "rules": rows}
    if default:
        config["default"] = default
    return {
        "kind": "rules",
        "description": description,
        "input_fields": inputs,
        "output_fields": outputs,
        "confidence_threshold": threshold,
        "retry_limit": 2,
        "timeout_seconds": 10,
        "subject_field": subject,
        "config": config,
    }


def _service_token(people) -> str:
    from rest_framework.authtoken.models import Token

    user_model = get_user_model()
    account = user_model.objects.filter(username=SERVICE_ACCOUNT).first()
    if account is None:
        account = user_model.objects.create_user(
            SERVICE_ACCOUNT, first_name="Demo", last_name="service account"
        )
        account.set_unusable_password()  # API token only, never a sign-in
        account.save()
    token, _ = Token.objects.get_or_create(user=account)
    return token.key


def _connections(people, onboarding) -> tuple[Connection, Connection]:
    api = Connection.objects.filter(name="Steward API (demo)").first()
    if api is None:
        api = connections.create(
            actor=people["admin"],
            team=onboarding,
            kind=Connection.Kind.HTTP,
            name="Steward API (demo)",
            description="Steward's own API on the local server, through the demo service "
            "account's token: the http demo agent's real endpoint.",
            base_url=DEMO_BASE_URL,
            auth_method=Connection.Auth.API_KEY_HEADER,
            header_name="Authorization",
            secret=f"Token {_service_token(people)}",
            allow_internal=True,
            timeout_seconds=5,
        )
    model = Connection.objects.filter(name="Demo language model").first()
    if model is None:
        llm_url = os.environ.get("STEWARD_DEMO_LLM_URL", "")
        model = connections.create(
            actor=people["admin"],
            team=onboarding,
            kind=Connection.Kind.MODEL,
            name="Demo language model",
            description="The OpenAI-compatible endpoint named by STEWARD_DEMO_LLM_URL "
            "(e.g. a local Ollama). Not configured: tries fail as system unavailable.",
            base_url=llm_url or "http://127.0.0.1:11434/v1",
            model=os.environ.get("STEWARD_DEMO_LLM_MODEL", "llama3.2"),
            allow_internal=True,
            timeout_seconds=20,
        )
    return api, model


@transaction.atomic
def seed_definitions() -> dict[str, Workflow]:
    """Create the demo agents and workflows; returns the workflows by pattern."""
    people = _people()
    onboarding = Team.objects.get(name="Onboarding")
    support = Team.objects.get(name="Support")
    api, model = _connections(people, onboarding)
    countries = ["DE", "FR", "NL", "GB", "US", "IR", "KP"]

    kyc = _publish(
        versions.AGENT,
        "KYC screening",
        onboarding,
        _rules(
            "Screens a new customer: sanctions, politically exposed persons, documents.",
            [
                field("customer_id"),
                field("customer_name", personal=True),
                field("country", "choice", choices=countries),
                field("pep", "boolean"),
                field("documents_verified", "boolean"),
            ],
            [field("risk", "choice", choices=["low", "medium", "high"])],
            [
                {
                    "condition": "input.country in ['IR', 'KP']",
                    "outputs": {"risk": "high"},
                    "decision": "reject",
                    "confidence": 0.99,
                    "rationale": "Country under sanctions: onboarding is not allowed.",
                },
                {
                    "condition": "!input.documents_verified",
                    "outputs": {"risk": "high"},
                    "decision": "refer",
                    "confidence": 0.5,
                    "rationale": "Documents not verified: a person must look at them.",
                },
                {
                    "condition": "input.pep",
                    "outputs": {"risk": "medium"},
                    "decision": "refer",
                    "confidence": 0.8,
                    "rationale": "Politically exposed person: enhanced diligence.",
                },
                {
                    "condition": "true",
                    "outputs": {"risk": "low"},
                    "decision": "approve",
                    "confidence": 0.95,
                    "rationale": "No sanctions, no PEP, documents verified.",
                },
            ],
            threshold=0.7,
            subject="customer_id",
        ),
        people,
    )
    fraud = _publish(
        versions.AGENT,
        "Fraud screen",
        onboarding,
        _rules(
            "Flags applications whose amount is out of line with the declared income.",
            [field("amount", "number"), field("income", "number")],
            [field("fraud_flag", "boolean")],
            [
                {
                    "condition": "input.amount > input.income * 3.0",
                    "outputs": {"fraud_flag": True},
                    "decision": "flag",
                    "confidence": 0.85,
                    "rationale": "Amount above three times the yearly income.",
                }
            ],
            default={
                "outputs": {"fraud_flag": False},
                "decision": "clear",
                "confidence": 0.9,
                "rationale": "Amount in line with income.",
            },
        ),
        people,
    )
    credit = _publish(
        versions.AGENT,
        "Credit risk",
        onboarding,
        _rules(
            "Sets the credit limit from the KYC risk, the amount asked and the income.",
            [
                field("risk", "choice", choices=["low", "medium", "high"]),
                field("amount", "number"),
                field("income", "number"),
                field("fraud_flag", "boolean", required=False),
            ],
            [field("limit", "number"), field("band", "choice", choices=["A", "B", "C", "none"])],
            [
                {
                    "condition": "has(input.fraud_flag) && input.fraud_flag",
                    "outputs": {"limit": 0, "band": "none"},
                    "decision": "decline",
                    "confidence": 0.9,
                    "rationale": "Fraud screen flagged the application.",
                },
                {
                    "condition": "input.risk == 'high'",
                    "outputs": {"limit": 0, "band": "none"},
                    "decision": "decline",
                    "confidence": 0.95,
                    "rationale": "High KYC risk.",
                },
                {
                    "condition": "input.risk == 'low' && input.amount <= input.income * 0.5",
                    "outputs": {"limit": 20000, "band": "A"},
                    "decision": "approve",
                    "confidence": 0.92,
                    "rationale": "Low risk, amount within half the income.",
                },
                {
                    "condition": "input.risk == 'low' || input.risk == 'medium'",
                    "outputs": {"limit": 5000, "band": "B"},
                    "decision": "approve",
                    "confidence": 0.75,
                    "rationale": "Moderate risk or high amount: reduced limit.",
                },
            ],
        ),
        people,
    )
    underwriter = _publish(
        versions.AGENT,
        "Underwriter review",
        onboarding,
        {
            "kind": "human",
            "description": "A senior underwriter confirms or overrides the offer.",
            "input_fields": [field("customer_id"), field("limit", "number")],
            "output_fields": [
                field("verdict", "choice", choices=["confirm", "override"]),
                field("final_limit", "number"),
            ],
            "config": {
                "team_id": onboarding.pk,
                "instructions": "Check the file and confirm the proposed limit, or override "
                "it with the limit you can defend.",
            },
        },
        people,
    )
    readiness = _publish(
        versions.AGENT,
        "Platform readiness",
        onboarding,
        {
            "kind": "http",
            "description": "Asks Steward's own API whether the database and the broker answer.",
            "input_fields": [field("reason", required=False)],
            "output_fields": [field("status"), field("database")],
            "retry_limit": 2,
            "timeout_seconds": 10,
            "config": {
                "connection_id": str(api.pk),
                "method": "GET",
                "path_template": "/readyz",
                "response_mapping": {"status": "/status", "database": "/checks/database"},
                "decision_pointer": "/status",
            },
        },
        people,
    )
    _publish(
        versions.AGENT,
        "Loan officer assistant",
        onboarding,
        {
            "kind": "llm",
            "description": "Writes a short recommendation for a loan application (needs a model "
            "endpoint: STEWARD_DEMO_LLM_URL).",
            "input_fields": [field("customer_id"), field("amount", "number"), field("risk")],
            "output_fields": [field("recommendation")],
            "confidence_threshold": 0.6,
            "retry_limit": 1,
            "timeout_seconds": 30,
            "config": {
                "connection_id": str(model.pk),
                "temperature": 0.1,
                "system_prompt": "You are a careful credit officer at a retail bank.",
                "user_prompt_template": "Customer {{ customer_id }} asks for {{ amount }} "
                "EUR; KYC risk is {{ risk }}. Recommend approve, refer or decline.",
            },
        },
        people,
    )

    triage = _publish(
        versions.AGENT,
        "Ticket triage",
        support,
        _rules(
            "Routes a support ticket to the desk that answers it.",
            [field("subject"), field("body", required=False)],
            [field("queue", "choice", choices=["billing", "technical", "account"])],
            [
                {
                    "condition": "input.subject.matches('(?i)invoice|refund')",
                    "outputs": {"queue": "billing"},
                    "decision": "billing",
                    "confidence": 0.9,
                },
                {
                    "condition": "input.subject.matches('(?i)error|crash')",
                    "outputs": {"queue": "technical"},
                    "decision": "technical",
                    "confidence": 0.85,
                },
                {
                    "condition": "input.subject.matches('(?i)password')",
                    "outputs": {"queue": "account"},
                    "decision": "account",
                    "confidence": 0.9,
                },
            ],
        ),
        people,
        author="builder2",
    )
    desks = {}
    for desk, answer in (
        ("billing", "A corrected invoice is on its way; any refund follows within 5 working days."),
        ("technical", "Please update to the latest version; our engineers have the error report."),
        ("account", "Use 'Forgot password' on the sign-in page; the link is valid for 30 minutes."),
    ):
        desks[desk] = _publish(
            versions.AGENT,
            f"{desk.title()} desk",
            support,
            _rules(
                f"Answers {desk} tickets.",
                [field("subject")],
                [field("answer")],
                [
                    {
                        "condition": "true",
                        "outputs": {"answer": answer},
                        "decision": "answered",
                        "confidence": 0.9,
                    }
                ],
            ),
            people,
            author="builder2",
        )
    drafter = _publish(
        versions.AGENT,
        "Reply drafter",
        support,
        _rules(
            "Drafts a reply; with the checker's feedback it adds the apology and the next steps.",
            [field("subject"), field("feedback", required=False)],
            [field("reply")],
            [
                {
                    "condition": "!has(input.feedback)",
                    "outputs": {"reply": "We are looking into it."},
                    "decision": "drafted",
                    "confidence": 0.9,
                },
                {
                    "condition": "has(input.feedback)",
                    "outputs": {
                        "reply": "We are sorry for the trouble. We are looking into it and will "
                        "write again within one working day."
                    },
                    "decision": "drafted",
                    "confidence": 0.9,
                },
            ],
            policy="unique",
        ),
        people,
        author="builder2",
    )
    checker = _publish(
        versions.AGENT,
        "Reply checker",
        support,
        _rules(
            "Checks a reply against the tone policy: an apology and a time frame.",
            [field("reply")],
            [field("comment")],
            [
                {
                    "condition": POLITE,
                    "outputs": {"comment": "Meets the tone policy."},
                    "decision": "approve",
                    "confidence": 0.95,
                },
                {
                    "condition": f"!({POLITE})",
                    "outputs": {"comment": "Missing apology or time frame."},
                    "decision": "reject",
                    "confidence": 0.9,
                    "rationale": "Add an apology and say when we write again.",
                },
            ],
            policy="unique",
        ),
        people,
        author="builder2",
    )
    manager = _publish(
        versions.AGENT,
        "Case manager",
        support,
        _rules(
            "Plans a complex case (which specialists) and then writes the final resolution.",
            [
                field("case"),
                field("phase", required=False),
                field("specialist_outputs", "json", required=False),
            ],
            [field("specialists", "json"), field("resolution")],
            [
                {
                    "condition": "!has(input.phase) || input.phase == 'plan'",
                    "outputs": {"specialists": ["refunds", "outages"], "resolution": "in progress"},
                    "decision": "delegate",
                    "confidence": 0.9,
                },
                {
                    "condition": "has(input.phase) && input.phase == 'synthesis'",
                    "outputs": {
                        "specialists": [],
                        "resolution": "Refund approved and outage credit applied.",
                    },
                    "decision": "resolved",
                    "confidence": 0.9,
                },
            ],
            policy="unique",
        ),
        people,
        author="builder2",
    )
    refunds = _publish(
        versions.AGENT,
        "Refund specialist",
        support,
        _rules(
            "Decides on refunds.",
            [field("case")],
            [field("refund", "number")],
            [
                {
                    "condition": "true",
                    "outputs": {"refund": 49},
                    "decision": "refund",
                    "confidence": 0.9,
                }
            ],
        ),
        people,
        author="builder2",
    )
    outages = _publish(
        versions.AGENT,
        "Outage specialist",
        support,
        _rules(
            "Checks outage credits.",
            [field("case")],
            [field("credit", "number")],
            [
                {
                    "condition": "true",
                    "outputs": {"credit": 10},
                    "decision": "credit",
                    "confidence": 0.9,
                }
            ],
        ),
        people,
        author="builder2",
    )
    advocate = _publish(
        versions.AGENT,
        "Customer advocate",
        support,
        _rules(
            "Asks for a goodwill credit, lowering the ask after a counter-offer.",
            [field("counter", "number", required=False)],
            [field("ask", "number")],
            [
                {
                    "condition": "!has(input.counter)",
                    "outputs": {"ask": 100},
                    "decision": "ask",
                    "confidence": 0.9,
                },
                {
                    "condition": "has(input.counter)",
                    "outputs": {"ask": 60},
                    "decision": "ask",
                    "confidence": 0.9,
                },
            ],
            policy="unique",
        ),
        people,
        author="builder2",
    )
    guardian = _publish(
        versions.AGENT,
        "Policy guardian",
        support,
        _rules(
            "Accepts goodwill credits up to 60, counters anything above.",
            [field("ask", "number")],
            [field("counter", "number")],
            [
                {
                    "condition": "input.ask <= 60.0",
                    "outputs": {"counter": 60},
                    "decision": "agreed",
                    "confidence": 0.95,
                },
                {
                    "condition": "input.ask > 60.0",
                    "outputs": {"counter": 40},
                    "decision": "counter",
                    "confidence": 0.9,
                },
            ],
            policy="unique",
        ),
        people,
        author="builder2",
    )
    welcome = _publish(
        versions.AGENT,
        "Welcome call",
        onboarding,
        {
            "kind": "human",
            "description": "A relationship manager calls the new customer.",
            "input_fields": [field("customer_id")],
            "output_fields": [field("reached", "boolean"), field("notes")],
            "config": {
                "team_id": onboarding.pk,
                "instructions": "Call the customer, welcome them, note anything to follow up.",
            },
        },
        people,
    )

    applicant = [
        field("customer_id"),
        field("customer_name", personal=True),
        field("country", "choice", choices=countries),
        field("pep", "boolean"),
        field("documents_verified", "boolean"),
        field("amount", "number"),
        field("income", "number"),
    ]
    flows = {}
    flows["sequential"] = _publish(
        versions.WORKFLOW,
        "Customer onboarding",
        onboarding,
        {
            "description": "KYC screening, then the credit limit.",
            "input_fields": applicant,
            "subject_field": "customer_id",
            "pattern": "sequential",
            "steps": [
                {"key": "kyc", "label": "KYC screening", "agent_id": kyc.pk},
                {
                    "key": "credit",
                    "label": "Credit risk",
                    "agent_id": credit.pk,
                    "input_mapping": {"risk": "steps.kyc.output.risk"},
                },
            ],
        },
        people,
    )
    flows["concurrent"] = _publish(
        versions.WORKFLOW,
        "Parallel onboarding checks",
        onboarding,
        {
            "description": "KYC and the fraud screen at once; the credit risk joins both.",
            "input_fields": applicant,
            "subject_field": "customer_id",
            "pattern": "concurrent",
            "steps": [
                {"key": "kyc", "label": "KYC screening", "agent_id": kyc.pk},
                {"key": "fraud", "label": "Fraud screen", "agent_id": fraud.pk},
                {
                    "key": "credit",
                    "label": "Credit risk",
                    "agent_id": credit.pk,
                    "after": ["kyc", "fraud"],
                    "input_mapping": {
                        "risk": "steps.kyc.output.risk",
                        "fraud_flag": "steps.fraud.output.fraud_flag",
                    },
                },
                {
                    "key": "review",
                    "label": "Underwriter review",
                    "agent_id": underwriter.pk,
                    "after": ["credit"],
                    "input_mapping": {"limit": "steps.credit.output.limit"},
                },
            ],
        },
        people,
    )
    flows["router"] = _publish(
        versions.WORKFLOW,
        "Support ticket routing",
        support,
        {
            "description": "Triage picks the desk that answers.",
            "input_fields": [field("subject"), field("body", required=False)],
            "pattern": "router",
            "steps": [
                {
                    "key": "triage",
                    "label": "Ticket triage",
                    "agent_id": triage.pk,
                    "role": "router",
                },
                *(
                    {
                        "key": desk,
                        "label": agent.name,
                        "agent_id": agent.pk,
                        "role": "route",
                        "when": f"router.decision == '{desk}'",
                    }
                    for desk, agent in desks.items()
                ),
            ],
        },
        people,
        author="builder2",
    )
    flows["maker_checker"] = _publish(
        versions.WORKFLOW,
        "Customer reply review",
        support,
        {
            "description": "The drafter writes, the checker enforces the tone policy.",
            "input_fields": [field("subject")],
            "pattern": "maker_checker",
            "config": {"max_rounds": 3, "approve_decision": "approve"},
            "steps": [
                {
                    "key": "draft",
                    "label": "Reply drafter",
                    "agent_id": drafter.pk,
                    "role": "maker",
                    "input_mapping": {"feedback": "context.feedback"},
                },
                {
                    "key": "check",
                    "label": "Reply checker",
                    "agent_id": checker.pk,
                    "role": "checker",
                    "input_mapping": {"reply": "steps.draft.output.reply"},
                },
            ],
        },
        people,
        author="builder2",
    )
    flows["supervisor"] = _publish(
        versions.WORKFLOW,
        "Complex case handling",
        support,
        {
            "description": "The case manager delegates to specialists and writes the resolution.",
            "input_fields": [field("case")],
            "pattern": "supervisor",
            "config": {"selection_field": "specialists"},
            "steps": [
                {
                    "key": "manager",
                    "label": "Case manager",
                    "agent_id": manager.pk,
                    "role": "manager",
                    "input_mapping": {
                        "phase": "context.phase",
                        "specialist_outputs": "context.specialist_outputs",
                    },
                },
                {
                    "key": "refunds",
                    "label": "Refund specialist",
                    "agent_id": refunds.pk,
                    "role": "specialist",
                },
                {
                    "key": "outages",
                    "label": "Outage specialist",
                    "agent_id": outages.pk,
                    "role": "specialist",
                },
            ],
        },
        people,
        author="builder2",
    )
    flows["conversation"] = _publish(
        versions.WORKFLOW,
        "Goodwill credit negotiation",
        support,
        {
            "description": "The advocate and the policy guardian agree on a goodwill credit.",
            "input_fields": [field("case")],
            "pattern": "conversation",
            "config": {"stop_condition": "last.decision == 'agreed'", "max_turns": 6},
            "steps": [
                {
                    "key": "advocate",
                    "label": "Customer advocate",
                    "agent_id": advocate.pk,
                    "role": "participant",
                    "input_mapping": {"counter": "steps.guardian.output.counter"},
                },
                {
                    "key": "guardian",
                    "label": "Policy guardian",
                    "agent_id": guardian.pk,
                    "role": "participant",
                    "input_mapping": {"ask": "steps.advocate.output.ask"},
                },
            ],
        },
        people,
        author="builder2",
    )
    flows["event_driven"] = _publish(
        versions.WORKFLOW,
        "Platform readiness watch",
        onboarding,
        {
            "description": "Every hour, and on a signed webhook, asks Steward's API whether it is "
            "ready.",
            "input_fields": [field("reason", required=False)],
            "pattern": "sequential",
            "steps": [
                {"key": "readiness", "label": "Platform readiness", "agent_id": readiness.pk}
            ],
            "triggers": [
                {"type": "webhook", "run_as": "operator"},
                {
                    "type": "schedule",
                    "every_minutes": 60,
                    "input": {"reason": "hourly check"},
                    "run_as": "operator",
                },
            ],
        },
        people,
    )
    flows["follow_up"] = _publish(
        versions.WORKFLOW,
        "Welcome call after onboarding",
        onboarding,
        {
            "description": "Starts when 'Customer onboarding' completes: a person calls.",
            "input_fields": [field("customer_id")],
            "pattern": "sequential",
            "steps": [{"key": "call", "label": "Welcome call", "agent_id": welcome.pk}],
            "triggers": [
                {
                    "type": "workflow",
                    "workflow_id": flows["sequential"].pk,
                    "outcome": "completed",
                    "run_as": "operator",
                }
            ],
        },
        people,
    )
    return flows


SAMPLE_INPUTS = {
    "sequential": [
        {
            "customer_id": "C-1001",
            "customer_name": "Jane Roe",
            "country": "DE",
            "pep": False,
            "documents_verified": True,
            "amount": 8000,
            "income": 52000,
        },
        {
            "customer_id": "C-1002",
            "customer_name": "Ivan Petrov",
            "country": "IR",
            "pep": False,
            "documents_verified": True,
            "amount": 5000,
            "income": 30000,
        },
        {
            "customer_id": "C-1003",
            "customer_name": "Li Wei",
            "country": "FR",
            "pep": False,
            "documents_verified": False,
            "amount": 12000,
            "income": 41000,
        },
    ],
    "concurrent": [
        {
            "customer_id": "C-2001",
            "customer_name": "Ana Silva",
            "country": "NL",
            "pep": True,
            "documents_verified": True,
            "amount": 15000,
            "income": 60000,
        },
        {
            "customer_id": "C-2002",
            "customer_name": "Tom Baker",
            "country": "GB",
            "pep": False,
            "documents_verified": True,
            "amount": 200000,
            "income": 40000,
        },
    ],
    "router": [
        {"subject": "Refund for invoice 2026-118"},
        {"subject": "App crash when exporting"},
        {"subject": "Password reset link expired"},
        {"subject": "Question about the weather"},
    ],
    "maker_checker": [{"subject": "Late delivery"}],
    "supervisor": [{"case": "Double charge during the October outage"}],
    "conversation": [{"case": "Customer asks for compensation"}],
    "event_driven": [{"reason": "demo"}],
}


def start_demo_runs(flows: dict[str, Workflow], count: int) -> int:
    """Start `count` runs of each demo workflow (not the follow-up: its trigger starts it)."""
    from agents.engine import runs
    from agents.models import Run

    operator = get_user_model().objects.get(username="operator")
    started = 0
    for pattern, samples in SAMPLE_INPUTS.items():
        flow = flows[pattern]
        for index in range(count):
            runs.start(
                flow.published_version,
                samples[index % len(samples)],
                actor=operator,
                trigger=Run.Trigger.DEMO,
            )
            started += 1
    return started
