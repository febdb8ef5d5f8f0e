"""Celery tasks of the engine: thin, ids only; everything else is in the engine modules."""

from celery import shared_task

from agents.engine import dispatch, execute, triggers


@shared_task(name="agents.engine.execute_step")
def execute_step(step_run_id: int) -> str:
    return execute.execute_step(step_run_id)


@shared_task(name="agents.engine.sweep")
def sweep() -> dict:
    return dispatch.sweep()


@shared_task(name="agents.engine.fire_schedules")
def fire_schedules() -> int:
    return len(triggers.fire_schedules())
