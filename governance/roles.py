"""Roles: Django groups with fixed names, created by a data migration.

A role says what kind of work a person does (DESIGN.md, People); object grants (issue 5) say
on which objects. Role lookups are cached on the user object for the length of a request.
"""

from __future__ import annotations

from enum import StrEnum

from django.contrib.auth.models import Group
from django.db import transaction


class Role(StrEnum):
    ADMIN = "Admin"
    BUILDER = "Builder"
    APPROVER = "Approver"
    OPERATOR = "Operator"
    COMPLIANCE = "Compliance officer"


ROLE_NAMES = frozenset(role.value for role in Role)
_CACHE_ATTR = "_steward_roles"


def roles_of(user, *, group_names=None) -> frozenset[Role]:
    """The roles a user holds; a superuser holds Admin whatever their groups.

    `group_names`: every group the user is in, when the caller has just read them (saves the
    query)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return frozenset()
    cached = getattr(user, _CACHE_ATTR, None)
    if cached is None:
        if group_names is None:
            group_names = user.groups.filter(name__in=ROLE_NAMES).values_list("name", flat=True)
        cached = frozenset(Role(name) for name in group_names if name in ROLE_NAMES)
        if user.is_superuser:
            cached |= {Role.ADMIN}
        setattr(user, _CACHE_ATTR, cached)
    return cached


def has_role(user, *roles: Role) -> bool:
    return bool(roles_of(user) & set(roles))


def role_group(role: Role) -> Group:
    return Group.objects.get(name=role.value)


@transaction.atomic
def assign_role(user, role: Role, *, actor) -> bool:
    """Give `user` the role. Returns False when they already had it."""
    group = role_group(role)
    if user.groups.filter(pk=group.pk).exists():
        return False
    user.groups.add(group)
    if role is Role.ADMIN and not user.is_staff:
        user.is_staff = True  # admins also use Django's admin
        user.save(update_fields=["is_staff"])
    _forget_cache(user)
    _record("role.assigned", user, role, actor)
    return True


@transaction.atomic
def revoke_role(user, role: Role, *, actor) -> bool:
    """Take the role away from `user`. Returns False when they did not have it."""
    group = role_group(role)
    if not user.groups.filter(pk=group.pk).exists():
        return False
    user.groups.remove(group)
    if role is Role.ADMIN and user.is_staff and not user.is_superuser:
        user.is_staff = False
        user.save(update_fields=["is_staff"])
    _forget_cache(user)
    _record("role.revoked", user, role, actor)
    return True


def _record(event: str, user, role: Role, actor) -> None:
    from governance import ledger

    ledger.append(
        event,
        actor=actor,
        body={"user": {"id": str(user.pk), "username": user.get_username()}, "role": role.value},
    )


def _forget_cache(user) -> None:
    if hasattr(user, _CACHE_ATTR):
        delattr(user, _CACHE_ATTR)


def roles_of_stored(user) -> set[Role]:
    """The role groups a user belongs to, read from the database (no cache, no superuser rule)."""
    names = user.groups.filter(name__in=ROLE_NAMES).values_list("name", flat=True)
    return {Role(name) for name in names}
