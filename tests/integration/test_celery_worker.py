"""A real Celery worker process runs our tasks against the test database and the broker."""

from __future__ import annotations

import time

import pytest

from console.celery import app
from console.models import WorkerHeartbeat
from console.tasks import heartbeat, ping

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def wait_for(condition, timeout: float = 20, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    return condition()


def test_worker_on_the_session_queue_answers_ping_with_pong(celery_worker, celery_queue):
    # The worker consumes only this queue, so a pong proves the routing too.
    assert app.conf.task_default_queue == celery_queue

    assert ping.delay().get(timeout=20) == "pong"


def test_worker_writes_a_heartbeat_row_to_the_test_database(celery_worker):
    assert not WorkerHeartbeat.objects.filter(hostname=celery_worker.nodename).exists()

    heartbeat.delay()

    beat = wait_for(lambda: WorkerHeartbeat.objects.filter(hostname=celery_worker.nodename).first())
    assert beat is not None, celery_worker.log()[-3000:]
    assert beat.beats == 1


def test_stopping_a_worker_leaves_none_of_its_processes(celery_workers):
    worker = celery_workers.start()
    pids = worker.pids()
    assert len(pids) >= 2, "expected the main process and a pool process"

    worker.stop()

    assert worker.pids() == []
    assert not worker.alive


def test_a_killed_worker_is_gone_at_once_with_its_pool(celery_workers):
    worker = celery_workers.start(concurrency=2)
    assert len(worker.pids()) >= 3

    worker.kill()

    assert worker.pids() == []
    assert worker.process.returncode == -9
