"""The escalation inbox: who sees what, each kind resolved through the page and the run going
on, human tasks answered, htmx swaps, and the cost of the page."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from agents.models import Escalation, Run, StepRun
from tests.support.engine import drain
from tests.support.operate import (
    conflict_flow,
    escalated,
    handoff_flow,
    human_flow,
    kyc_flow,
    with_limit,
)
from tests.support.patterns import build_all

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def as_user(client, demo_people):
    def login(username):
        client.force_login(demo_people[username])
        return client

    return login


@pytest.fixture
def kyc(demo_people):
    return kyc_flow(demo_people)


def resolve(client, escalation, form, fields=None, *, htmx=False):
    data = {"form": form}
    for name, value in (fields or {}).items():
        data[f"e{escalation.pk}-{form}-{name}"] = value
    extra = HX if htmx else {}
    return client.post(f"/escalations/{escalation.pk}/resolve/", data, **extra)


def shown_ids(response) -> list[int]:
    return [card.escalation.pk for card in response.context["cards"]]


# --- Who sees what ----------------------------------------------------------------------------


def test_the_inbox_lists_only_escalations_the_user_may_resolve(as_user, kyc, demo_people):
    escalation = escalated(kyc, {"customer_id": "C1", "country": "XX", "amount": 1}, demo_people)
    assert shown_ids(as_user("operator").get("/escalations/")) == [escalation.pk]
    assert shown_ids(as_user("approver").get("/escalations/")) == [escalation.pk]
    # The builder sees the run (their team's workflow) but may not resolve its escalations.
    assert shown_ids(as_user("builder").get("/escalations/")) == []
    assert shown_ids(as_user("builder2").get("/escalations/")) == []
    assert as_user("builder2").get(f"/escalations/{escalation.pk}/").status_code == 404


def test_a_resolved_escalation_leaves_the_inbox(as_user, kyc, demo_people):
    escalation = escalated(kyc, {"customer_id": "C1", "country": "XX", "amount": 1}, demo_people)
    client = as_user("operator")
    resolve(client, escalation, "reject", {"note": "fraud suspected"})
    assert shown_ids(client.get("/escalations/")) == []
    # Its page stays, with the resolution.
    html = client.get(f"/escalations/{escalation.pk}/").content.decode()
    assert "Resolved by Olu Operator" in html
    assert "fraud suspected" in html


def test_filters_by_type_age_and_workflow(as_user, kyc, demo_people):
    low = escalated(kyc, {"customer_id": "C1", "country": "XX", "amount": 1}, demo_people)
    banding = conflict_flow(demo_people)
    conflict = escalated(banding, {"amount": 20}, demo_people)
    client = as_user("operator")
    assert shown_ids(client.get("/escalations/?kind=rule_conflict")) == [conflict.pk]
    assert shown_ids(client.get(f"/escalations/?workflow={kyc.pk}")) == [low.pk]
    assert shown_ids(client.get("/escalations/?age=1h")) == []
    Escalation.objects.filter(pk=low.pk).update(created_at=low.created_at.replace(year=2020))
    assert shown_ids(client.get("/escalations/?age=1d")) == [low.pk]
    assert shown_ids(client.get("/escalations/")) == [low.pk, conflict.pk]  # oldest first


# --- Each kind, resolved through the page ------------------------------------------------------


def test_low_confidence_approving_an_option_resumes_the_run(as_user, kyc, demo_people):
    escalation = escalated(kyc, {"customer_id": "C1", "country": "XX", "amount": 1}, demo_people)
    client = as_user("approver")
    html = client.get("/escalations/").content.decode()
    assert "Low confidence" in html
    assert 'value="0.4000"' in html  # the option's confidence
    response = resolve(client, escalation, "option", {"option": "0", "note": "known customer"})
    assert response.status_code == 302
    run = drain(escalation.run)
    assert (run.status, run.outcome, run.output) == (Run.Status.FINISHED, "completed", {"limit": 0})


def test_a_rule_conflict_shows_both_rules_and_the_chosen_one_applies(as_user, demo_people):
    escalation = escalated(conflict_flow(demo_people), {"amount": 20}, demo_people)
    client = as_user("operator")
    html = client.get(f"/escalations/{escalation.pk}/").content.decode()
    assert "input.amount &gt; 10.0" in html
    assert "input.amount &gt; 5.0" in html
    resolve(client, escalation, "option", {"option": "1"})
    assert drain(escalation.run).output == {"band": "b"}


def test_out_of_scope_decided_by_hand_resumes_the_run(as_user, kyc, demo_people):
    escalation = escalated(kyc, {"customer_id": "C1", "country": "US", "amount": 1}, demo_people)
    assert escalation.kind == "out_of_scope"
    client = as_user("operator")
    response = resolve(client, escalation, "manual", {"data-risk": "low", "decision": "pass"})
    assert response.status_code == 302, response.content.decode()[:2000]
    run = drain(escalation.run)
    assert run.output == {"limit": 10000}
    assert StepRun.objects.get(run=run, step_key="kyc").decision == "pass"


def test_missing_data_is_supplied_with_a_small_form(as_user, demo_people):
    escalation = escalated(
        handoff_flow(demo_people), {"customer_id": "C1", "amount": 5}, demo_people
    )
    assert escalation.kind == "handoff_error"
    client = as_user("operator")
    html = client.get(f"/escalations/{escalation.pk}/").content.decode()
    assert f'name="e{escalation.pk}-supply-data-risk"' in html
    assert f'name="e{escalation.pk}-supply-data-amount"' not in html  # only what is missing
    resolve(client, escalation, "supply", {"data-risk": "low"})
    assert drain(escalation.run).output == {"limit": 500}


def test_retry_runs_the_step_again(as_user, demo_people):
    escalation = escalated(conflict_flow(demo_people), {"amount": 20}, demo_people)
    resolve(as_user("operator"), escalation, "retry", {"note": "tables fixed?"})
    run = drain(escalation.run)
    assert StepRun.objects.filter(run=run, step_key="band").count() == 2
    assert run.escalations.filter(status=Escalation.Status.OPEN).count() == 1  # still in conflict


def test_rejecting_needs_a_reason_and_ends_the_run(as_user, kyc, demo_people):
    escalation = escalated(kyc, {"customer_id": "C1", "country": "XX", "amount": 1}, demo_people)
    client = as_user("operator")
    response = resolve(client, escalation, "reject", {"note": "  "})
    assert response.status_code == 200  # the form again, with its errors
    assert "give the reason for rejecting" in response.content.decode()
    escalation.refresh_from_db()
    assert escalation.status == Escalation.Status.OPEN
    resolve(client, escalation, "reject", {"note": "sanctioned country"})
    run = Run.objects.get(pk=escalation.run_id)
    assert (run.status, run.outcome) == (Run.Status.FINISHED, Run.Outcome.REJECTED)


def test_round_limit_shows_the_rounds_and_accepting_finishes(as_user, demo_people):
    flow, _, _ = build_all(demo_people)["maker_checker"]
    flow = with_limit(flow, demo_people, {"max_rounds": 1, "approve_decision": "approve"})
    escalation = escalated(flow, {"topic": "x"}, demo_people)
    assert escalation.kind == "round_limit"
    client = as_user("operator")
    html = client.get(f"/escalations/{escalation.pk}/").content.decode()
    assert "Maker-checker rounds" in html
    assert "add more detail" in html
    resolve(client, escalation, "accept")
    run = Run.objects.get(pk=escalation.run_id)
    assert (run.outcome, run.output) == (Run.Outcome.COMPLETED, {"text": "short draft"})


def test_turn_limit_shows_the_transcript_and_one_more_turn_continues(as_user, demo_people):
    flow, _, _ = build_all(demo_people)["conversation"]
    flow = with_limit(
        flow, demo_people, {"stop_condition": "last.decision == 'agreed'", "max_turns": 3}
    )
    escalation = escalated(flow, {"item": "lamp"}, demo_people)
    assert escalation.kind == "turn_limit"
    client = as_user("operator")
    html = client.get(f"/escalations/{escalation.pk}/").content.decode()
    assert "Conversation" in html
    assert "turn 3" in html
    resolve(client, escalation, "retry")
    run = drain(escalation.run)
    assert (run.outcome, run.output) == (Run.Outcome.COMPLETED, {"price": 90, "turns": 4})


def test_an_unmatched_route_is_chosen_by_a_person(as_user, demo_people):
    flow, _, _ = build_all(demo_people)["router"]
    definition = dict(flow.published_version.definition)
    definition["steps"] = [
        {**s, "when": "router.decision == 'never'"} if s.get("role") == "route" else s
        for s in definition["steps"]
    ]
    from agents import versions

    versions.save_draft(flow, definition, actor=demo_people["builder"])
    versions.submit(flow, actor=demo_people["builder"])
    versions.approve(flow, actor=demo_people["approver"], number=2)
    flow.refresh_from_db()
    escalation = escalated(flow, {"topic": "my invoice"}, demo_people)
    assert escalation.kind == "out_of_scope"
    html = as_user("operator").get(f"/escalations/{escalation.pk}/").content.decode()
    assert "Route to" in html
    option = next(i for i, o in enumerate(escalation.context["options"]) if o["route"] == "tech")
    resolve(as_user("operator"), escalation, "option", {"option": str(option)})
    assert drain(escalation.run).output == {"answer": "restart it"}


# --- Human tasks ----------------------------------------------------------------------------------


def test_a_human_task_is_answered_through_its_form(as_user, demo_people):
    task = escalated(human_flow(demo_people), {"customer_id": "C9"}, demo_people)
    assert task.kind == "human_task"
    client = as_user("builder")  # a member of the answering team
    response = client.get("/escalations/")
    assert shown_ids(response) == [task.pk]
    html = response.content.decode()
    assert "Answer for Manual review." in html  # the instructions
    assert f'name="e{task.pk}-answer-data-verdict"' in html
    assert f'type="number" name="e{task.pk}-answer-data-limit"' in html

    bad = resolve(client, task, "answer", {"data-verdict": "fine", "data-limit": "lots"}, htmx=True)
    assert bad.status_code == 200
    assert "expected a number" in bad.content.decode()
    task.refresh_from_db()
    assert task.status == Escalation.Status.OPEN

    good = resolve(client, task, "answer", {"data-verdict": "fine", "data-limit": "300"}, htmx=True)
    assert good.status_code == 200
    run = drain(task.run)
    assert run.output == {"verdict": "fine", "limit": 300}


# --- htmx -------------------------------------------------------------------------------------


def test_resolving_in_the_inbox_swaps_the_card_out_and_updates_the_badge(as_user, kyc, demo_people):
    first = escalated(kyc, {"customer_id": "C1", "country": "XX", "amount": 1}, demo_people)
    escalated(kyc, {"customer_id": "C2", "country": "XX", "amount": 1}, demo_people)
    client = as_user("operator")
    page = client.get("/escalations/").content.decode()
    assert f'hx-target="#escalation-{first.pk}"' in page
    assert 'id="nav-inbox-count" hx-get="/escalations/count/" hx-trigger="load"' in page
    badge = client.get("/escalations/count/").content.decode()
    assert re.search(r'id="nav-inbox-count">.*2', badge)
    response = resolve(client, first, "option", {"option": "0"}, htmx=True)
    html = response.content.decode()
    assert f'id="escalation-{first.pk}"' not in html
    assert re.search(r'id="nav-inbox-count" hx-swap-oob="true">.*1', html)
    assert 'id="messages"' in html
    assert "approved" in html
    assert 'id="inbox-total" hx-swap-oob="true">1<' in html


def test_errors_come_back_in_the_card_next_to_the_field(as_user, kyc, demo_people):
    escalation = escalated(kyc, {"customer_id": "C1", "country": "XX", "amount": 1}, demo_people)
    response = resolve(as_user("operator"), escalation, "option", {}, htmx=True)
    html = response.content.decode()
    assert f'id="escalation-{escalation.pk}"' in html
    assert "choose one of the options" in html


def test_an_escalation_resolved_meanwhile_disappears_with_a_message(as_user, kyc, demo_people):
    escalation = escalated(kyc, {"customer_id": "C1", "country": "XX", "amount": 1}, demo_people)
    resolve(as_user("approver"), escalation, "reject", {"note": "no"})
    response = resolve(as_user("operator"), escalation, "retry", htmx=True)
    html = response.content.decode()
    assert "already resolved" in html
    assert f'id="escalation-{escalation.pk}"' not in html


def test_viewers_who_may_not_resolve_get_403(as_user, kyc, demo_people):
    escalation = escalated(kyc, {"customer_id": "C1", "country": "XX", "amount": 1}, demo_people)
    assert as_user("builder").get(f"/escalations/{escalation.pk}/").status_code == 200
    response = resolve(as_user("builder"), escalation, "reject", {"note": "x"})
    assert response.status_code == 403
    assert resolve(as_user("builder2"), escalation, "reject", {"note": "x"}).status_code == 404


def test_markup_in_the_context_is_shown_as_text(as_user, demo_people):
    task = escalated(
        human_flow(demo_people), {"customer_id": "<img src=x onerror=alert(1)>"}, demo_people
    )
    html = as_user("operator").get("/escalations/").content.decode()
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert task.pk in [
        c.escalation.pk for c in as_user("operator").get("/escalations/").context["cards"]
    ]


def test_pages_carry_no_inline_script_or_style(as_user, kyc, demo_people):
    escalation = escalated(kyc, {"customer_id": "C1", "country": "XX", "amount": 1}, demo_people)
    for path in ("/escalations/", f"/escalations/{escalation.pk}/"):
        html = as_user("operator").get(path).content.decode()
        assert not re.search(r"\sstyle=", html), path
        assert not re.search(r"\son[a-z]+=", html), path
        assert "hx-on" not in html
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in tag


# --- Cost ---------------------------------------------------------------------------------------


def _inbox_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/escalations/")
    assert response.status_code == 200
    return len(queries)


def test_the_inbox_costs_the_same_queries_for_10_and_50_escalations(as_user, demo_people):
    flows = [conflict_flow(demo_people), human_flow(demo_people)]
    client = as_user("operator")
    for n in range(10):
        escalated(
            flows[n % 2], {"amount": 20} if n % 2 == 0 else {"customer_id": f"C{n}"}, demo_people
        )
    ten = _inbox_queries(client)
    for n in range(40):
        escalated(
            flows[n % 2], {"amount": 20} if n % 2 == 0 else {"customer_id": f"D{n}"}, demo_people
        )
    assert _inbox_queries(client) == ten


def test_a_decision_that_leads_to_no_route_is_refused_not_a_500(as_user, demo_people):
    """A router step decided by hand with a decision no route takes: the engine would escalate
    the same attempt again (one escalation per attempt), so the resolution is refused."""
    from tests.support.engine import rules_agent, workflow
    from tests.support.operate import onboarding

    team = onboarding()
    triage = rules_agent(
        "Triage",
        team,
        demo_people,
        inputs=[("topic", "text", True)],
        outputs=[("queue", "text")],
        rows=[
            {
                "condition": "input.topic.contains('invoice')",
                "outputs": {"queue": "billing"},
                "decision": "billing",
            }
        ],
    )
    desk = rules_agent(
        "Desk",
        team,
        demo_people,
        inputs=[("topic", "text", True)],
        outputs=[("answer", "text")],
        rows=[{"condition": "true", "outputs": {"answer": "done"}, "decision": "answered"}],
    )
    flow = workflow(
        "Triage flow",
        team,
        demo_people,
        pattern="router",
        inputs=[("topic", "text")],
        steps=[
            {"key": "triage", "agent_id": triage.pk, "role": "router"},
            {
                "key": "billing",
                "agent_id": desk.pk,
                "role": "route",
                "when": "router.decision == 'billing'",
            },
        ],
    )
    escalation = escalated(flow, {"topic": "the weather"}, demo_people)
    assert escalation.kind == "out_of_scope"
    client = as_user("operator")
    nowhere = resolve(client, escalation, "manual", {"data-queue": "x", "decision": "weather"})
    assert nowhere.status_code == 200
    assert "the run cannot go on with this decision" in nowhere.content.decode()
    escalation.refresh_from_db()
    assert escalation.status == Escalation.Status.OPEN
    billing = resolve(
        client, escalation, "manual", {"data-queue": "billing", "decision": "billing"}
    )
    assert billing.status_code == 302
    assert drain(escalation.run).output == {"answer": "done"}
