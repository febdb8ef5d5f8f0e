"""Governance tasks. Thin: they take ids (or nothing) and call plain functions that tests call
directly."""

from celery import shared_task

from governance import checkpoints

# A bundle of a million records takes minutes, longer than the default task time limit.
EXPORT_TIME_LIMIT = 4 * 3600


@shared_task(name="governance.tasks.checkpoint_ledger")
def checkpoint_ledger() -> int | None:
    """Sign the ledger's head when it grew since the last checkpoint (beat, every 5 minutes)."""
    checkpoint = checkpoints.checkpoint_if_grown("schedule")
    return checkpoint.seq if checkpoint else None


# acks_late is off for this task alone: with Redis, a message not acked within the visibility
# timeout (twice the default time limit) is delivered again while the first export still runs.
# A worker lost mid-export leaves its job without progress; the job page shows it as stalled.
@shared_task(
    name="governance.tasks.run_export_job",
    acks_late=False,
    time_limit=EXPORT_TIME_LIMIT,
    soft_time_limit=EXPORT_TIME_LIMIT - 60,
)
def run_export_job(job_id: int) -> None:
    from governance.exports.jobs import run_job

    run_job(job_id)


@shared_task(name="governance.tasks.remove_expired_exports")
def remove_expired_exports() -> int:
    """Remove export files past STEWARD_EXPORT_RETENTION_HOURS (beat, hourly)."""
    from governance.exports.retention import remove_expired

    removed = remove_expired()
    return removed.expired_jobs + removed.leftover_files
