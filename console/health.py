"""Liveness and readiness probes.

``/healthz`` says the process answers; ``/readyz`` says it can do its work: the database
answers a query and the broker accepts a connection. Each check returns (ok, detail).
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connections
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

PROBE_TIMEOUT_SECONDS = 2


def check_database() -> tuple[bool, str]:
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "not ready"
        return False, f"unreachable: {type(exc).__name__}: {exc}".strip()
    return True, "ok"


def check_broker(url: str | None = None) -> tuple[bool, str]:
    url = url or settings.CELERY_BROKER_URL
    scheme = urlsplit(url).scheme
    if scheme in {"redis", "rediss"}:
        import redis

        try:
            client = redis.Redis.from_url(
                url,
                socket_connect_timeout=PROBE_TIMEOUT_SECONDS,
                socket_timeout=PROBE_TIMEOUT_SECONDS,
            )
            try:
                client.ping()
            finally:
                client.close()
        except Exception as exc:
            return False, f"unreachable: {type(exc).__name__}: {exc}"
        return True, "ok"
    if scheme == "filesystem":
        from console.celery import app

        options = app.conf.broker_transport_options
        for key in ("data_folder_in", "control_folder"):
            folder = options.get(key)
            if not folder or not os.path.isdir(folder) or not os.access(folder, os.W_OK):
                return False, f"folder {folder!r} ({key}) missing or not writable"
        return True, "ok"
    # Other transports (amqp): a real connection attempt through kombu.
    from console.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=PROBE_TIMEOUT_SECONDS)
    except Exception as exc:
        return False, f"unreachable: {type(exc).__name__}: {exc}"
    return True, "ok"


@login_not_required
@require_safe
@never_cache
def healthz(request):
    return JsonResponse({"status": "ok"})


@login_not_required
@require_safe
@never_cache
def readyz(request):
    checks = {"database": check_database(), "broker": check_broker()}
    ready = all(ok for ok, _ in checks.values())
    body = {
        "status": "ready" if ready else "not ready",
        "checks": {name: detail for name, (_, detail) in checks.items()},
    }
    if not ready:
        body["failing"] = [name for name, (ok, _) in checks.items() if not ok]
    return JsonResponse(body, status=200 if ready else 503)
