"""Governance tasks. Thin: they call plain functions that tests call directly."""

from celery import shared_task

from governance import checkpoints


@shared_task(name="governance.tasks.checkpoint_ledger")
def checkpoint_ledger() -> int | None:
    """Sign the ledger's head when it grew since the last checkpoint (beat, every 5 minutes)."""
    checkpoint = checkpoints.checkpoint_if_grown("schedule")
    return checkpoint.seq if checkpoint else None
