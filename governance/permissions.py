"""Who may do what to which object: the one module every view, API call and task asks.

Access = role default + grants. A role gives defaults on the objects the person's teams own
(a builder may view and change them, an approver publish, an operator run); compliance
officers view everything; admins do everything. Grants (django-guardian's direct foreign-key
tables, to a user or to a team's group) give the rest. Deny by default.

`RestrictedQuerySet.restrict(user, action)` turns that into one query: a superuser/admin
short cut, otherwise one `id IN` subquery: the union of the user grants, the group (team)
grants and, for a role with a default on the action, the objects the user's teams own. A model
opts in by using the queryset and declaring its grant tables (`grant_models()`) and owning-team
field (`owner_team_field`).
"""

from __future__ import annotations

from functools import cache

from django.db import connection, models

from governance.models import Team
from governance.roles import Role, roles_of

# action -> roles that hold it by default on objects owned by one of their teams.
ROLE_DEFAULTS: dict[str, frozenset[Role]] = {
    "view": frozenset({Role.BUILDER, Role.APPROVER, Role.OPERATOR}),
    "change": frozenset({Role.BUILDER}),
    "use": frozenset({Role.BUILDER}),
    "run": frozenset({Role.OPERATOR}),
    "publish": frozenset({Role.APPROVER}),
    "manage_access": frozenset(),
}
# Actions everyone with a role may take on every object, whatever the team.
EVERYWHERE: dict[Role, frozenset[str]] = {
    Role.COMPLIANCE: frozenset({"view"}),
}


def codename(action: str, model) -> str:
    return f"{action}_{model._meta.model_name}"


# The rules of access, which `restrict` (lists) and `allowed_actions` (one object) both apply.


def _check_action(model, action: str) -> None:
    if action not in model.ACTIONS:
        raise ValueError(f"{model.__name__} has no action {action!r}; one of {model.ACTIONS}")


def _everywhere(roles) -> set[str]:
    """Actions these roles hold on every object, whatever its team."""
    return {action for role in roles for action in EVERYWHERE.get(role, ())}


def _by_default(roles, action: str) -> bool:
    """Whether these roles hold `action` on the objects their teams own."""
    return bool(roles & ROLE_DEFAULTS.get(action, frozenset()))


def _granting(model, action: str) -> list[str]:
    """The permissions whose grant gives `action`: any grant on an object lets its holder see
    it; otherwise only the action's own grant."""
    if action == "view":
        return [codename(a, model) for a in model.ACTIONS]
    return [codename(action, model)]


class RestrictedQuerySet(models.QuerySet):
    def restrict(self, user, action: str = "view") -> RestrictedQuerySet:
        model = self.model
        _check_action(model, action)
        if not getattr(user, "is_authenticated", False) or not user.is_active:
            return self.none()
        roles = roles_of(user)
        if Role.ADMIN in roles or action in _everywhere(roles):
            return self
        wanted = _granting(model, action)
        user_grants, group_grants = model.grant_models()
        # One `id IN (a UNION ALL b UNION ALL c)` rather than `id IN a OR id IN b OR id IN c`:
        # PostgreSQL cannot estimate an OR of subqueries (it guesses most of the table is
        # visible), so a builder's few hundred agents were planned like ten thousand (hash joins
        # over every version, JIT compilation). A union is estimated from its parts and
        # planned as a semi-join (bench/rbac.py). No ordering in the parts: SQLite refuses an
        # ORDER BY inside a compound statement.
        sources = [
            user_grants.objects.filter(user=user, permission__codename__in=wanted)
            .order_by()
            .values("content_object_id"),
            group_grants.objects.filter(group__user=user, permission__codename__in=wanted)
            .order_by()
            .values("content_object_id"),
        ]
        if _by_default(roles, action):
            team_field = f"{model.owner_team_field}__in"
            owned = model._base_manager.filter(
                **{team_field: Team.objects.of_user(user).order_by().values("pk")}
            )
            sources.append(owned.order_by().values("pk"))
        return self.filter(pk__in=sources[0].union(*sources[1:], all=True))


def allows(user, action: str, obj) -> bool:
    """Whether `user` may take `action` on `obj`: what `restrict` answers, in one query."""
    _check_action(type(obj), action)
    return action in allowed_actions(user, obj)


def allowed_actions(user, obj) -> set[str]:
    """Every action `user` may take on `obj`, as `restrict` decides each, in one query.

    Building `restrict`'s union and asking it about one object cost 2.9 ms of Python per
    action (bench/engine.py start latency), and an object's page asked for each action.
    """
    model = type(obj)
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return set()
    exists, owned, codenames, groups = False, False, set(), []
    with connection.cursor() as cursor:
        cursor.execute(_access_sql(model), {"user": user.pk, "object": obj.pk})
        for kind, name in cursor.fetchall():
            if kind == "object":
                exists = True
            elif kind == "owner":
                owned = True
            elif kind == "group":
                groups.append(name)
            else:
                codenames.add(name)
    roles = roles_of(user, group_names=groups)
    if not exists:
        return set()
    if Role.ADMIN in roles:
        return set(model.ACTIONS)
    everywhere = _everywhere(roles)
    return {
        action
        for action in model.ACTIONS
        if action in everywhere
        or (owned and _by_default(roles, action))
        or codenames.intersection(_granting(model, action))
    }


@cache
def _access_sql(model) -> str:
    """Rows saying the object exists, that one of the user's teams owns it, each permission the
    user holds on it by a grant to them or to one of their teams, and the user's groups (their
    roles, read here instead of by a query of their own)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group, Permission

    quote = connection.ops.quote_name
    table, pk = quote(model._meta.db_table), quote(model._meta.pk.column)
    team_column = quote(model._meta.get_field(model.owner_team_field).column)
    memberships = get_user_model().groups.through._meta.db_table
    user_grants, group_grants = (quote(m._meta.db_table) for m in model.grant_models())
    return f"""
        SELECT 'object', NULL FROM {table} WHERE {pk} = %(object)s
        UNION ALL
        SELECT 'owner', NULL FROM {table} o
            JOIN {quote(Team._meta.db_table)} t ON t.id = o.{team_column}
            JOIN {quote(memberships)} m ON m.group_id = t.group_id
            WHERE o.{pk} = %(object)s AND m.user_id = %(user)s
        UNION ALL
        SELECT 'grant', p.codename FROM {user_grants} g
            JOIN {quote(Permission._meta.db_table)} p ON p.id = g.permission_id
            WHERE g.content_object_id = %(object)s AND g.user_id = %(user)s
        UNION ALL
        SELECT 'grant', p.codename FROM {group_grants} g
            JOIN {quote(Permission._meta.db_table)} p ON p.id = g.permission_id
            JOIN {quote(memberships)} m ON m.group_id = g.group_id
            WHERE g.content_object_id = %(object)s AND m.user_id = %(user)s
        UNION ALL
        SELECT 'group', gr.name FROM {quote(Group._meta.db_table)} gr
            JOIN {quote(memberships)} m ON m.group_id = gr.id
            WHERE m.user_id = %(user)s
    """  # noqa: S608


def denied(obj, action: str, message: str = ""):
    """A PermissionDenied that names the object and action, for the failure count."""
    from django.core.exceptions import PermissionDenied

    exc = PermissionDenied(message or f"you may not {action.replace('_', ' ')} {obj}")
    exc.steward_object = obj
    exc.steward_action = action
    return exc
