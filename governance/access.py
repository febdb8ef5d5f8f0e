"""The one place a view or API call gets its objects: through `restrict(user, action)`.

A forbidden object is a 404, never a 403 that confirms it exists (STYLE.md habit 2). Pages use
`object_or_404` or `RestrictedObjectMixin`; DRF viewsets use `RestrictedViewSetMixin`, which
maps each DRF action to the permission action it needs.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import Http404

from governance import authz_failures


def object_or_404(user, model, action: str = "view", *, path: str = "", **lookup):
    """The object if `user` may take `action` on it; 404 otherwise (missing or forbidden).

    A forbidden existing object is counted as an authorization failure."""
    try:
        found = model.objects.restrict(user, action).filter(**lookup).first()
    except (ValueError, ValidationError):  # a malformed id is not found either
        found = None
    if found is None:
        authz_failures.record_hidden(user, model, lookup, action, path)
        raise Http404(f"No {model._meta.verbose_name} matches the given query.")
    return found


def one_or_404(user, model, action: str = "view", *, path: str = "", pk, load) -> tuple:
    """The object `load()` finds (None: missing) and every action `user` may take on it, if
    `action` is among them; 404 otherwise, as `object_or_404`.

    The same rule as `restrict` (tests/unit/test_allowed_actions.py compares them) in one
    hand-written query: for a hot path that needs one object, such as starting a run, where
    compiling `restrict`'s union cost more than the rest of the lookup (bench/engine.py).
    `load` reads the object as the caller needs it (with related rows, by hand-written SQL)."""
    from governance.permissions import allowed_actions

    try:
        found = load()
    except (ValueError, ValidationError):
        found = None
    actions = allowed_actions(user, found) if found is not None else set()
    if action not in actions:
        authz_failures.record_hidden(user, model, {"pk": pk}, action, path)
        raise Http404(f"No {model._meta.verbose_name} matches the given query.")
    return found, actions


class RestrictedObjectMixin:
    """For class-based views: `model` and `required_action` decide the queryset."""

    model = None
    required_action = "view"

    def get_queryset(self):
        return self.model.objects.restrict(self.request.user, self.required_action)

    def get_object(self, queryset=None):
        try:
            return super().get_object(queryset)
        except Http404:
            lookup = {"pk": self.kwargs.get(self.pk_url_kwarg)}
            authz_failures.record_hidden(
                self.request.user, self.model, lookup, self.required_action, self.request.path
            )
            raise


class RestrictedViewSetMixin:
    """For DRF viewsets: the queryset is restricted by the action the request needs.

    `action_permissions` maps viewset actions (list, retrieve, update, custom @actions) to the
    model's permission actions; unknown actions need `change`, so a new custom action is never
    accidentally open."""

    action_permissions = {
        "list": "view",
        "retrieve": "view",
        "create": "view",
        "update": "change",
        "partial_update": "change",
        "destroy": "change",
    }

    def required_action(self) -> str:
        return self.action_permissions.get(getattr(self, "action", None), "change")

    def get_queryset(self):
        model = self.queryset.model
        return model.objects.restrict(self.request.user, self.required_action())

    def get_object(self):
        try:
            return super().get_object()
        except Http404:
            lookup_url_kwarg = self.lookup_url_kwarg or self.lookup_field
            lookup = {self.lookup_field: self.kwargs.get(lookup_url_kwarg)}
            authz_failures.record_hidden(
                self.request.user,
                self.queryset.model,
                lookup,
                self.required_action(),
                self.request.path,
            )
            raise
