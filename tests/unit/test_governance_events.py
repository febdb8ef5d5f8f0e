"""Governance actions of the accounts part (sign-ins, roles, teams) are ledger records."""

import json

import pytest
from django.urls import reverse

from governance import roles as role_service
from governance import teams as team_service
from governance.models import DecisionRecord
from governance.roles import Role
from tests.factories import PASSWORD, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


def last(event: str) -> dict:
    record = DecisionRecord.objects.filter(event=event).order_by("-seq").first()
    assert record is not None, f"no {event} record"
    return json.loads(record.canonical)


def test_sign_in_is_recorded_with_the_person_as_actor(client):
    user = UserFactory(username="dana")
    client.post(reverse("login"), {"username": "dana", "password": PASSWORD})
    record = last("user.signed_in")
    assert record["actor"] == {"type": "person", "id": str(user.pk), "name": "dana"}


def test_failed_sign_in_is_recorded_without_the_password(client):
    client.post(reverse("login"), {"username": "mallory", "password": "guess-1234"})
    record = last("user.sign_in_failed")
    assert record["body"]["username"] == "mallory"
    stored = DecisionRecord.objects.get(event="user.sign_in_failed").canonical
    assert "guess-1234" not in stored


def test_sign_out_is_recorded(client):
    user = UserFactory()
    client.force_login(user)
    client.post(reverse("logout"))
    assert last("user.signed_out")["actor"]["id"] == str(user.pk)


def test_password_change_is_recorded(client):
    user = UserFactory()
    client.force_login(user)
    client.post(
        reverse("password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "N3w-pass-phrase",
            "new_password2": "N3w-pass-phrase",
        },
    )
    assert last("user.password_changed")["actor"]["id"] == str(user.pk)


def test_role_changes_are_recorded_with_who_did_them():
    admin = UserFactory(username="root-admin")
    user = UserFactory(username="dana")
    role_service.assign_role(user, Role.APPROVER, actor=admin)
    assigned = last("role.assigned")
    assert assigned["body"] == {
        "user": {"id": str(user.pk), "username": "dana"},
        "role": "Approver",
    }
    assert assigned["actor"]["name"] == "root-admin"
    role_service.revoke_role(user, Role.APPROVER, actor=admin)
    assert last("role.revoked")["body"]["role"] == "Approver"


def test_an_unchanged_role_records_nothing():
    user = UserFactory(roles=[Role.BUILDER])
    before = DecisionRecord.objects.count()
    role_service.assign_role(user, Role.BUILDER, actor=None)
    assert DecisionRecord.objects.count() == before


def test_team_creation_and_membership_changes_are_recorded():
    admin = UserFactory()
    team = team_service.create_team("Claims", actor=admin)
    created = last("team.created")
    assert created["refs"]["team"] == {"id": str(team.pk), "name": "Claims"}
    user = UserFactory(username="dana")
    team_service.add_member(team, user, actor=admin)
    added = last("team.member_added")
    assert added["body"]["user"]["username"] == "dana"
    assert added["refs"]["team"]["name"] == "Claims"
    team_service.remove_member(team, user, actor=admin)
    assert last("team.member_removed")["body"]["user"]["username"] == "dana"


def test_membership_changes_made_in_the_admin_site_are_recorded(client, demo_people):
    client.force_login(demo_people["admin"])
    team = TeamFactory(name="Claims")
    client.post(
        f"/admin/governance/team/{team.pk}/change/",
        {"name": "Claims", "description": "", "members": [demo_people["builder"].pk]},
    )
    added = last("team.member_added")
    assert added["actor"]["name"] == "admin"
    assert added["body"]["user"]["username"] == "builder"
