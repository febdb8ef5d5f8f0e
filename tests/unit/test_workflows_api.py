"""`/api/v1/workflows/`: list, retrieve, create, save the draft, the version actions, diff and
diagram; 400s naming the field, 403s with the reason, 404s for what one may not see; a list
whose query count does not grow; a schema without warnings."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from agents import versions
from agents.models import VersionStatus, Workflow, WorkflowVersion
from governance import roles
from governance.models import Team
from governance.roles import Role
from tests.workflow_factories import LazyAgents, field, human_agent, workflow

pytestmark = pytest.mark.django_db

API = "/api/v1/workflows/"


@pytest.fixture
def onboarding(demo_people):
    return Team.objects.get(name="Onboarding")


@pytest.fixture
def agents(demo_people, onboarding):
    return LazyAgents(demo_people, onboarding)


def as_user(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def builder(demo_people):
    return as_user(demo_people["builder"])


def sequential(agents) -> dict:
    return {
        "pattern": "sequential",
        "input_fields": [field("customer_id"), field("country")],
        "steps": [
            {"key": "kyc", "label": "KYC check", "agent_id": agents["kyc"].pk},
            {
                "key": "credit",
                "agent_id": agents["credit"].pk,
                "input_mapping": {"risk": "steps.kyc.output.risk"},
            },
        ],
    }


@pytest.fixture
def flow(demo_people, onboarding, agents):
    return workflow(demo_people, onboarding, "KYC then credit", sequential(agents))


# --- Reading ----------------------------------------------------------------------------------


def test_list_shows_what_one_may_view(demo_people, flow):
    rows = as_user(demo_people["operator"]).get(API).json()["results"]
    assert [(r["name"], r["pattern"], r["draft_version"]) for r in rows] == [
        ("KYC then credit", "sequential", 1)
    ]
    assert as_user(demo_people["builder2"]).get(API).json()["results"] == []


def test_retrieve_has_the_versions(builder, flow):
    body = builder.get(f"{API}{flow.pk}/").json()
    assert body["draft"]["number"] == 1
    assert body["draft"]["definition"]["steps"][1]["input_mapping"] == {
        "risk": "steps.kyc.output.risk"
    }
    assert body["published"] is None
    assert body["pending"] is None


def test_the_list_query_count_does_not_grow(builder, onboarding, agents):
    from tests.unit.test_workflow_pages import make_workflows

    make_workflows(onboarding, agents["kyc"].pk, 10, 0)
    with CaptureQueriesContext(connection) as ten:
        assert builder.get(API).status_code == 200
    make_workflows(onboarding, agents["kyc"].pk, 90, 10)
    with CaptureQueriesContext(connection) as hundred:
        body = builder.get(API).json()
    assert len(body["results"]) == 50
    assert body["next"]
    assert len(hundred) == len(ten)


# --- Writing ----------------------------------------------------------------------------------


def test_create_saves_the_first_draft(builder, onboarding, agents):
    response = builder.post(
        API,
        {"name": "API flow", "team": onboarding.pk, "definition": sequential(agents)},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["draft_version"] == 1
    assert body["draft"]["definition"]["steps"][1]["after"] == ["kyc"]


def test_create_for_another_team_is_refused_with_the_reason(demo_people, onboarding, agents):
    definition = sequential(agents)
    response = as_user(demo_people["builder2"]).post(
        API, {"name": "Sneaky", "team": onboarding.pk, "definition": definition}, format="json"
    )
    assert response.status_code in (400, 403)
    assert not Workflow.objects.exists()


def test_an_agent_one_may_not_view_is_refused_like_a_missing_one(demo_people, onboarding, agents):
    support = Team.objects.get(name="Support")
    hidden = human_agent(
        {"builder": demo_people["builder2"], "approver": demo_people["approver"]},
        support,
        "Support only",
        ["message"],
        ["answer"],
    )
    definition = {"pattern": "sequential", "steps": [{"key": "a", "agent_id": hidden.pk}]}
    response = as_user(demo_people["builder"]).post(
        API, {"name": "Peek", "team": onboarding.pk, "definition": definition}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"steps[0].agent_id": ["no such agent (or not visible)"]}
    assert not Workflow.objects.exists()


def test_update_saves_the_draft_and_renames(builder, flow, agents):
    definition = {**sequential(agents), "description": "Second cut"}
    response = builder.put(
        f"{API}{flow.pk}/", {"name": "Renamed", "definition": definition}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["name"] == "Renamed"
    assert versions.draft_of(flow).definition["description"] == "Second cut"
    response = builder.patch(f"{API}{flow.pk}/", {"name": "Again"}, format="json")
    assert response.json()["name"] == "Again"


def test_an_invalid_definition_names_the_field_and_saves_nothing(builder, flow, agents):
    definition = sequential(agents)
    definition["steps"][1]["input_mapping"] = {"nope": "input.customer_id"}
    response = builder.put(f"{API}{flow.pk}/", {"definition": definition}, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "steps[1].input_mapping.nope": ["agent 'Credit decision' has no input field 'nope'"]
    }
    assert versions.draft_of(flow).definition["steps"][1]["input_mapping"] == {
        "risk": "steps.kyc.output.risk"
    }


def test_submit_refuses_an_unpublished_agent_naming_its_step(builder, demo_people, onboarding):
    agents = LazyAgents(demo_people, onboarding)
    draft_only = workflow(
        demo_people,
        onboarding,
        "Draft only",
        {
            "pattern": "sequential",
            "input_fields": [field("customer_id")],
            "steps": [{"key": "helper", "agent_id": agents["unpublished"].pk}],
        },
    )
    response = builder.post(f"{API}{draft_only.pk}/submit/", {}, format="json")
    assert response.status_code == 400
    assert "is not published yet" in response.json()["steps[0].agent_id"][0]
    assert WorkflowVersion.objects.get(workflow=draft_only).status == VersionStatus.DRAFT


# --- Four-eyes publishing -----------------------------------------------------------------------


def test_submit_and_a_second_person_approves(builder, demo_people, flow):
    response = builder.post(f"{API}{flow.pk}/submit/", {"note": "ready"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "submitted"
    response = as_user(demo_people["approver"]).post(
        f"{API}{flow.pk}/approve/", {"version": 1, "reason": "fine"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["status"] == "published"
    assert builder.get(f"{API}{flow.pk}/").json()["published_version"] == 1


def test_the_author_cannot_approve_through_the_api(demo_people, flow):
    author = demo_people["builder"]
    roles.assign_role(author, Role.APPROVER, actor=None)
    client = as_user(author)
    client.post(f"{API}{flow.pk}/submit/", {}, format="json")
    response = client.post(f"{API}{flow.pk}/approve/", {"version": 1}, format="json")
    assert response.status_code == 403
    assert "four-eyes" in response.json()["detail"]
    assert versions.pending_of(flow).number == 1


def test_builders_cannot_approve_at_all(builder, demo_people, flow):
    versions.submit(flow, actor=demo_people["builder"])
    response = builder.post(f"{API}{flow.pk}/approve/", {"version": 1}, format="json")
    assert response.status_code == 404  # no publish permission: the object is not there


def test_reject_needs_a_reason(demo_people, flow):
    versions.submit(flow, actor=demo_people["builder"])
    approver = as_user(demo_people["approver"])
    response = approver.post(f"{API}{flow.pk}/reject/", {"version": 1}, format="json")
    assert response.status_code == 400
    assert "reason" in response.json()
    response = approver.post(
        f"{API}{flow.pk}/reject/", {"version": 1, "reason": "Vague"}, format="json"
    )
    assert response.json()["status"] == "rejected"


def test_withdraw_and_a_wrong_version_number(builder, demo_people, flow):
    versions.submit(flow, actor=demo_people["builder"])
    response = as_user(demo_people["approver"]).post(
        f"{API}{flow.pk}/approve/", {"version": 7}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"version": ["version 7 is not waiting for review"]}
    assert builder.post(f"{API}{flow.pk}/withdraw/").json()["status"] == "draft"


def test_rollback_needs_approval_again(builder, demo_people, flow, agents):
    approver = demo_people["approver"]
    versions.submit(flow, actor=demo_people["builder"])
    versions.approve(flow, actor=approver, number=1)
    versions.save_draft(
        flow, {**sequential(agents), "description": "v2"}, actor=demo_people["builder"]
    )
    versions.submit(flow, actor=demo_people["builder"])
    versions.approve(flow, actor=approver, number=2)
    response = builder.post(f"{API}{flow.pk}/rollback/", {"version": 1}, format="json")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["rollback_of"]) == ("submitted", 1)
    assert builder.get(f"{API}{flow.pk}/").json()["published_version"] == 2
    history = builder.get(f"{API}{flow.pk}/versions/").json()
    assert [v["number"] for v in history] == [3, 2, 1]


def test_diff_compares_the_published_version_with_the_one_under_review(
    builder, demo_people, flow, agents
):
    versions.submit(flow, actor=demo_people["builder"])
    versions.approve(flow, actor=demo_people["approver"], number=1)
    versions.save_draft(
        flow, {**sequential(agents), "description": "v2"}, actor=demo_people["builder"]
    )
    body = builder.get(f"{API}{flow.pk}/diff/").json()
    assert (body["before"], body["after"]) == (1, 2)
    assert body["changes"] == [{"path": "description", "before": "", "after": "v2"}]
    assert builder.get(f"{API}{flow.pk}/diff/?from=x").status_code == 400
    assert builder.get(f"{API}{flow.pk}/diff/?to=9").json() == {"to": ["version 9 does not exist"]}


# --- Diagram ---------------------------------------------------------------------------------


@pytest.mark.parametrize("accept", ["*/*", "image/svg+xml", "application/json, image/svg+xml"])
def test_the_diagram_is_svg(builder, flow, accept):
    response = builder.get(f"{API}{flow.pk}/diagram/", HTTP_ACCEPT=accept)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("image/svg+xml")
    root = ET.fromstring(response.content)  # noqa: S314 - our own output
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert b"KYC check" in response.content


def test_the_diagram_of_a_version_and_of_a_missing_one(builder, flow):
    assert builder.get(f"{API}{flow.pk}/diagram/?version=1").status_code == 200
    response = builder.get(f"{API}{flow.pk}/diagram/?version=5")
    assert response.status_code == 400
    assert response.json() == {"version": ["version 5 does not exist"]}


# --- Who may do what ---------------------------------------------------------------------------

ACTIONS = [
    ("get", ""),
    ("put", ""),
    ("patch", ""),
    ("post", "submit/"),
    ("post", "withdraw/"),
    ("post", "approve/"),
    ("post", "reject/"),
    ("post", "rollback/"),
    ("get", "versions/"),
    ("get", "diff/"),
    ("get", "diagram/"),
]


@pytest.mark.parametrize(("method", "suffix"), ACTIONS)
def test_another_teams_workflow_is_a_404_everywhere(demo_people, flow, method, suffix):
    client = as_user(demo_people["builder2"])
    response = getattr(client, method)(f"{API}{flow.pk}/{suffix}", {}, format="json")
    assert response.status_code == 404


@pytest.mark.parametrize(("method", "suffix"), ACTIONS)
def test_anonymous_callers_get_401_or_403(flow, method, suffix):
    response = getattr(APIClient(), method)(f"{API}{flow.pk}/{suffix}", {}, format="json")
    assert response.status_code in (401, 403)


@pytest.mark.parametrize(
    ("username", "suffix", "expected"),
    [
        ("operator", "submit/", 404),  # view, not change
        ("compliance", "", 404),  # PUT: view only
        ("approver", "withdraw/", 404),
        ("admin", "withdraw/", 400),  # may; nothing is under review
    ],
)
def test_actions_need_their_permission(demo_people, flow, username, suffix, expected):
    client = as_user(demo_people[username])
    method = client.put if suffix == "" else client.post
    response = method(f"{API}{flow.pk}/{suffix}", {"name": "x"}, format="json")
    assert response.status_code == expected


# --- Schema ------------------------------------------------------------------------------------


def test_the_schema_of_the_workflows_api_has_no_warnings(capsys):
    from django.urls import include, path
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator
    from rest_framework.routers import DefaultRouter

    from agents.api.workflows import WorkflowViewSet

    router = DefaultRouter()
    router.register("workflows", WorkflowViewSet, basename="api-workflow")
    GENERATOR_STATS.reset()
    schema = SchemaGenerator(patterns=[path("api/v1/", include(router.urls))]).get_schema(
        request=None, public=True
    )
    captured = capsys.readouterr()
    assert not GENERATOR_STATS._warn_cache, dict(GENERATOR_STATS._warn_cache)
    assert not GENERATOR_STATS._error_cache, dict(GENERATOR_STATS._error_cache)
    assert "Warning" not in captured.err
    paths = schema["paths"]
    for action in ("submit", "approve", "reject", "withdraw", "rollback", "versions", "diff"):
        assert f"/api/v1/workflows/{{id}}/{action}/" in paths
    diagram = paths["/api/v1/workflows/{id}/diagram/"]["get"]["responses"]["200"]
    assert "image/svg+xml" in diagram["content"]
