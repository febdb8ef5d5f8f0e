import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

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
