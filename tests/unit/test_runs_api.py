"""The runs and escalations API: start, list, retrieve, cancel, the inbox and resolving."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from agents.models import Escalation, Run
from tests.support.engine import drain, rules_agent, workflow
from tests.support.operate import (
    conflict_flow,
    escalated,
    handoff_flow,
    human_flow,
    kyc_flow,
    onboarding,
    start,
)

pytestmark = pytest.mark.django_db

GOOD = {"customer_id": "C1", "country": "DE", "amount": 10}
UNSURE = {"customer_id": "C1", "country": "XX", "amount": 10}


@pytest.fixture
def api(demo_people):
    def as_user(username):
        client = APIClient()
        client.force_authenticate(demo_people[username])
        return client

    return as_user


@pytest.fixture
def kyc(demo_people):
    return kyc_flow(demo_people)


# --- Starting -----------------------------------------------------------------------------------


def test_an_operator_starts_a_run(api, kyc):
    response = api("operator").post(
        f"/api/v1/workflows/{kyc.pk}/runs/", {"input": GOOD}, format="json"
    )
    assert response.status_code == 201, response.content
    run = Run.objects.get()
    body = response.json()
    assert body["id"] == str(run.pk)
    assert response["Location"].endswith(f"/api/v1/runs/{run.pk}/")
    assert (body["status"], body["trigger"], body["started_by"]) == ("running", "api", "operator")
    assert [s["step_key"] for s in body["steps"]] == ["kyc"]


def test_bad_input_answers_400_naming_the_fields_and_starts_nothing(api, kyc):
    response = api("operator").post(
        f"/api/v1/workflows/{kyc.pk}/runs/",
        {"input": {"customer_id": "C1", "amount": "lots"}},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["input.country"] == ["this field is required"]
    assert "expected a number" in response.json()["input.amount"][0]
    assert not Run.objects.exists()


@pytest.mark.parametrize("body", [{"input": []}, {"input": "x"}])
def test_input_must_be_an_object(api, kyc, body):
    response = api("operator").post(f"/api/v1/workflows/{kyc.pk}/runs/", body, format="json")
    assert response.status_code == 400
    assert "input" in response.json()


def test_nan_is_refused_at_the_door(api, kyc):
    response = api("operator").post(
        f"/api/v1/workflows/{kyc.pk}/runs/",
        data='{"input": {"customer_id": "C1", "country": "DE", "amount": NaN}}',
        content_type="application/json",
    )
    assert response.status_code == 400
    assert not Run.objects.exists()


@pytest.mark.parametrize("amount", ["NaN", "inf"])
def test_numbers_that_are_not_finite_are_400(api, kyc, amount):
    response = api("operator").post(
        f"/api/v1/workflows/{kyc.pk}/runs/",
        {"input": {"customer_id": "C1", "country": "DE", "amount": amount}},
        format="json",
    )
    assert response.status_code == 400
    assert "finite" in response.json()["input.amount"][0]
    assert not Run.objects.exists()


def test_the_start_answer_is_the_run_as_a_read_gives_it(api, kyc):
    """The answer is built from what start wrote, not read back: it must say what a GET of the
    same run says (no worker has run a step yet here)."""
    client = api("operator")
    started = client.post(f"/api/v1/workflows/{kyc.pk}/runs/", {"input": GOOD}, format="json")
    assert started.status_code == 201, started.content
    read = client.get(started["Location"])
    assert started.json() == read.json()


def test_a_run_escalating_at_start_answers_with_its_escalation(api, demo_people):
    """The first step's input fails its agent's fields at once: the answer shows the step
    escalated with its escalation, as a read does."""
    team = onboarding()
    strict = rules_agent(
        "Strict",
        team,
        demo_people,
        inputs=[("customer_id", "text", True), ("amount", "number", True)],
        outputs=[("ok", "text")],
        rows=[{"condition": "true", "outputs": {"ok": "y"}, "decision": "ok"}],
    )
    flow = workflow(
        "Escalates at once",
        team,
        demo_people,
        pattern="sequential",
        inputs=[("customer_id", "text"), ("amount", "text")],  # not a number for the agent
        steps=[{"key": "strict", "agent_id": strict.pk}],
    )
    client = api("operator")
    started = client.post(
        f"/api/v1/workflows/{flow.pk}/runs/",
        {"input": {"customer_id": "C1", "amount": "lots"}},
        format="json",
    )
    assert started.status_code == 201, started.content
    body = started.json()
    assert body["steps"][0]["status"] == "escalated"
    assert body["steps"][0]["escalation"]["kind"] == "data_missing"
    assert body == client.get(started["Location"]).json()


def test_starting_a_run_takes_a_fixed_number_of_queries(api, kyc):
    """Workflow, permissions with roles, then the start's transaction (permission, run, agent
    version, step, ledger): no read-back of what was just written."""
    client = api("operator")
    url = f"/api/v1/workflows/{kyc.pk}/runs/"
    client.post(url, {"input": GOOD}, format="json")
    with CaptureQueriesContext(connection) as queries:
        assert client.post(url, {"input": GOOD}, format="json").status_code == 201
    statements = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert len(statements) <= 7, "\n".join(statements)


def test_who_may_start_a_run(api, kyc):
    url = f"/api/v1/workflows/{kyc.pk}/runs/"
    assert api("builder2").post(url, {"input": GOOD}, format="json").status_code == 404
    refused = api("approver").post(url, {"input": GOOD}, format="json")
    assert refused.status_code == 403
    assert "may not run" in refused.json()["detail"]
    assert APIClient().post(url, {"input": GOOD}, format="json").status_code in (401, 403)
    assert not Run.objects.exists()


# --- Reading --------------------------------------------------------------------------------------


def test_a_run_reads_with_its_steps(api, kyc, demo_people):
    run = start(kyc, GOOD, demo_people)
    body = api("operator").get(f"/api/v1/runs/{run.pk}/").json()
    assert (body["status"], body["outcome"], body["output"]) == (
        "finished",
        "completed",
        {"limit": 10000},
    )
    kyc_step = body["steps"][0]
    assert (kyc_step["step_key"], kyc_step["decision"], kyc_step["confidence"]) == (
        "kyc",
        "pass",
        0.95,
    )
    assert kyc_step["decision_record_url"].endswith(
        f"/api/v1/decisions/{kyc_step['decision_seq']}/"
    )
    assert body["duration_ms"] is not None


def test_runs_of_other_teams_are_404_and_absent_from_lists(api, kyc, demo_people):
    run = start(kyc, GOOD, demo_people)
    assert api("builder2").get(f"/api/v1/runs/{run.pk}/").status_code == 404
    assert api("builder2").get("/api/v1/runs/").json()["results"] == []
    assert api("builder2").post(f"/api/v1/runs/{run.pk}/cancel/").status_code == 404
    assert api("operator").get("/api/v1/runs/not-a-uuid/").status_code == 404


def test_the_list_filters_and_refuses_bad_values(api, kyc, demo_people):
    done = start(kyc, GOOD, demo_people)
    waiting = start(kyc, UNSURE, demo_people)
    client = api("operator")

    def ids(query):
        response = client.get("/api/v1/runs/" + query)
        assert response.status_code == 200, response.content
        return [r["id"] for r in response.json()["results"]]

    assert ids("") == [str(waiting.pk), str(done.pk)]
    assert ids("?status=waiting") == [str(waiting.pk)]
    assert ids("?outcome=completed") == [str(done.pk)]
    assert ids(f"?workflow={kyc.pk}") == [str(waiting.pk), str(done.pk)]
    for query, field in (("?status=lost", "status"), ("?workflow=x", "workflow")):
        response = client.get("/api/v1/runs/" + query)
        assert response.status_code == 400
        assert field in response.json()


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


def test_lists_cost_the_same_queries_for_10_and_50_rows(api, demo_people):
    flow = conflict_flow(demo_people)
    client = api("operator")
    for _ in range(10):
        escalated(flow, {"amount": 20}, demo_people)
    runs_ten = _queries(client, "/api/v1/runs/")
    escalations_ten = _queries(client, "/api/v1/escalations/")
    for _ in range(40):
        escalated(flow, {"amount": 20}, demo_people)
    assert _queries(client, "/api/v1/runs/") == runs_ten
    assert _queries(client, "/api/v1/escalations/") == escalations_ten


# --- Cancelling ---------------------------------------------------------------------------------


def test_cancel(api, kyc, demo_people):
    run = start(kyc, UNSURE, demo_people)
    refused = api("builder").post(f"/api/v1/runs/{run.pk}/cancel/", {"reason": "x"}, format="json")
    assert refused.status_code == 403
    response = api("operator").post(
        f"/api/v1/runs/{run.pk}/cancel/", {"reason": "duplicate"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["outcome"] == "cancelled"
    again = api("operator").post(f"/api/v1/runs/{run.pk}/cancel/", format="json")
    assert again.status_code == 409
    assert "run" in again.json()


# --- Escalations ----------------------------------------------------------------------------------


def test_the_inbox_lists_what_you_may_resolve_and_all_what_you_may_see(api, kyc, demo_people):
    escalation = escalated(kyc, UNSURE, demo_people)
    mine = api("operator").get("/api/v1/escalations/").json()["results"]
    assert [e["id"] for e in mine] == [escalation.pk]
    assert mine[0]["kind"] == "low_confidence"
    assert mine[0]["context"]["options"][0]["confidence"] == 0.4
    assert set(mine[0]["actions"]) == {"approve", "retry", "reject"}
    # The builder may view the run but not resolve: nothing in the inbox, all of it with all=1.
    assert api("builder").get("/api/v1/escalations/").json()["results"] == []
    viewable = api("builder").get("/api/v1/escalations/?all=1").json()["results"]
    assert [e["id"] for e in viewable] == [escalation.pk]
    assert api("builder2").get("/api/v1/escalations/?all=1").json()["results"] == []
    assert api("builder2").get(f"/api/v1/escalations/{escalation.pk}/").status_code == 404
    assert api("builder").get(f"/api/v1/escalations/{escalation.pk}/").status_code == 200
    assert api("operator").get("/api/v1/escalations/?kind=nope").status_code == 400


def test_approving_an_option_through_the_api_resumes_the_run(api, kyc, demo_people):
    escalation = escalated(kyc, UNSURE, demo_people)
    response = api("approver").post(
        f"/api/v1/escalations/{escalation.pk}/resolve/",
        {"action": "approve", "option": 0, "note": "known customer"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "resolved"
    assert response.json()["resolved_by"] == "approver"
    run = drain(Run.objects.get(pk=escalation.run_id))
    assert (run.outcome, run.output) == ("completed", {"limit": 0})


def test_supplying_data_through_the_api(api, demo_people):
    escalation = escalated(
        handoff_flow(demo_people), {"customer_id": "C1", "amount": 5}, demo_people
    )
    client = api("operator")
    url = f"/api/v1/escalations/{escalation.pk}/resolve/"
    missing = client.post(url, {"action": "supply"}, format="json")
    assert missing.status_code == 400
    assert "data" in missing.json()
    assert (
        client.post(url, {"action": "supply", "data": {"risk": "low"}}, format="json").status_code
        == 200
    )
    assert drain(Run.objects.get(pk=escalation.run_id)).output == {"limit": 500}


def test_answering_a_human_task_through_the_api(api, demo_people):
    task = escalated(human_flow(demo_people), {"customer_id": "C9"}, demo_people)
    client = api("builder")
    url = f"/api/v1/escalations/{task.pk}/resolve/"
    bad = client.post(
        url, {"action": "approve", "data": {"verdict": "ok", "limit": "x"}}, format="json"
    )
    assert bad.status_code == 400
    assert "data" in bad.json()
    good = client.post(
        url, {"action": "approve", "data": {"verdict": "ok", "limit": 5}}, format="json"
    )
    assert good.status_code == 200
    assert drain(Run.objects.get(pk=task.run_id)).output == {"verdict": "ok", "limit": 5}


def test_resolve_errors_name_the_field(api, kyc, demo_people):
    escalation = escalated(kyc, UNSURE, demo_people)
    client = api("operator")
    url = f"/api/v1/escalations/{escalation.pk}/resolve/"
    cases = [
        ({"action": "approve", "option": 7}, "option"),
        ({"action": "approve"}, "option"),
        ({"action": "reject"}, "note"),
        ({"action": "explode"}, "action"),
        ({"action": "approve", "option": "first"}, "option"),
    ]
    for body, field in cases:
        response = client.post(url, body, format="json")
        assert response.status_code == 400, (body, response.content)
        assert field in response.json(), (body, response.json())
    escalation.refresh_from_db()
    assert escalation.status == Escalation.Status.OPEN


def test_resolving_needs_the_right_and_only_once(api, kyc, demo_people):
    escalation = escalated(kyc, UNSURE, demo_people)
    url = f"/api/v1/escalations/{escalation.pk}/resolve/"
    refused = api("builder").post(url, {"action": "reject", "note": "x"}, format="json")
    assert refused.status_code == 403
    assert "may not resolve" in refused.json()["detail"]
    assert (
        api("builder2").post(url, {"action": "reject", "note": "x"}, format="json").status_code
        == 404
    )
    assert (
        api("operator").post(url, {"action": "reject", "note": "x"}, format="json").status_code
        == 200
    )
    again = api("operator").post(url, {"action": "retry"}, format="json")
    assert again.status_code == 409
    assert "escalation" in again.json()


# --- Schema ---------------------------------------------------------------------------------------


def test_the_schema_documents_runs_and_escalations_without_warnings():
    GENERATOR_STATS.reset()
    schema = SchemaGenerator().get_schema(request=None, public=True)
    messages = [*GENERATOR_STATS._warn_cache, *GENERATOR_STATS._error_cache]
    words = ("run", "escalation", "step", "status", "outcome", "action")
    mine = [m for m in messages if any(w in m.lower() for w in words)]
    assert not mine, mine
    paths = schema["paths"]
    for path in (
        "/api/v1/runs/",
        "/api/v1/runs/{id}/",
        "/api/v1/runs/{id}/cancel/",
        "/api/v1/workflows/{id}/runs/",
        "/api/v1/escalations/",
        "/api/v1/escalations/{id}/",
        "/api/v1/escalations/{id}/resolve/",
    ):
        assert path in paths, path
    names = {p["name"] for p in paths["/api/v1/escalations/"]["get"]["parameters"]}
    assert {"all", "kind", "status", "workflow", "cursor"} <= names
