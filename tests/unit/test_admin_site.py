import pytest

from governance.models import Team, User
from governance.roles import Role, roles_of

pytestmark = pytest.mark.django_db


def test_admin_sets_roles_and_teams_through_the_services(client, demo_people):
    client.force_login(demo_people["admin"])
    dana = User.objects.create_user("dana", password="Dana-pass-9876")
    support = Team.objects.get(name="Support")
    response = client.post(
        f"/admin/governance/user/{dana.pk}/change/",
        {
            "username": "dana",
            "first_name": "Dana",
            "last_name": "",
            "email": "",
            "roles": ["Builder", "Operator"],
            "teams": [support.pk],
            "is_active": "on",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    dana = User.objects.get(pk=dana.pk)
    assert roles_of(dana) == {Role.BUILDER, Role.OPERATOR}
    assert list(Team.objects.of_user(dana)) == [support]


def test_admin_creates_a_team_with_members(client, demo_people):
    client.force_login(demo_people["admin"])
    response = client.post(
        "/admin/governance/team/add/",
        {
            "name": "Claims",
            "description": "Insurance claims",
            "members": [demo_people["builder"].pk],
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    claims = Team.objects.get(name="Claims")
    assert claims.slug == "claims"
    assert list(claims.members) == [demo_people["builder"]]


def test_non_admins_cannot_use_the_admin_site(client, demo_people):
    client.force_login(demo_people["builder"])
    response = client.get("/admin/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
