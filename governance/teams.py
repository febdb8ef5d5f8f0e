"""Team services: every change to a team or its membership goes through these functions."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.db import transaction
from django.utils.text import slugify

from governance import ledger
from governance.models import Team
from governance.roles import ROLE_NAMES


class TeamError(ValueError):
    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")


@transaction.atomic
def create_team(name: str, *, actor, description: str = "") -> Team:
    name = (name or "").strip()
    if not name:
        raise TeamError("name", "a team needs a name")
    if len(name) > 100:
        raise TeamError("name", "at most 100 characters")
    if name in ROLE_NAMES:
        raise TeamError("name", f"{name!r} is the name of a role")
    slug = slugify(name)
    if not slug:
        raise TeamError("name", "must contain at least one letter or digit")
    if Team.objects.filter(slug=slug).exists():
        raise TeamError("name", f"a team called {name!r} already exists")
    group = Group.objects.create(name=f"team:{slug}")
    team = Team.objects.create(name=name, slug=slug, description=description, group=group)
    ledger.append("team.created", actor=actor, body={"description": description}, team=team)
    return team


@transaction.atomic
def add_member(team: Team, user, *, actor) -> bool:
    if team.group.user_set.filter(pk=user.pk).exists():
        return False
    team.group.user_set.add(user)
    _record_membership("team.member_added", team, user, actor)
    return True


@transaction.atomic
def remove_member(team: Team, user, *, actor) -> bool:
    if not team.group.user_set.filter(pk=user.pk).exists():
        return False
    team.group.user_set.remove(user)
    _record_membership("team.member_removed", team, user, actor)
    return True


def _record_membership(event: str, team: Team, user, actor) -> None:
    body = {"user": {"id": str(user.pk), "username": user.get_username()}}
    ledger.append(event, actor=actor, body=body, team=team)
