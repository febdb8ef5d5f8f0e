"""The Celery app: ``celery -A console worker`` and ``celery -A console beat``."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

app = Celery("steward")
app.config_from_object("console.celeryconfig")
app.autodiscover_tasks()
