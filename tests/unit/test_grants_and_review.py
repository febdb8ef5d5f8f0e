"""Grants, revocation, the Access tab, the access review and refusal counting."""

import csv
import io
import json

import pytest
from django.core.exceptions import PermissionDenied

from agents import versions
from agents.models import Agent
from governance import access_review, grants
from governance.models import AuthorizationFailure, DecisionRecord, Team

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent(demo_people):
    team = Team.objects.get(name="Onboarding")
    return versions.create(
        versions.AGENT,
        actor=demo_people["builder"],
        name="Document review",
        team=team,
        definition={
            "kind": "human",
            "input_fields": [{"name": "doc", "type": "text"}],
            "output_fields": [{"name": "ok", "type": "boolean"}],
            "config": {"team_id": team.pk, "instructions": "Check it."},
        },
    )


def visible_to(person, **kwargs):
    return Agent.objects.restrict(person, **kwargs)


def test_a_user_grant_appears_and_disappears_on_the_next_request(client, demo_people, agent):
    outsider = demo_people["builder2"]
    client.force_login(outsider)
    assert client.get(agent.get_absolute_url()).status_code == 404
    grants.grant(agent, actor=demo_people["admin"], action="view", user=outsider)
    assert client.get(agent.get_absolute_url()).status_code == 200
    grants.revoke(agent, actor=demo_people["admin"], action="view", user=outsider)
    assert client.get(agent.get_absolute_url()).status_code == 404


def test_a_team_grant_reaches_every_member_and_is_revocable(demo_people, agent):
    support = Team.objects.get(name="Support")
    assert not visible_to(demo_people["builder2"]).filter(pk=agent.pk).exists()
    grants.grant(agent, actor=demo_people["admin"], action="change", team=support)
    assert visible_to(demo_people["builder2"], action="change").filter(pk=agent.pk).exists()
    grants.revoke(agent, actor=demo_people["admin"], action="change", team=support)
    assert not visible_to(demo_people["builder2"], action="change").filter(pk=agent.pk).exists()


def test_every_grant_change_is_a_ledger_record_with_before_and_after(demo_people, agent):
    grants.grant(agent, actor=demo_people["admin"], action="publish", user=demo_people["builder2"])
    grants.revoke(agent, actor=demo_people["admin"], action="publish", user=demo_people["builder2"])
    granted, revoked = (
        json.loads(r.canonical)["body"]
        for r in DecisionRecord.objects.filter(event="grant.changed").order_by("seq")
    )
    assert granted["before"] == []
    assert granted["after"] == ["user:builder2"]
    assert revoked["before"] == ["user:builder2"]
    assert revoked["after"] == []


def test_only_admins_and_access_managers_grant(demo_people, agent):
    with pytest.raises(PermissionDenied):
        grants.grant(
            agent, actor=demo_people["builder"], action="view", user=demo_people["builder2"]
        )
    grants.grant(
        agent, actor=demo_people["admin"], action="manage_access", user=demo_people["builder"]
    )
    assert grants.grant(
        agent, actor=demo_people["builder"], action="view", user=demo_people["builder2"]
    )


def test_unknown_permissions_are_refused_naming_the_field(demo_people, agent):
    with pytest.raises(grants.GrantError) as caught:
        grants.grant(agent, actor=demo_people["admin"], action="run", user=demo_people["builder2"])
    assert caught.value.field == "action"


def test_the_access_tab_lists_role_defaults_and_grants(client, demo_people, agent):
    grants.grant(
        agent, actor=demo_people["admin"], action="view", team=Team.objects.get(name="Support")
    )
    client.force_login(demo_people["admin"])
    html = client.get(f"/access/agents.agent/{agent.pk}/").content.decode()
    assert "Team <strong>Support</strong>" in html
    assert "Builders of Onboarding" in html
    assert "Revoke" in html


def test_granting_through_the_access_tab(client, demo_people, agent):
    client.force_login(demo_people["admin"])
    response = client.post(
        f"/access/agents.agent/{agent.pk}/",
        {"action": "view", "principal": f"user:{demo_people['builder2'].pk}"},
    )
    assert response.status_code == 302
    assert visible_to(demo_people["builder2"]).filter(pk=agent.pk).exists()
    response = client.post(
        f"/access/agents.agent/{agent.pk}/revoke/",
        {"action": "view", "principal": f"user:{demo_people['builder2'].pk}"},
    )
    assert not visible_to(demo_people["builder2"]).filter(pk=agent.pk).exists()


