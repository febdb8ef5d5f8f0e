"""Celery discovers tasks in each app's `tasks` module; the engine's live in agents.engine."""

from agents.engine.tasks import execute_step, fire_schedules, sweep

__all__ = ["execute_step", "fire_schedules", "sweep"]
