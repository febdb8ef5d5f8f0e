"""Large exports, made in the background by a Celery task with progress the page can show.

`start_export_job` (a service: one transaction, the task sent on commit) creates the row;
`run_job` (what the thin task calls) makes the file under VAR_DIR/exports/ with the owner's
visibility at the time it runs, records `export.made` like every export, and keeps the row's
status and progress current. A failure is stored on the row with its reason and shown on the
job's page; nothing fails silently.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from governance.decisions import DecisionFilter
from governance.exports.selection import FORMATS, ExportError, filter_from_dict, select
from governance.exports.service import EXTENSIONS, Export, export_to_path
from governance.models import ExportJob

logger = logging.getLogger(__name__)

PROGRESS_EVERY = 0.5  # seconds between progress writes
STALE_AFTER = timedelta(minutes=15)  # no progress for this long: show that something is wrong


def export_dir() -> Path:
    path = Path(settings.VAR_DIR) / "exports"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


@transaction.atomic
def start_export_job(decision_filter: DecisionFilter, fmt: str, *, actor) -> ExportJob:
    """Queue a background export of `decision_filter` by `actor`; the task is sent on commit."""
    if fmt not in FORMATS:
        raise ExportError("format", f"one of {', '.join(FORMATS)}; got {fmt!r}")
    select(decision_filter, exporter=actor)  # refuses exporters who may not export
    job = ExportJob.objects.create(
        owner=actor, format=fmt, filters=decision_filter.as_dict(), status=ExportJob.Status.QUEUED
    )
    transaction.on_commit(lambda: dispatch(job.pk))
    return job


def dispatch(job_id: int) -> None:
    """Send the task; if the broker cannot take it, the job fails with the reason."""
    from governance.tasks import run_export_job

    try:
        run_export_job.delay(job_id)
    except Exception as exc:
        logger.exception("could not queue export job %s", job_id)
        _fail(job_id, f"could not queue the export: the task broker is unreachable ({exc})")


def run_job(job_id: int) -> None:
    """Make a queued job's export. Returns at once if the job is gone, done or failed."""
    claimed = ExportJob.objects.filter(
        pk=job_id, status__in=[ExportJob.Status.QUEUED, ExportJob.Status.RUNNING]
    ).update(status=ExportJob.Status.RUNNING, started_at=timezone.now(), error="", **_touched())
    if not claimed:
        return
    job = ExportJob.objects.select_related("owner").get(pk=job_id)
    try:
        selection = select(filter_from_dict(job.filters), exporter=job.owner)
        total = selection.records().count()  # exact: this is the background, not a page
        if job.format == "bundle" and total:
            total += selection.upper_seq - selection.first_seq() + 1  # the skeleton's entries
        ExportJob.objects.filter(pk=job_id).update(
            progress_total=total, progress_done=0, **_touched()
        )
        path = export_dir() / f"export-{job_id}.{EXTENSIONS[job.format]}"
        export = Export(
            selection, job.format, via="task", job_id=job_id, progress=_progress_writer(job_id)
        )
        result = export_to_path(export, path)
    except SoftTimeLimitExceeded:
        _fail(job_id, "the export took longer than the task's time limit; narrow the filter")
        return
    except (ExportError, OSError) as exc:
        _fail(job_id, str(exc))
        return
    except Exception as exc:
        logger.exception("export job %s failed", job_id)
        _fail(job_id, f"unexpected error ({type(exc).__name__}); the worker's log has details")
        return
    units = result.records + export.tally.extra.get("skeleton", {}).get("entries", 0)
    ExportJob.objects.filter(pk=job_id).update(
        status=ExportJob.Status.DONE,
        progress_done=units,
        progress_total=units,
        file_path=str(path),
        file_bytes=result.bytes,
        sha256=result.sha256,
        record_seq=result.record.seq,
        finished_at=timezone.now(),
        **_touched(),
    )


def _touched() -> dict:
    # QuerySet.update() skips auto_now; the page reads updated_at as the job's sign of life.
    return {"updated_at": timezone.now()}


def _progress_writer(job_id: int):
    last = [0.0]

    def write(done: int) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY:
            last[0] = now
            ExportJob.objects.filter(pk=job_id).update(progress_done=done, **_touched())

    return write


def _fail(job_id: int, reason: str) -> None:
    ExportJob.objects.filter(pk=job_id).update(
        status=ExportJob.Status.FAILED, error=reason, finished_at=timezone.now(), **_touched()
    )


def is_stalled(job: ExportJob, now=None) -> bool:
    """Queued or running with no sign of life for STALE_AFTER: the worker may be gone."""
    if job.is_finished:
        return False
    return (now or timezone.now()) - job.updated_at > STALE_AFTER
