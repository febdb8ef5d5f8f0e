"""Counting refused requests: a hidden existing object (404) or a refused action (403).

Logged on the `steward.authz` logger and counted per person, object and action, so the access
review can show the repeated ones. Counting never makes the request fail.
"""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F

from governance.models import AuthorizationFailure

log = logging.getLogger("steward.authz")


def record(user, *, object_type: str, object_id, action: str, path: str = "") -> None:
    user_id = user.pk if getattr(user, "is_authenticated", False) else None
    log.warning(
        "authorization refused: user=%s action=%s object=%s:%s path=%s",
        getattr(user, "username", "anonymous") or "anonymous",
        action,
        object_type,
        object_id,
        path,
    )
    key = {
        "user_id": user_id,
        "object_type": object_type[:100],
        "object_id": str(object_id)[:64],
        "action": action[:32],
    }
    try:
        with transaction.atomic():
            updated = AuthorizationFailure.objects.filter(**key).update(
                count=F("count") + 1, last_path=path[:500]
            )
            if not updated:
                AuthorizationFailure.objects.create(**key, count=1, last_path=path[:500])
    except IntegrityError:  # created by a concurrent request: count on theirs
        AuthorizationFailure.objects.filter(**key).update(count=F("count") + 1)
    except Exception:  # counting must never turn a 404 into a 500
        log.exception("could not count an authorization failure")


def record_hidden(user, model, lookup: dict, action: str, path: str = "") -> None:
    """The restricted lookup found nothing: count it if the object does exist."""
    try:
        found = model._base_manager.filter(**lookup).values_list("pk", flat=True).first()
    except (ValueError, TypeError, ValidationError):  # a malformed id: nothing to count
        return
    if found is not None:
        record(user, object_type=model._meta.label_lower, object_id=found, action=action, path=path)


def repeated(minimum: int = 3, limit: int = 50):
    return (
        AuthorizationFailure.objects.filter(count__gte=minimum)
        .select_related("user")
        .order_by("-count", "-last_seen")[:limit]
    )


def record_denied(request, exc) -> None:
    """Count a refused action (a PermissionDenied from a service or a view)."""
    obj = getattr(exc, "steward_object", None)
    object_type = obj._meta.label_lower if obj is not None else "page"
    object_id = obj.pk if obj is not None else request.path[:64]
    record(
        request.user,
        object_type=object_type,
        object_id=object_id,
        action=getattr(exc, "steward_action", request.method.lower()),
        path=request.path,
    )


class CountRefusalsMiddleware:
    """Counts PermissionDenied that reach Django's handler (answered with the 403 page)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        from django.core.exceptions import PermissionDenied

        if isinstance(exception, PermissionDenied):
            record_denied(request, exception)
        return None


def api_exception_handler(exc, context):
    """DRF's handler, counting refused actions first (API views answer 403 JSON)."""
    from django.core.exceptions import PermissionDenied
    from rest_framework import exceptions
    from rest_framework.views import exception_handler

    request = context.get("request")
    if request is not None and isinstance(exc, (PermissionDenied, exceptions.PermissionDenied)):
        record_denied(request, exc)
    return exception_handler(exc, context)
