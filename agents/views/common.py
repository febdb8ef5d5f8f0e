"""Small helpers the agent and connection pages share."""

from __future__ import annotations

from django.shortcuts import redirect
from django_htmx.http import HttpResponseClientRedirect

from governance.htmx import wants_partial
from governance.permissions import allowed_actions
from governance.roles import Role, has_role


def may_create(user) -> bool:
    """Builders create for their teams, admins for any (the services check it again)."""
    return has_role(user, Role.BUILDER, Role.ADMIN)


def shown_actions(user, obj) -> set[str]:
    """What the page offers on one object: buttons for actions the person may take. Hiding a
    button protects nothing; the services check again."""
    return allowed_actions(user, obj)


def go_to(request, url: str):
    """After a write: a plain redirect, or a client-side one when htmx sent the form."""
    if wants_partial(request):
        return HttpResponseClientRedirect(url)
    return redirect(url)
