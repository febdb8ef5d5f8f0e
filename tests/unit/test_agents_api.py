"""`/api/v1/agents/`: the same services and rules as the pages, answered in JSON.

Errors name the field (400), permission and four-eyes refusals give the reason (403), an
agent the caller may not see (or act on) is a 404, and the schema generates without warnings."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from agents import versions
from agents.models import Agent, AgentVersion, VersionStatus
from governance.models import DecisionRecord, Team
from tests.agent_factories import human_definition, make_agent, publish, rules_definition

pytestmark = pytest.mark.django_db


@pytest.fixture
def onboarding(demo_people):
    return Team.objects.get(name="Onboarding")


@pytest.fixture
def agent(demo_people, onboarding):
    return make_agent(demo_people["builder"], onboarding)


@pytest.fixture
def api():
    return APIClient()


def as_user(api, user):
    api.force_authenticate(user)
    return api


# --- Reading ------------------------------------------------------------------------------------


def test_the_list_shows_versions_and_status(api, demo_people, agent):
    publish(agent, demo_people["builder"], demo_people["approver"])
    versions.save_draft(agent, rules_definition(description="v2"), actor=demo_people["builder"])
    body = as_user(api, demo_people["builder"]).get("/api/v1/agents/").json()
    (row,) = body["results"]
    assert row["name"] == "Credit limit"
    assert (row["published_version"], row["draft_version"], row["pending_version"]) == (1, 2, None)


def test_retrieve_carries_the_definitions(api, demo_people, agent):
    body = as_user(api, demo_people["builder"]).get(f"/api/v1/agents/{agent.pk}/").json()
    assert body["draft"]["number"] == 1
    assert body["draft"]["definition"]["kind"] == "rules"
    assert body["published"] is None


def test_the_list_costs_the_same_queries_for_10_and_100_agents(api, demo_people, onboarding):
    builder = demo_people["builder"]
    as_user(api, builder)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert api.get("/api/v1/agents/?page_size=500").status_code == 200
        return len(queries)

    for n in range(10):
        make_agent(builder, onboarding, name=f"Agent {n}")
    ten = count()
    for n in range(10, 100):
        make_agent(builder, onboarding, name=f"Agent {n}")
    assert count() == ten


def test_versions_and_diff(api, demo_people, agent):
    publish(agent, demo_people["builder"], demo_people["approver"])
    versions.save_draft(agent, rules_definition(description="new"), actor=demo_people["builder"])
    as_user(api, demo_people["builder"])
    numbers = [v["number"] for v in api.get(f"/api/v1/agents/{agent.pk}/versions/").json()]
    assert numbers == [2, 1]
    body = api.get(f"/api/v1/agents/{agent.pk}/diff/").json()
    assert (body["before"], body["after"]) == (1, 2)
    assert body["changes"] == [
        {"path": "description", "before": rules_definition()["description"], "after": "new"}
    ]
    assert api.get(f"/api/v1/agents/{agent.pk}/diff/?from=9").status_code == 400


# --- Writing ------------------------------------------------------------------------------------


def test_create_update_submit_approve(api, demo_people, onboarding):
    as_user(api, demo_people["builder"])
    response = api.post(
        "/api/v1/agents/",
        {"name": "Limits", "team": onboarding.pk, "definition": rules_definition()},
        format="json",
    )
    assert response.status_code == 201, response.content
    pk = response.json()["id"]
    response = api.put(
        f"/api/v1/agents/{pk}/",
        {"definition": rules_definition(description="tuned")},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["draft"]["definition"]["description"] == "tuned"
    response = api.post(f"/api/v1/agents/{pk}/submit/", {"note": "ready"}, format="json")
    assert response.json()["status"] == "submitted"
    as_user(api, demo_people["approver"])
    response = api.post(f"/api/v1/agents/{pk}/approve/", {"version": 1}, format="json")
    assert response.status_code == 200, response.content
    assert Agent.objects.get(pk=pk).published_version.number == 1


def test_an_invalid_definition_is_a_400_naming_the_path_and_saves_nothing(api, demo_people, agent):
    definition = rules_definition()
    definition["config"]["rules"][1]["condition"] = "input.amount >"
    before = versions.draft_of(agent).definition
    response = as_user(api, demo_people["builder"]).put(
        f"/api/v1/agents/{agent.pk}/", {"definition": definition}, format="json"
    )
    assert response.status_code == 400
    assert list(response.json()) == ["config.rules[1].condition"]
    assert versions.draft_of(agent).definition == before


def test_an_unknown_kind_is_a_400(api, demo_people, onboarding):
    response = as_user(api, demo_people["builder"]).post(
        "/api/v1/agents/",
        {"name": "X", "team": onboarding.pk, "definition": {"kind": "oracle"}},
        format="json",
    )
    assert response.status_code == 400
    assert "kind" in response.json()
    assert not Agent.objects.exists()


def test_the_kind_never_changes(api, demo_people, onboarding, agent):
    response = as_user(api, demo_people["builder"]).put(
        f"/api/v1/agents/{agent.pk}/",
        {"definition": human_definition(onboarding)},
        format="json",
    )
    assert response.status_code == 400
    assert "kind" in response.json()


def test_a_published_version_cannot_be_modified_through_the_api(api, demo_people, agent):
    publish(agent, demo_people["builder"], demo_people["approver"])
    published = AgentVersion.objects.get(agent=agent, number=1)
    frozen = dict(published.definition)
    response = as_user(api, demo_people["builder"]).put(
        f"/api/v1/agents/{agent.pk}/",
        {"definition": rules_definition(description="sneaky edit")},
        format="json",
    )
    assert response.status_code == 200
    published.refresh_from_db()
    assert published.definition == frozen
    assert published.status == VersionStatus.PUBLISHED
    assert response.json()["draft"]["number"] == 2
    assert response.json()["published"]["definition"]["description"] != "sneaky edit"


def test_submitting_without_a_draft_is_a_400_naming_the_version(api, demo_people, agent):
    publish(agent, demo_people["builder"], demo_people["approver"])
    response = as_user(api, demo_people["builder"]).post(
        f"/api/v1/agents/{agent.pk}/submit/", {}, format="json"
    )
    assert response.status_code == 400
    assert "version" in response.json()


def test_the_author_cannot_approve_their_own_version(api, demo_people, onboarding):
    admin = demo_people["admin"]
    agent = make_agent(admin, onboarding)
    versions.submit(agent, actor=admin)
    response = as_user(api, admin).post(
        f"/api/v1/agents/{agent.pk}/approve/", {"version": 1}, format="json"
    )
    assert response.status_code == 403
    assert "four-eyes" in response.json()["detail"]
    agent.refresh_from_db()
    assert agent.published_version is None


def test_a_builder_without_publish_gets_404_on_approve(api, demo_people, agent):
    versions.submit(agent, actor=demo_people["builder"])
    response = as_user(api, demo_people["builder"]).post(
        f"/api/v1/agents/{agent.pk}/approve/", {"version": 1}, format="json"
    )
    assert response.status_code == 404


def test_reject_needs_a_reason(api, demo_people, agent):
    versions.submit(agent, actor=demo_people["builder"])
    as_user(api, demo_people["approver"])
    response = api.post(f"/api/v1/agents/{agent.pk}/reject/", {"version": 1}, format="json")
    assert response.status_code == 400
    assert "reason" in response.json()
    response = api.post(
        f"/api/v1/agents/{agent.pk}/reject/", {"version": 1, "reason": "no"}, format="json"
    )
    assert response.json()["status"] == "rejected"


def test_withdraw_and_rollback(api, demo_people, agent):
    builder, approver = demo_people["builder"], demo_people["approver"]
    publish(agent, builder, approver)
    versions.save_draft(agent, rules_definition(description="v2"), actor=builder)
    publish(agent, builder, approver)
    as_user(api, builder)
    response = api.post(f"/api/v1/agents/{agent.pk}/rollback/", {"version": 1}, format="json")
    assert response.status_code == 200
    assert response.json()["rollback_of"] == 1
    response = api.post(f"/api/v1/agents/{agent.pk}/withdraw/", {}, format="json")
    assert response.status_code == 400  # a rollback is rejected, not withdrawn
    assert "version" in response.json()


def test_try_through_the_api(api, demo_people, agent):
    response = as_user(api, demo_people["builder"]).post(
        f"/api/v1/agents/{agent.pk}/try/",
        {"inputs": {"customer_id": "c-1", "amount": 50, "country": "DE"}},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["outcome"] == "decided"
    assert body["decision"]["decision"] == "approve"
    assert DecisionRecord.objects.filter(event="agent.tried", seq=body["record"]).exists()


# --- Visibility ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", ""),
        ("put", ""),
        ("get", "versions/"),
        ("get", "diff/"),
        ("post", "submit/"),
        ("post", "withdraw/"),
        ("post", "approve/"),
        ("post", "reject/"),
        ("post", "rollback/"),
        ("post", "try/"),
    ],
)
def test_another_teams_builder_gets_404(api, demo_people, agent, method, path):
    response = getattr(as_user(api, demo_people["builder2"]), method)(
        f"/api/v1/agents/{agent.pk}/{path}", {}, format="json"
    )
    assert response.status_code == 404


def test_the_list_hides_other_teams_agents(api, demo_people, agent):
    body = as_user(api, demo_people["builder2"]).get("/api/v1/agents/").json()
    assert body["results"] == []


def test_anonymous_callers_get_401_or_403(api, agent):
    assert api.get("/api/v1/agents/").status_code in (401, 403)


def test_token_auth_works(api, demo_people, agent):
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=demo_people["builder"])
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert api.get(f"/api/v1/agents/{agent.pk}/").status_code == 200


# --- Schema -------------------------------------------------------------------------------------


def test_the_schema_generates_without_warnings_for_agents_and_connections(capsys):
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator

    GENERATOR_STATS.reset()
    schema = SchemaGenerator().get_schema(request=None, public=True)
    paths = schema["paths"]
    for path in (
        "/api/v1/agents/",
        "/api/v1/agents/{id}/",
        "/api/v1/agents/{id}/submit/",
        "/api/v1/agents/{id}/approve/",
        "/api/v1/agents/{id}/reject/",
        "/api/v1/agents/{id}/withdraw/",
        "/api/v1/agents/{id}/rollback/",
        "/api/v1/agents/{id}/try/",
        "/api/v1/agents/{id}/versions/",
        "/api/v1/agents/{id}/diff/",
        "/api/v1/connections/",
        "/api/v1/connections/{id}/",
        "/api/v1/connections/{id}/test/",
    ):
        assert path in paths, path
    secret = schema["components"]["schemas"]["Connection"]["properties"]["secret"]
    assert secret["writeOnly"] is True
    # Warnings name the view (AgentViewSet > ...) or, for enum collisions, the field.
    ours = ("AgentViewSet", "ConnectionViewSet", "agents/api/", 'named "kind"', "KindEnum")
    messages = [
        str(m)
        for m in (*GENERATOR_STATS._warn_cache, *GENERATOR_STATS._error_cache)
        if any(word in str(m) for word in ours)
    ]
    captured = capsys.readouterr()
    messages += [
        line
        for line in (captured.err + captured.out).splitlines()
        if ("Warning" in line or "Error" in line) and any(w in line for w in ours)
    ]
    assert messages == []
