"""The access review: every person x object x permission, with where each comes from.

Built from role defaults (role + team), grants to the person and grants to their teams, for
every model with object grants. A constant number of queries whatever the size: users, their
groups, and per model its objects and its two grant tables; the rows are generated in memory
in a stable order and streamed (page and CSV alike).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from django.contrib.auth import get_user_model

from governance.grants import grant_bearing_models
from governance.models import Team
from governance.permissions import EVERYWHERE, ROLE_DEFAULTS
from governance.roles import ROLE_NAMES, Role

COLUMNS = (
    "user",
    "roles",
    "teams",
    "object_type",
    "object_id",
    "object",
    "owner_team",
    "permission",
    "sources",
)


@dataclass(frozen=True)
class ReviewFilter:
    user: str = ""  # username
    team: str = ""  # team name: people of this team
    object_type: str = ""  # e.g. agents.agent
    object: str = ""  # object name contains
    permission: str = ""


@dataclass(frozen=True)
class Row:
    user: str
    roles: str
    teams: str
    object_type: str
    object_id: int
    object: str
    owner_team: str
    permission: str
    sources: str

    def as_list(self) -> list[str]:
        return [str(getattr(self, column)) for column in COLUMNS]


def object_types() -> list[tuple[str, str]]:
    return [(m._meta.label_lower, m._meta.verbose_name.title()) for m in grant_bearing_models()]


def rows(review: ReviewFilter) -> Iterator[Row]:
    users = get_user_model().objects.filter(is_active=True).order_by("username")
    if review.user:
        users = users.filter(username=review.user)
    if review.team:
        users = users.filter(groups__team__name=review.team)
    users = list(users.prefetch_related("groups"))
    teams_by_group = {t.group_id: t for t in Team.objects.all()}
    people = []
    for user in users:
        groups = list(user.groups.all())
        roles = {Role(g.name) for g in groups if g.name in ROLE_NAMES}
        if user.is_superuser:
            roles.add(Role.ADMIN)
        teams = [teams_by_group[g.pk] for g in groups if g.pk in teams_by_group]
        people.append((user, roles, teams, {g.pk for g in groups}))
    for model in grant_bearing_models():
        label = model._meta.label_lower
        if review.object_type and review.object_type != label:
            continue
        yield from _model_rows(model, label, people, teams_by_group, review)


def _model_rows(model, label, people, teams_by_group, review) -> Iterator[Row]:
    objects = model.objects.select_related(model.owner_team_field).order_by("name")
    if review.object:
        objects = objects.filter(name__icontains=review.object)
    objects = list(objects)
    ids = [o.pk for o in objects]
    user_grants, group_grants = model.grant_models()
    suffix = f"_{model._meta.model_name}"
    by_user = defaultdict(lambda: defaultdict(set))  # user id -> object id -> actions
    for user_id, object_id, code in user_grants.objects.filter(
        content_object_id__in=ids
    ).values_list("user_id", "content_object_id", "permission__codename"):
        by_user[user_id][object_id].add(code.removesuffix(suffix))
    by_group = defaultdict(lambda: defaultdict(set))
    for group_id, object_id, code in group_grants.objects.filter(
        content_object_id__in=ids
    ).values_list("group_id", "content_object_id", "permission__codename"):
        by_group[group_id][object_id].add(code.removesuffix(suffix))
    for user, roles, teams, group_ids in people:
        team_ids = {t.pk for t in teams}
        role_text = ", ".join(sorted(r.value for r in roles)) or "none"
        team_text = ", ".join(sorted(t.name for t in teams)) or "none"
        for obj in objects:
            owner = getattr(obj, model.owner_team_field)
            for action in model.ACTIONS:
                if review.permission and action != review.permission:
                    continue
                sources = []
                if Role.ADMIN in roles:
                    sources.append("role default (Admin)")
                for role, actions in EVERYWHERE.items():
                    if role in roles and action in actions:
                        sources.append(f"role default ({role.value})")
                if owner.pk in team_ids:
                    for role in sorted(
                        roles & ROLE_DEFAULTS.get(action, frozenset()), key=lambda r: r.value
                    ):
                        sources.append(f"role default ({role.value} of {owner.name})")
                granted = by_user[user.pk][obj.pk]
                if action in granted or (action == "view" and granted):
                    sources.append("user grant" if action in granted else "user grant (other)")
                for group_id in group_ids & set(by_group):
                    held = by_group[group_id][obj.pk]
                    if action in held or (action == "view" and held):
                        team = teams_by_group.get(group_id)
                        sources.append(f"team grant ({team.name if team else group_id})")
                if sources:
                    yield Row(
                        user.get_username(),
                        role_text,
                        team_text,
                        label,
                        obj.pk,
                        obj.name,
                        owner.name,
                        action,
                        "; ".join(sources),
                    )
