"""Sign-ins, failed sign-ins and sign-outs go into the ledger.

Django announces these through its auth signals (there is no service of ours in that path);
the handlers only append. Passwords never reach them: Django cleanses the credentials.
"""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from governance import ledger
from governance.actors import Actor

MAX_USERNAME = 150


@receiver(user_logged_in, dispatch_uid="steward-ledger-login")
def record_sign_in(sender, request, user, **kwargs) -> None:
    ledger.append("user.signed_in", actor=user, body={"via": _via(request)})


@receiver(user_logged_out, dispatch_uid="steward-ledger-logout")
def record_sign_out(sender, request, user, **kwargs) -> None:
    if user is not None:
        ledger.append("user.signed_out", actor=user, body={})


@receiver(user_login_failed, dispatch_uid="steward-ledger-login-failed")
def record_failed_sign_in(sender, credentials, request=None, **kwargs) -> None:
    attempted = str(credentials.get("username", ""))[:MAX_USERNAME]
    ledger.append(
        "user.sign_in_failed",
        actor=Actor("system", "", "steward"),
        body={"username": attempted, "via": _via(request)},
    )


def _via(request) -> str:
    if request is None:
        return "unknown"
    path = getattr(request, "path", "")
    return "admin" if path.startswith("/admin/") else ("api" if "/api/" in path else "console")
