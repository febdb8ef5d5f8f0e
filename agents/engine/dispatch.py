"""Ringing the doorbell: sending step attempts to the workers, and the sweeper.

Sends happen after commit and never block a request on a dead broker: a send that fails
leaves the step queued in the database, where the sweeper finds it again. The sweeper also
re-sends steps whose lease expired (a worker died mid-step) and retries whose backoff ended.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from agents.models import StepRun

log = logging.getLogger(__name__)


def marked_as_sent() -> dict:
    """Fields for a step attempt created to be sent when its transaction commits: it counts as
    sent from its INSERT, which saves an UPDATE per step (bench/engine.py). A send that fails
    clears the mark, so the next sweep sends it; a process that dies between the commit and
    the send leaves it for the sweeper's resend after STEWARD_RESEND_AFTER_SECONDS."""
    return {"dispatched_at": timezone.now(), "dispatch_count": 1}


def send_after_commit(step_run_ids, *, countdown: float | None = None) -> None:
    """Send attempts created with `marked_as_sent()` once the transaction commits."""
    ids = [i for i in step_run_ids if i is not None]
    if ids:
        transaction.on_commit(lambda: send_now(ids, countdown=countdown, marked=True))


def send_now(step_run_ids, *, countdown: float | None = None, marked: bool = False) -> int:
    """Publish one task per step attempt; returns how many were handed to the broker.

    `marked`: the attempts already say they were sent (`marked_as_sent`); only failures are
    written back. Otherwise the sent ones are marked here."""
    from agents.engine.tasks import execute_step

    sent, failed = [], []
    for step_run_id in step_run_ids:
        try:
            execute_step.apply_async((step_run_id,), countdown=countdown, retry=False)
        except Exception as exc:  # broker down: the sweeper sends it when the broker is back
            log.warning("step %s not sent (%s); the sweeper will send it", step_run_id, exc)
            failed.append(step_run_id)
            continue
        sent.append(step_run_id)
    if marked and failed:
        StepRun.objects.filter(pk__in=failed, status=StepRun.Status.QUEUED).update(
            dispatched_at=None
        )
    elif sent and not marked:
        StepRun.objects.filter(pk__in=sent).update(
            dispatched_at=timezone.now(), dispatch_count=F("dispatch_count") + 1
        )
    return len(sent)


def sweep(now=None) -> dict:
    """Re-queue expired leases and send every queued attempt that is due and not in flight."""
    now = now or timezone.now()
    expired = list(
        StepRun.objects.filter(status=StepRun.Status.RUNNING, lease_expires_at__lt=now).values_list(
            "pk", flat=True
        )[:500]
    )
    if expired:
        # The worker holding these died; the same attempt runs again (nothing was recorded).
        StepRun.objects.filter(
            pk__in=expired, status=StepRun.Status.RUNNING, lease_expires_at__lt=now
        ).update(
            status=StepRun.Status.QUEUED,
            lease_token=None,
            lease_expires_at=None,
            dispatched_at=None,
        )
    due = list(
        StepRun.objects.filter(status=StepRun.Status.QUEUED)
        .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
        .filter(
            Q(dispatched_at__isnull=True)
            | Q(dispatched_at__lt=now - timedelta(seconds=settings.STEWARD_RESEND_AFTER_SECONDS))
        )
        .values_list("pk", flat=True)[:500]
    )
    sent = send_now(due) if due else 0
    return {"expired": len(expired), "due": len(due), "sent": sent}
