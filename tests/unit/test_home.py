import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from governance.models import Team
from governance.roles import Role
from tests.factories import TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

PANELS = {
    "builder": "Builder workspace",
    "approver": "Review queue",
    "operator": "Operations",
    "compliance": "Compliance",
    "admin": "Administration",
}


@pytest.mark.parametrize("persona", PANELS)
def test_each_persona_sees_its_own_panel_and_no_other(client, demo_people, persona):
    client.force_login(demo_people[persona])
    html = client.get("/").content.decode()
    assert f">{PANELS[persona]}</h2>" in html
    for other, title in PANELS.items():
        if other != persona:
            assert f">{title}</h2>" not in html


def test_a_person_with_no_role_is_told_so(client):
    client.force_login(UserFactory())
    html = client.get("/").content.decode()
    assert "No role yet" in html
    assert "Builder workspace" not in html


def test_navigation_offers_admin_pages_to_admins_only(client, demo_people):
    client.force_login(demo_people["admin"])
    assert "Users, teams and roles" in client.get("/").content.decode()
    client.force_login(demo_people["builder"])
    assert "Users, teams and roles" not in client.get("/").content.decode()


def test_builder_panel_names_their_teams(client, demo_people):
    client.force_login(demo_people["builder2"])
    html = client.get("/").content.decode()
    assert "Support" in html
    assert "No agents yet" in html


def test_admin_home_queries_do_not_grow_with_teams(client, demo_people):
    client.force_login(demo_people["admin"])
    client.get("/")
    with CaptureQueriesContext(connection) as few:
        client.get("/")
    for _ in range(20):
        UserFactory(roles=[Role.BUILDER], teams=[TeamFactory()])
    with CaptureQueriesContext(connection) as many:
        response = client.get("/")
    assert response.status_code == 200
    assert len(many) == len(few)


def _human_agent(people, name="Document review"):
    from agents import versions

    team = Team.objects.get(name="Onboarding")
    return versions.create(
        versions.AGENT,
        actor=people["builder"],
        name=name,
        team=team,
        definition={
            "kind": "human",
            "input_fields": [{"name": "doc", "type": "text"}],
            "output_fields": [{"name": "ok", "type": "boolean"}],
            "config": {"team_id": team.pk, "instructions": "Check it."},
        },
    )


def test_builders_see_their_teams_agents_with_their_state(client, demo_people):
    from agents import versions

    agent = _human_agent(demo_people)
    versions.submit(agent, actor=demo_people["builder"])
    client.force_login(demo_people["builder"])
    html = client.get("/").content.decode()
    assert "Document review" in html
    assert "waiting for review" in html
    client.force_login(demo_people["builder2"])
    html = client.get("/").content.decode()
    assert "Document review" not in html
    assert "No agents yet" in html


def test_approvers_see_what_waits_for_their_review(client, demo_people):
    from agents import versions

    agent = _human_agent(demo_people)
    versions.submit(agent, actor=demo_people["builder"])
    client.force_login(demo_people["approver"])
    html = client.get("/").content.decode()
    assert f"/agents/{agent.pk}/review/" in html
    assert "Nothing to review" not in html
