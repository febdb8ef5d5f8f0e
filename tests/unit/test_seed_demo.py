import pytest
from django.core.management import CommandError, call_command

from governance.models import Team, User
from governance.roles import Role, roles_of

pytestmark = pytest.mark.django_db


def test_seed_demo_creates_the_personas_and_teams(settings):
    call_command("seed_demo")
    assert set(User.objects.values_list("username", flat=True)) == {
        "admin",
        "builder",
        "builder2",
        "approver",
        "operator",
        "compliance",
        "demo-service",  # the http demo agent's API account: token only, no password
    }
    assert not User.objects.get(username="demo-service").has_usable_password()
    assert set(Team.objects.values_list("name", flat=True)) == {"Onboarding", "Support"}
    builder2 = User.objects.get(username="builder2")
    assert roles_of(builder2) == {Role.BUILDER}
    assert list(Team.objects.of_user(builder2).values_list("name", flat=True)) == ["Support"]
    assert User.objects.get(username="admin").is_superuser
    assert User.objects.get(username="builder").check_password(settings.STEWARD_DEMO_PASSWORD)


def test_seed_demo_is_idempotent_and_keeps_changed_passwords():
    call_command("seed_demo")
    builder = User.objects.get(username="builder")
    builder.set_password("Changed-by-builder-1")
    builder.save()
    counts = (User.objects.count(), Team.objects.count())
    call_command("seed_demo")
    assert (User.objects.count(), Team.objects.count()) == counts
    builder.refresh_from_db()
    assert builder.check_password("Changed-by-builder-1")
    assert Team.objects.get(name="Support").members.count() == 3


def test_seed_demo_refuses_to_run_without_a_password(settings):
    settings.STEWARD_DEMO_PASSWORD = None
    with pytest.raises(CommandError, match="STEWARD_DEMO_PASSWORD is not set"):
        call_command("seed_demo")
    assert not User.objects.exists()
