"""Object grants: who holds which action on an object, and the services that change it.

A grant gives one action on one object to a user or to a team (through the team's group):
guardian's direct foreign-key tables of the object's model (`Model.grant_models()`). Role
defaults are not grants: they follow from a person's role and team and are listed here so an
object's Access tab shows every way in. Granting and revoking are for admins and holders of
`manage_access`; each change is a `grant.changed` ledger record with the holders before and
after, and takes effect on the next request (nothing is cached across requests).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.apps import apps
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db import transaction

from governance import ledger
from governance.models import Team
from governance.permissions import EVERYWHERE, ROLE_DEFAULTS, allows, codename


class GrantError(ValueError):
    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


def grant_bearing_models() -> list:
    """Every model with object grants (agents, workflows, connections...), found generically."""
    return [m for m in apps.get_models() if hasattr(m, "grant_models") and hasattr(m, "ACTIONS")]


def model_by_label(label: str):
    for model in grant_bearing_models():
        if model._meta.label_lower == label:
            return model
    raise LookupError(label)


@dataclass(frozen=True)
class Holder:
    """One way a principal holds an action on an object."""

    action: str
    principal_type: str  # "user", "team" or "role"
    principal_id: int | None
    principal_name: str
    source: str  # "user grant", "team grant", "role default"

    def as_dict(self) -> dict:
        return {
            "action": self.action,
            "principal_type": self.principal_type,
            "principal_id": self.principal_id,
            "principal": self.principal_name,
            "source": self.source,
        }


def holders(obj) -> list[Holder]:
    """Grants on `obj` plus the role defaults that apply to it (3 queries)."""
    model = type(obj)
    user_grants, group_grants = model.grant_models()
    result: list[Holder] = []
    for row in user_grants.objects.filter(content_object=obj).select_related("user", "permission"):
        action = row.permission.codename.removesuffix(f"_{model._meta.model_name}")
        result.append(Holder(action, "user", row.user_id, row.user.get_username(), "user grant"))
    rows = group_grants.objects.filter(content_object=obj).select_related(
        "group__team", "permission"
    )
    for row in rows:
        action = row.permission.codename.removesuffix(f"_{model._meta.model_name}")
        team = getattr(row.group, "team", None)
        name = team.name if team else row.group.name
        result.append(Holder(action, "team", team.pk if team else None, name, "team grant"))
    team_name = getattr(obj, model.owner_team_field).name
    for action in model.ACTIONS:
        for role in sorted(ROLE_DEFAULTS.get(action, ()), key=lambda r: r.value):
            result.append(
                Holder(action, "role", None, f"{role.value}s of {team_name}", "role default")
            )
        for role, actions in EVERYWHERE.items():
            if action in actions:
                result.append(
                    Holder(action, "role", None, f"{role.value}s (everything)", "role default")
                )
        result.append(Holder(action, "role", None, "Admins (everything)", "role default"))
    return sorted(result, key=lambda h: (model.ACTIONS.index(h.action), h.source, h.principal_name))


def _permission(model, action: str) -> Permission:
    if action not in model.ACTIONS:
        raise GrantError("action", f"one of {', '.join(model.ACTIONS)}")
    return Permission.objects.get(
        content_type=ContentType.objects.get_for_model(model), codename=codename(action, model)
    )


def _principal(user=None, team=None):
    if (user is None) == (team is None):
        raise GrantError("principal", "grant to exactly one user or one team")
    if user is not None and not getattr(user, "is_active", False):
        raise GrantError("user", "no such active user")
    return user, team


def _snapshot(obj, action: str) -> list[str]:
    return sorted(
        f"{h.principal_type}:{h.principal_name}"
        for h in holders(obj)
        if h.action == action and h.source != "role default"
    )


def _require_manager(actor, obj) -> None:
    if not allows(actor, "manage_access", obj):
        raise PermissionDenied(f"you may not manage access to {obj}")


@transaction.atomic
def grant(obj, *, actor, action: str, user=None, team: Team | None = None) -> bool:
    """Give `action` on `obj` to a user or a team. False when it was already held."""
    _require_manager(actor, obj)
    user, team = _principal(user, team)
    model = type(obj)
    permission = _permission(model, action)
    user_grants, group_grants = model.grant_models()
    before = _snapshot(obj, action)
    if user is not None:
        _, created = user_grants.objects.get_or_create(
            user=user, permission=permission, content_object=obj
        )
    else:
        _, created = group_grants.objects.get_or_create(
            group=team.group, permission=permission, content_object=obj
        )
    if created:
        _record(obj, actor, action, "granted", user, team, before)
    return created


@transaction.atomic
def revoke(obj, *, actor, action: str, user=None, team: Team | None = None) -> bool:
    """Take a grant back. False when there was none (role defaults cannot be revoked here)."""
    _require_manager(actor, obj)
    user, team = _principal(user, team)
    model = type(obj)
    permission = _permission(model, action)
    user_grants, group_grants = model.grant_models()
    before = _snapshot(obj, action)
    if user is not None:
        deleted, _ = user_grants.objects.filter(
            user=user, permission=permission, content_object=obj
        ).delete()
    else:
        deleted, _ = group_grants.objects.filter(
            group=team.group, permission=permission, content_object=obj
        ).delete()
    if deleted:
        _record(obj, actor, action, "revoked", user, team, before)
    return bool(deleted)


def _record(obj, actor, action, change, user, team, before) -> None:
    model = type(obj)
    principal = (
        {"type": "user", "id": str(user.pk), "name": user.get_username()}
        if user is not None
        else {"type": "team", "id": str(team.pk), "name": team.name}
    )
    refs = {"team": getattr(obj, model.owner_team_field)}
    name = model._meta.model_name
    if name in ("agent", "workflow"):
        refs[name] = obj
    ledger.append(
        "grant.changed",
        actor=actor,
        body={
            "object": {"type": model._meta.label_lower, "id": str(obj.pk), "name": str(obj)},
            "action": action,
            "change": change,
            "principal": principal,
            "before": before,
            "after": _snapshot(obj, action),
        },
        **refs,
    )