def test_the_access_tab_of_a_hidden_object_is_a_404_and_counted(client, demo_people, agent):
    client.force_login(demo_people["builder2"])
    for _ in range(3):
        assert client.get(f"/access/agents.agent/{agent.pk}/").status_code == 404
    failure = AuthorizationFailure.objects.get()
    assert (failure.user, failure.count, failure.object_id) == (
        demo_people["builder2"],
        3,
        str(agent.pk),
    )


def test_the_access_review_says_where_each_permission_comes_from(demo_people, agent):
    grants.grant(agent, actor=demo_people["admin"], action="view", user=demo_people["builder2"])
    rows = list(access_review.rows(access_review.ReviewFilter(object_type="agents.agent")))
    by_key = {(r.user, r.permission): r.sources for r in rows}
    assert by_key[("builder", "change")] == "role default (Builder of Onboarding)"
    assert by_key[("builder2", "view")] == "user grant"
    assert ("builder2", "change") not in by_key
    assert by_key[("compliance", "view")] == "role default (Compliance officer)"
    assert ("compliance", "change") not in by_key
    assert by_key[("approver", "publish")] == "role default (Approver of Onboarding)"


def test_the_access_review_page_csv_and_sign_off(client, demo_people, agent):
    client.force_login(demo_people["compliance"])
    page = client.get("/access-review/?user=builder")
    assert page.status_code == 200
    assert "Document review" in page.content.decode()
    exported = client.get("/access-review/export.csv?user=builder")
    body = b"".join(exported.streaming_content).decode()
    table = list(csv.reader(io.StringIO(body)))
    assert table[0] == list(access_review.COLUMNS)
    assert all(row[0] == "builder" for row in table[1:])
    response = client.post("/access-review/sign-off/", {"note": "Q4 review"})
    assert response.status_code == 302
    signed = json.loads(DecisionRecord.objects.get(event="access_review.completed").canonical)
    assert signed["body"]["note"] == "Q4 review"
    assert signed["actor"]["name"] == "compliance"


def test_only_compliance_and_admins_see_the_access_review(client, demo_people):
    client.force_login(demo_people["builder"])
    assert client.get("/access-review/").status_code == 403
    assert client.get("/access-review/export.csv").status_code == 403


def test_the_grants_api_lists_adds_and_revokes(client, demo_people, agent):
    url = f"/api/v1/agents/{agent.pk}/grants/"
    client.force_login(demo_people["admin"])
    listed = client.get(url).json()
    assert {
        "action": "change",
        "principal_type": "role",
        "principal_id": None,
        "principal": "Builders of Onboarding",
        "source": "role default",
    } in listed
    added = client.post(
        url, {"action": "view", "user": "builder2"}, content_type="application/json"
    )
    assert added.status_code == 201
    assert visible_to(demo_people["builder2"]).filter(pk=agent.pk).exists()
    removed = client.delete(
        url, {"action": "view", "user": "builder2"}, content_type="application/json"
    )
    assert removed.status_code == 200
    assert not visible_to(demo_people["builder2"]).filter(pk=agent.pk).exists()


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"action": "view"}, "user"),
        ({"action": "view", "user": "nobody"}, "user"),
        ({"action": "fly", "team": "Support"}, "action"),
        ({"action": "view", "team": "X"}, "team"),
    ],
)
def test_the_grants_api_names_the_bad_field(client, demo_people, agent, payload, field):
    client.force_login(demo_people["admin"])
    response = client.post(
        f"/api/v1/agents/{agent.pk}/grants/", payload, content_type="application/json"
    )
    assert response.status_code == 400
    assert field in response.json()


def test_the_grants_api_hides_objects_and_refuses_non_managers(client, demo_people, agent):
    client.force_login(demo_people["builder2"])
    assert client.get(f"/api/v1/agents/{agent.pk}/grants/").status_code == 404
    client.force_login(demo_people["builder"])
    response = client.post(
        f"/api/v1/agents/{agent.pk}/grants/",
        {"action": "view", "user": "builder2"},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert "manage access" in response.json()["detail"]


def test_counting_a_malformed_id_never_fails(demo_people):
    from agents.models import Run
    from governance import authz_failures

    authz_failures.record_hidden(demo_people["builder"], Run, {"pk": "not-a-uuid"}, "view")
    assert not AuthorizationFailure.objects.exists()
