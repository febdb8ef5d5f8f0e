"""Console tasks. Thin: they call plain functions that tests call directly."""

from celery import shared_task

from console.heartbeat import record_heartbeat


@shared_task(name="console.tasks.ping", ignore_result=False)
def ping() -> str:
    return "pong"


@shared_task(name="console.tasks.heartbeat", bind=True)
def heartbeat(self) -> None:
    record_heartbeat(self.request.hostname or "unknown")
