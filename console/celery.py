"""The Celery app: ``celery -A console worker`` and ``celery -A console beat``."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

app = Celery("steward")
app.config_from_object("console.celeryconfig")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def close_old_connections(sender=None, **kwargs) -> None:
    """Around each task, what Django does around each request: close a connection that is past
    CONN_MAX_AGE, failed its health check or saw an error, and keep the others (the worker's
    connection is reused; CELERY_DB_REUSE_MAX in console/celeryconfig.py keeps Celery's own
    fixup from closing it every time). Eager tasks run inside their caller's transaction."""
    if sender is not None and getattr(sender.request, "is_eager", False):
        return
    from django.db import close_old_connections as close

    close()
