"""Export files are kept for STEWARD_EXPORT_RETENTION_HOURS, then removed by a beat task.

An export file holds decisions (and, in bundles, personal data for exporters who may see it)
outside the ledger's controls, so it must not stay on the server for ever. The ledger's
`export.made` record of it stays: what was exported, by whom and its digest. A job whose file
was removed says so on its page; the export can be made again. Files in the export folder
that no finished job points to (a `.part` left by a killed worker, a deleted job's file) go
after the same time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from governance.exports import jobs
from governance.models import ExportJob

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Removed:
    expired_jobs: int
    leftover_files: int


def remove_expired(now=None) -> Removed:
    """Remove the files of exports finished before the retention period, and old leftovers."""
    now = now or timezone.now()
    cutoff = now - timedelta(hours=settings.STEWARD_EXPORT_RETENTION_HOURS)
    folder = jobs.export_dir().resolve()
    expired = 0
    old_jobs = ExportJob.objects.filter(status=ExportJob.Status.DONE, finished_at__lt=cutoff)
    for job in old_jobs.only("pk", "file_path").iterator():
        path = Path(job.file_path) if job.file_path else None
        if path is not None and path.resolve().parent == folder:  # never outside the folder
            path.unlink(missing_ok=True)
        expired += ExportJob.objects.filter(pk=job.pk, status=ExportJob.Status.DONE).update(
            status=ExportJob.Status.EXPIRED, file_path="", updated_at=now
        )
    in_use = {
        str(Path(p).resolve())
        for p in ExportJob.objects.exclude(file_path="")
        .exclude(status=ExportJob.Status.EXPIRED)
        .values_list("file_path", flat=True)
    }
    leftovers = 0
    for entry in folder.iterdir():
        if not entry.is_file() or str(entry) in in_use:
            continue
        modified = datetime.fromtimestamp(entry.stat().st_mtime, tz=UTC)
        if modified < cutoff:
            entry.unlink(missing_ok=True)
            leftovers += 1
    if expired or leftovers:
        log.info("export retention: %s job files and %s leftovers removed", expired, leftovers)
    return Removed(expired, leftovers)
