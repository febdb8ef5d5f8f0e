"""Real Celery worker processes for integration tests.

`celery_workers` starts `python -m celery -A console worker` subprocesses against the test
database (pytest-django's test_* database, passed as DATABASE_URL) and the suite's broker, on a
queue unique to this test session, and stops every one of them when the test ends. Each worker
runs in its own process group, so stopping or killing it reaches its pool processes too.

    def test_something(celery_workers):
        first = celery_workers.start()
        second = celery_workers.start(concurrency=2)
        first.kill()  # SIGKILL the whole group: chaos
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings

from tests.processes import process_group_members

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 90  # generous: only a loaded machine waits that long
STOP_TIMEOUT = 10


def database_url(settings_dict: dict) -> str:
    """A DATABASE_URL (as console.env parses it) for a Django connection's settings."""
    engine = settings_dict["ENGINE"]
    name = str(settings_dict["NAME"])
    if "postgresql" in engine:
        user = quote(settings_dict.get("USER") or "", safe="")
        password = quote(settings_dict.get("PASSWORD") or "", safe="")
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = settings_dict.get("HOST") or ""
        port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
        options = settings_dict.get("OPTIONS") or {}
        query = "&".join(f"{quote(str(k))}={quote(str(v))}" for k, v in options.items())
        return f"postgres://{auth}{host}{port}/{quote(name, safe='')}" + (
            f"?{query}" if query else ""
        )
    if "sqlite" in engine and Path(name).is_absolute():
        return f"sqlite:///{name}"
    raise ValueError(
        f"a worker process cannot share this test database ({engine} {name!r}): "
        "use PostgreSQL (or an SQLite file)"
    )


class CeleryWorker:
    """One worker subprocess in its own process group, with its output in a log file."""

    def __init__(
        self,
        *,
        nodename: str,
        queue: str,
        env: dict[str, str],
        log_path: Path,
        concurrency: int = 1,
        pool: str = "prefork",
        extra_args: tuple[str, ...] = (),
    ):
        self.nodename = nodename
        self.queue = queue
        self.env = env
        self.log_path = log_path
        self.command = [
            sys.executable, "-m", "celery", "-A", "console", "worker",
            "-n", nodename, "-Q", queue, f"--concurrency={concurrency}", f"--pool={pool}",
            "--loglevel=INFO", "--without-mingle", "--without-gossip", *extra_args,
        ]  # fmt: skip
        self.process: subprocess.Popen | None = None
        self.log_offset = 0

    @property
    def pid(self) -> int:
        assert self.process is not None, "worker not started"
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def pids(self) -> list[int]:
        """The worker's processes (main process and pool children) still running."""
        return process_group_members(self.pid) if self.process else []

    def start(self, timeout: float = READY_TIMEOUT) -> CeleryWorker:
        # A worker restarted under the same name appends to the same log: read only what is new.
        self.log_offset = len(self.log())
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Wait until the worker logs that it is ready (consuming its queue).

        The log, not a remote-control ping: after a chaos test restarts the broker, this
        process's pooled broker connections are dead, and a ping would fail for that reason."""
        deadline = time.monotonic() + timeout
        marker = f"{self.nodename} ready."
        while time.monotonic() < deadline:
            if not self.alive:
                raise RuntimeError(f"worker {self.nodename} exited early:\n{self.log()[-4000:]}")
            if marker in self.log()[self.log_offset :]:
                return
            time.sleep(0.1)
        raise TimeoutError(
            f"worker {self.nodename} not ready after {timeout}s:\n{self.log()[-4000:]}"
        )

    def signal_group(self, sig: int) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, sig)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Warm shutdown (SIGTERM); whatever is left after `timeout` is killed."""
        if self.process is None:
            return
        self.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=timeout)
        while self.pids() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.kill()

    def kill(self) -> None:
        """SIGKILL the main process and its pool children at once, as a crash would."""
        if self.process is None:
            return
        self.signal_group(signal.SIGKILL)
        self.process.wait()
        deadline = time.monotonic() + 5
        while self.pids() and time.monotonic() < deadline:
            time.sleep(0.02)


class CeleryWorkers:
    """Starts workers on demand; `stop_all` ends every one started."""

    def __init__(self, *, queue: str, env: dict[str, str], log_dir: Path):
        self.queue = queue
        self.env = env
        self.log_dir = log_dir
        self.started: list[CeleryWorker] = []

    def start(self, name: str | None = None, **options) -> CeleryWorker:
        name = name or f"w{len(self.started) + 1}"
        worker = CeleryWorker(
            nodename=f"{name}-{self.queue}@pytest",
            queue=self.queue,
            env=self.env,
            log_path=self.log_dir / f"{name}.log",
            **options,
        )
        self.started.append(worker)
        return worker.start()

    def stop_all(self) -> None:
        for worker in self.started:
            worker.signal_group(signal.SIGTERM)
        for worker in self.started:
            worker.stop()


@pytest.fixture(scope="session")
def celery_queue():
    """A queue unique to this test session, also the in-process app's default queue."""
    from console.celery import app

    queue = f"steward-test-{secrets.token_hex(4)}"
    previous = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    yield queue
    app.conf.task_default_queue = previous


@pytest.fixture
def celery_worker_env(celery_queue, django_db_setup) -> dict[str, str]:
    """The environment of a worker that shares this test's database, broker and queue."""
    from django.db import connection

    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CELERY_", "STEWARD_")) and key != "DATABASE_URL"
    }
    env.update(
        DJANGO_SETTINGS_MODULE="console.settings",
        DATABASE_URL=database_url(connection.settings_dict),
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        CELERY_RESULT_BACKEND=settings.CELERY_RESULT_BACKEND,
        STEWARD_CELERY_QUEUE=celery_queue,
        # Same folders as this process: matters for the embedded broker and file results.
        STEWARD_VAR_DIR=str(settings.VAR_DIR),
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture
def celery_workers(celery_queue, celery_worker_env, tmp_path):
    workers = CeleryWorkers(queue=celery_queue, env=celery_worker_env, log_dir=tmp_path)
    try:
        yield workers
    finally:
        workers.stop_all()


@pytest.fixture
def celery_worker(celery_workers) -> CeleryWorker:
    """One running worker (prefork, concurrency 1) on the session's queue."""
    return celery_workers.start()
