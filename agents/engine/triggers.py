"""Event-driven starts: signed webhooks and schedules (another workflow's outcome is in runs).

Webhook: ``POST /hooks/<workflow-slug>/`` with the run input as a JSON body and headers
``X-Steward-Timestamp: <unix seconds>`` and
``X-Steward-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>``.
A request older or newer than the replay window, or one whose signature was seen before, is
refused. Runs started by a trigger are checked against the trigger owner's permission (the
person who submitted the published version that holds the trigger).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from datetime import timedelta

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from agents.engine import rows, runs
from agents.models import Run, WebhookDelivery, Workflow
from governance import keys, ledger

log = logging.getLogger(__name__)

REPLAY_WINDOW_SECONDS = 300
MAX_BODY_BYTES = 256 * 1024


class WebhookRefused(ValueError):
    def __init__(self, status: int, message: str):
        self.status = status
        super().__init__(message)


@transaction.atomic
def rotate_webhook_secret(workflow: Workflow, *, actor) -> str:
    """A new signing secret for the workflow's webhook; returned once, stored encrypted."""
    from governance.permissions import allows

    if not allows(actor, "change", workflow):
        raise PermissionDenied(f"you may not change {workflow}")
    secret = secrets.token_urlsafe(32)
    workflow.webhook_secret = keys.fernet().encrypt(secret.encode())
    workflow.save(update_fields=["webhook_secret", "updated_at"])
    ledger.append(
        "webhook.secret_rotated", actor=actor, body={}, team=workflow.team, workflow=workflow
    )
    return secret


def sign(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def receive_webhook(
    slug: str,
    body: bytes,
    timestamp_header: str | None,
    signature_header: str | None,
    *,
    now: float | None = None,
) -> Run:
    """Check the signature and window, then start the run. WebhookRefused says why not."""
    workflow = rows.workflow_by_slug(slug)
    # Unknown workflow, no webhook trigger and no secret all answer the same 404.
    hook = None
    if workflow is not None and workflow.published_version is not None:
        hook = next(
            (
                t
                for t in workflow.published_version.definition.get("triggers", [])
                if t.get("type") == "webhook"
            ),
            None,
        )
    if hook is None or not workflow.webhook_secret:
        raise WebhookRefused(404, "no webhook here")
    if len(body) > MAX_BODY_BYTES:
        raise WebhookRefused(413, f"body larger than {MAX_BODY_BYTES} bytes")
    try:
        timestamp = int(timestamp_header or "")
    except ValueError:
        raise WebhookRefused(400, "X-Steward-Timestamp: unix seconds required") from None
    now = time.time() if now is None else now
    # Integer arithmetic: a timestamp beyond a float must be refused, not overflow.
    if abs(int(now) - timestamp) > REPLAY_WINDOW_SECONDS:
        raise WebhookRefused(401, "X-Steward-Timestamp: outside the replay window")
    secret = keys.fernet().decrypt(bytes(workflow.webhook_secret)).decode()
    expected = sign(secret, timestamp, body)
    if not signature_header or not hmac.compare_digest(expected, signature_header.strip()):
        raise WebhookRefused(401, "X-Steward-Signature: does not match")
    from agents import jsonsafe

    try:  # jsonsafe: no NaN, infinities or huge integers, which no database or ledger holds
        data = jsonsafe.loads(body or b"{}")
    except ValueError:
        raise WebhookRefused(400, "body: not JSON") from None
    if not isinstance(data, dict):
        raise WebhookRefused(400, "body: a JSON object of input fields")
    version = workflow.published_version
    digest = hashlib.sha256(signature_header.encode()).hexdigest()
    try:
        with transaction.atomic(), ledger.deferred():
            run = runs.start(
                version,
                data,
                actor=None,
                trigger=Run.Trigger.WEBHOOK,
                trigger_detail={"timestamp": timestamp},
                check_actor=runs.trigger_owner(version, hook),
                savepoint=False,  # any failure takes this whole transaction back
            )
            # A replay fails here on the unique signature and takes the run back with it.
            rows.create(WebhookDelivery, workflow=workflow, signature=digest, run=run)
    except IntegrityError:
        raise WebhookRefused(409, "this signed request was already received") from None
    except PermissionDenied:
        raise WebhookRefused(403, "the trigger's owner may no longer run this workflow") from None
    return run


def fire_schedules(now=None) -> list[Run]:
    """Start every scheduled workflow whose interval has passed since its last scheduled run."""
    now = now or timezone.now()
    started = []
    for workflow in Workflow.objects.exclude(published_version=None).select_related(
        "published_version", "published_version__submitted_by"
    ):
        version = workflow.published_version
        for index, trigger in enumerate(version.definition.get("triggers", [])):
            if trigger.get("type") != "schedule":
                continue
            last = (
                Run.objects.filter(
                    workflow=workflow, trigger=Run.Trigger.SCHEDULE, trigger_detail__trigger=index
                )
                .order_by("-created_at")
                .values_list("created_at", flat=True)
                .first()
            )
            if last and now - last < timedelta(minutes=trigger["every_minutes"]):
                continue
            try:
                started.append(
                    runs.start(
                        version,
                        trigger.get("input") or {},
                        actor=None,
                        trigger=Run.Trigger.SCHEDULE,
                        trigger_detail={"trigger": index},
                        check_actor=runs.trigger_owner(version, trigger),
                    )
                )
            except (runs.StartError, PermissionDenied) as exc:
                log.warning("schedule of %s refused: %s", workflow, exc)
                with transaction.atomic():
                    ledger.append(
                        "trigger.refused",
                        actor=None,
                        body={"trigger": "schedule", "reason": str(exc)[:500]},
                        team=workflow.team,
                        workflow=workflow,
                    )
    return started
