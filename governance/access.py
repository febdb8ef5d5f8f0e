"""The one place a view or API call gets its objects: through `restrict(user, action)`.

A forbidden object is a 404, never a 403 that confirms it exists (STYLE.md habit 2). Pages use
`object_or_404` or `RestrictedObjectMixin`; DRF viewsets use `RestrictedViewSetMixin`, which
maps each DRF action to the permission action it needs.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404


def object_or_404(user, model, action: str = "view", **lookup):
    """The object if `user` may take `action` on it; 404 otherwise (missing or forbidden)."""
    return get_object_or_404(model.objects.restrict(user, action), **lookup)


class RestrictedObjectMixin:
    """For class-based views: `model` and `required_action` decide the queryset."""

    model = None
    required_action = "view"

    def get_queryset(self):
        return self.model.objects.restrict(self.request.user, self.required_action)


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
