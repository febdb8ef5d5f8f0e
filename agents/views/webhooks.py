"""The webhook endpoint (`POST /hooks/<workflow-slug>/`) and the page where a workflow's
webhook is set up: its URL, how to sign a request, and rotating the signing secret.

The endpoint needs no session and no CSRF token: the HMAC signature over the timestamp and
the body is the authentication (agents.engine.triggers). It answers JSON, always: 202 with
the run, or the refusal's status with the reason; never a 500 and never a sign-in redirect.
"""

from __future__ import annotations

import json
import logging
import shlex

from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from agents.engine import triggers
from agents.engine.runs import StartError, trigger_owner
from agents.fields import FieldSpecError, parse_fields
from agents.models import Workflow
from governance.access import object_or_404
from governance.canonical import CanonicalError
from governance.ledger import LedgerError

log = logging.getLogger(__name__)

# Longer than any unix time in seconds; refused here before the engine turns it into a float.
MAX_TIMESTAMP_DIGITS = 12


@csrf_exempt
@login_not_required
def receive(request, slug: str):
    if request.method != "POST":
        response = JsonResponse({"error": "POST a signed JSON body"}, status=405)
        response["Allow"] = "POST"
        return response
    try:
        body = request.body
    except RequestDataTooBig:
        return JsonResponse({"error": "body too large"}, status=413)
    timestamp = request.headers.get("X-Steward-Timestamp")
    if timestamp is not None and len(timestamp.strip()) > MAX_TIMESTAMP_DIGITS:
        return JsonResponse({"error": "X-Steward-Timestamp: unix seconds required"}, status=400)
    try:
        run = triggers.receive_webhook(
            slug, body, timestamp, request.headers.get("X-Steward-Signature")
        )
    except triggers.WebhookRefused as exc:
        log.info("webhook %s refused (%s): %s", slug, exc.status, exc)
        return JsonResponse({"error": str(exc)}, status=exc.status)
    except StartError as exc:
        return JsonResponse(
            {"error": "the body does not match the workflow's input fields", "fields": exc.errors},
            status=400,
        )
    except (LedgerError, CanonicalError) as exc:
        return JsonResponse({"error": f"body: cannot be recorded ({exc})"}, status=400)
    status_url = request.build_absolute_uri(reverse("api-run-detail", args=[run.pk]))
    return JsonResponse({"run": str(run.pk), "status_url": status_url}, status=202)


# --- Setting up a workflow's webhook -----------------------------------------------------------

SAMPLES = {
    "text": "example",
    "number": 42,
    "boolean": True,
    "date": "2026-01-31",
    "json": {"key": "value"},
}


def sample_body(version) -> str:
    """A JSON body with a plausible value for each input field, for the examples."""
    if version is None:
        return "{}"
    try:
        specs = parse_fields(version.definition.get("input_fields", []), "input_fields")
    except FieldSpecError:
        return "{}"
    sample = {
        spec.name: spec.choices[0] if spec.type == "choice" else SAMPLES.get(spec.type, "")
        for spec in specs
    }
    return json.dumps(sample, ensure_ascii=False)


@require_http_methods(["GET", "POST"])
def webhook_settings(request, pk: int):
    user = request.user
    workflow = object_or_404(user, Workflow, "change", pk=pk)
    version = workflow.published_version
    hook = None
    if version is not None:
        hook = next(
            (t for t in version.definition.get("triggers", []) if t.get("type") == "webhook"),
            None,
        )
    new_secret = ""
    if request.method == "POST":
        try:
            new_secret = triggers.rotate_webhook_secret(workflow, actor=user)
        except PermissionDenied as exc:
            raise PermissionDenied(str(exc)) from None
    owner = trigger_owner(version, hook) if hook is not None else None
    url = request.build_absolute_uri(reverse("webhook-receive", args=[workflow.slug]))
    body = sample_body(version)
    context = {
        "workflow": workflow,
        "version": version,
        "hook": hook,
        "owner": owner,
        "has_secret": bool(workflow.webhook_secret),
        "new_secret": new_secret,
        "url": url,
        "body": body,
        "shell_body": shlex.quote(body),
        "python_body": repr(body),
        "window": triggers.REPLAY_WINDOW_SECONDS,
        "max_kib": triggers.MAX_BODY_BYTES // 1024,
    }
    response = render(request, "agents/runs/webhook.html", context)
    if new_secret:
        add_never_cache_headers(response)  # the secret is shown once: no cache keeps it
    return response
