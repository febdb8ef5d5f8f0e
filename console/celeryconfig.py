"""Celery configuration derived from Django settings.

Loaded lazily by ``app.config_from_object`` (so importing the app never touches settings), it
follows DESIGN.md's rule that the database is the source of truth and the broker a doorbell:
JSON only, late acks, redelivery when a worker dies, one message at a time on Redis.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings


def celery_config(conf) -> dict:
    config = {
        "broker_url": conf.CELERY_BROKER_URL,
        "result_backend": conf.CELERY_RESULT_BACKEND,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        # Celery's Django fixup closes every database connection before and after every task
        # unless this is set: each step then opened a PostgreSQL connection (and re-prepared
        # its statements), 12 of its 25 ms (bench/engine.py). console.celery closes what
        # Django would close after a request instead (CONN_MAX_AGE, broken connections).
        "CELERY_DB_REUSE_MAX": 2**31,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_time_limit": conf.CELERY_TASK_TIME_LIMIT,
        "task_soft_time_limit": conf.CELERY_TASK_SOFT_TIME_LIMIT,
        "task_ignore_result": True,
        "result_expires": 3600,
        "task_default_queue": conf.CELERY_TASK_DEFAULT_QUEUE,
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
        "timezone": conf.TIME_ZONE,
        "enable_utc": True,
        "beat_schedule": periodic_tasks(),
        "beat_schedule_filename": str(Path(conf.VAR_DIR) / "celerybeat-schedule"),
    }
    if conf.CELERY_BROKER_IS_EMBEDDED:
        # STACK-NOTES: on the filesystem transport prefetch 1 costs a poll per task (200 no-op
        # tasks: 6-7 s instead of 0.2 s), so the default prefetch stays there.
        folders = embedded_broker_folders(Path(conf.BROKER_DIR))
        config["broker_transport_options"] = {
            "data_folder_in": str(folders["queue"]),
            "data_folder_out": str(folders["queue"]),
            "processed_folder": str(folders["processed"]),
            "store_processed": False,
            "control_folder": str(folders["control"]),
            "polling_interval": 0.1,
        }
    else:
        config["worker_prefetch_multiplier"] = 1
        transport_options = {
            "visibility_timeout": conf.CELERY_VISIBILITY_TIMEOUT,
            # A request that starts a run must not hang on a dead broker: the step stays
            # queued in the database and the sweeper sends it later.
            "socket_connect_timeout": 2,
        }
        config["broker_transport_options"] = transport_options
        config["result_backend_transport_options"] = dict(transport_options)
    if conf.CELERY_RESULT_BACKEND.startswith("file://"):
        Path(conf.CELERY_RESULT_BACKEND.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
    return config


def embedded_broker_folders(base: Path) -> dict[str, Path]:
    """The filesystem transport needs absolute folders that exist before anyone uses them."""
    folders = {name: base / name for name in ("queue", "processed", "control")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    return folders


def periodic_tasks() -> dict:
    return {
        "worker-heartbeat": {"task": "console.tasks.heartbeat", "schedule": 30.0},
        "ledger-checkpoint": {"task": "governance.tasks.checkpoint_ledger", "schedule": 300.0},
        # The sweeper: re-sends steps whose lease expired (dead worker) or whose send failed
        # (broker down), and retries whose backoff ended. It is what makes a crash safe.
        "engine-sweep": {"task": "agents.engine.sweep", "schedule": 5.0},
        "engine-schedules": {"task": "agents.engine.fire_schedules", "schedule": 60.0},
        "export-retention": {"task": "governance.tasks.remove_expired_exports", "schedule": 3600.0},
    }


globals().update(celery_config(settings))
