from pathlib import Path
from types import SimpleNamespace

import pytest

from console.celeryconfig import celery_config


def settings_for(broker: str, tmp_path: Path, **extra) -> SimpleNamespace:
    values = dict(
        CELERY_BROKER_URL=broker,
        CELERY_BROKER_IS_EMBEDDED=broker.startswith("filesystem://"),
        CELERY_RESULT_BACKEND=f"file://{tmp_path / 'results'}",
        CELERY_TASK_TIME_LIMIT=300,
        CELERY_TASK_SOFT_TIME_LIMIT=270,
        CELERY_VISIBILITY_TIMEOUT=600,
        CELERY_TASK_DEFAULT_QUEUE="steward",
        TIME_ZONE="UTC",
        VAR_DIR=tmp_path,
        BROKER_DIR=tmp_path / "broker",
    )
    values.update(extra)
    return SimpleNamespace(**values)


def test_json_only_late_acks_and_redelivery_on_worker_loss(tmp_path):
    config = celery_config(settings_for("redis://127.0.0.1:6379/0", tmp_path))
    assert config["task_serializer"] == "json"
    assert config["accept_content"] == ["json"]
    assert config["task_acks_late"] is True
    assert config["task_reject_on_worker_lost"] is True
    assert config["task_time_limit"] == 300
    assert config["task_soft_time_limit"] < config["task_time_limit"]


def test_redis_takes_one_message_at_a_time_and_outlives_the_time_limit(tmp_path):
    config = celery_config(settings_for("redis://127.0.0.1:6379/0", tmp_path))
    assert config["worker_prefetch_multiplier"] == 1
    visibility = config["broker_transport_options"]["visibility_timeout"]
    assert visibility > config["task_time_limit"]
    assert config["result_backend_transport_options"]["visibility_timeout"] == visibility


def test_embedded_broker_uses_absolute_existing_folders_and_default_prefetch(tmp_path):
    config = celery_config(settings_for("filesystem://", tmp_path))
    assert "worker_prefetch_multiplier" not in config
    options = config["broker_transport_options"]
    assert options["data_folder_in"] == options["data_folder_out"]
    for key in ("data_folder_in", "processed_folder", "control_folder"):
        assert Path(options[key]).is_absolute()
        assert Path(options[key]).is_dir()
    assert (tmp_path / "results").is_dir()


def test_time_limit_and_visibility_timeout_follow_the_environment():
    import subprocess
    import sys

    code = (
        "import django; django.setup(); from console.celery import app; "
        "print(app.conf.task_time_limit, app.conf.broker_transport_options['visibility_timeout'])"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "console.settings",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
        "CELERY_TASK_TIME_LIMIT": "120",
    }
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    ).stdout.split()
    assert out == ["120", "240"]


@pytest.mark.django_db(transaction=True)
def test_a_worker_keeps_its_database_connection_across_tasks():
    """Celery's Django fixup closes every connection around every task unless told not to; a
    worker then opened a PostgreSQL connection per step. Ours closes only what Django would
    close after a request."""
    from celery.fixups.django import DjangoWorkerFixup
    from django.db import connection

    from console.celery import app, close_old_connections

    fixup = DjangoWorkerFixup(app)
    connection.close()  # a fresh connection: one older than CONN_MAX_AGE is closed, rightly
    connection.ensure_connection()
    opened = connection.connection
    for _ in range(3):  # before and after tasks, as the worker calls them
        fixup.on_task_prerun(sender=SimpleNamespace(request=SimpleNamespace(is_eager=False)))
        close_old_connections(sender=None)
        fixup.on_task_postrun(sender=SimpleNamespace(request=SimpleNamespace(is_eager=False)))
        close_old_connections(sender=None)
    assert connection.connection is opened

    connection.errors_occurred = True  # a task hit a database error...
    connection.close_at = 0  # ...and the connection is past CONN_MAX_AGE anyway
    close_old_connections(sender=None)
    assert connection.connection is None  # closed: the next task connects afresh


def test_eager_tasks_leave_their_callers_connection_alone(db):
    from django.db import connection

    from console.celery import close_old_connections

    connection.ensure_connection()
    opened = connection.connection
    close_old_connections(sender=SimpleNamespace(request=SimpleNamespace(is_eager=True)))
    assert connection.connection is opened
