import pytest
from django.contrib.auth.models import Group, Permission

from governance import roles as role_service
from governance import teams as team_service
from governance.models import Team
from governance.roles import ROLE_NAMES, Role, has_role, roles_of
from tests.factories import TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_the_data_migration_creates_the_five_roles():
    assert set(Group.objects.filter(name__in=ROLE_NAMES).values_list("name", flat=True)) == {
        "Admin",
        "Builder",
        "Approver",
        "Operator",
        "Compliance officer",
    }


def test_admin_role_holds_every_model_permission_for_the_admin_site():
    admin_group = Group.objects.get(name="Admin")
    assert admin_group.permissions.count() == Permission.objects.count()


def test_assign_and_revoke_a_role():
    user = UserFactory()
    assert role_service.assign_role(user, Role.BUILDER, actor=None) is True
    assert role_service.assign_role(user, Role.BUILDER, actor=None) is False
    assert roles_of(user) == {Role.BUILDER}
    assert role_service.revoke_role(user, Role.BUILDER, actor=None) is True
    assert roles_of(user) == frozenset()


def test_admin_role_opens_and_closes_the_admin_site():
    user = UserFactory()
    role_service.assign_role(user, Role.ADMIN, actor=None)
    user.refresh_from_db()
    assert user.is_staff
    role_service.revoke_role(user, Role.ADMIN, actor=None)
    user.refresh_from_db()
    assert not user.is_staff


def test_superusers_hold_admin_and_inactive_users_hold_nothing():
    assert has_role(UserFactory(is_superuser=True), Role.ADMIN)
    inactive = UserFactory(roles=[Role.BUILDER], is_active=False)
    assert roles_of(inactive) == frozenset()


def test_team_membership_is_its_group_membership():
    team = TeamFactory(name="Risk")
    user = UserFactory()
    assert team_service.add_member(team, user, actor=None) is True
    assert team_service.add_member(team, user, actor=None) is False
    assert list(Team.objects.of_user(user)) == [team]
    assert team.group.user_set.filter(pk=user.pk).exists()
    assert team_service.remove_member(team, user, actor=None) is True
    assert not Team.objects.of_user(user).exists()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "name: a team needs a name"),
        ("   ", "name: a team needs a name"),
        ("x" * 101, "name: at most 100 characters"),
        ("Builder", "name: 'Builder' is the name of a role"),
        ("!!!", "name: must contain at least one letter or digit"),
    ],
)
def test_bad_team_names_are_refused_with_the_field_named(name, message):
    with pytest.raises(team_service.TeamError, match=message):
        team_service.create_team(name, actor=None)
    assert not Team.objects.exists()


def test_duplicate_team_names_are_refused():
    team_service.create_team("Risk", actor=None)
    with pytest.raises(team_service.TeamError, match="already exists"):
        team_service.create_team("risk", actor=None)
