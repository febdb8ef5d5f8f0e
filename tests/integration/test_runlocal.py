"""`manage.py runlocal` (what `make run` starts) on the embedded default: SQLite and a broker
folder, no server needed. It serves, its worker runs tasks, and Ctrl-C leaves nothing behind."""

from __future__ import annotations

import contextlib
import http.cookiejar
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.processes import process_tree, still_running

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 90
STOP_TIMEOUT = 30
# Settings the parent may have pointed at PostgreSQL, Redis or production values.
NOT_INHERITED = ("DATABASE_URL", "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DJANGO_SETTINGS_MODULE")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def embedded_env(var_dir: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in NOT_INHERITED and not key.startswith(("CELERY_", "STEWARD_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="console.settings",
        STEWARD_VAR_DIR=str(var_dir),
        DATABASE_URL=f"sqlite:///{var_dir / 'x.sqlite3'}",
        PYTHONUNBUFFERED="1",
    )
    return env


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def get(url: str, opener=None, data: dict | None = None) -> tuple[int, str]:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    try:
        with (opener or urllib.request.build_opener()).open(url, data=body, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@dataclass
class RunLocal:
    process: subprocess.Popen
    env: dict[str, str]
    url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def runlocal(tmp_path):
    """A running `manage.py runlocal` on a fresh SQLite file and broker folder."""
    var_dir = tmp_path / "var"
    env = embedded_env(var_dir)
    manage(env, "migrate", "--no-input")
    manage(env, "seed_demo")
    port = free_port()
    log_path = tmp_path / "runlocal.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "runlocal", "--addr", f"127.0.0.1:{port}"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own group, as a terminal's foreground job: Ctrl-C is SIGINT to this group.
            start_new_session=True,
        )
    try:
        yield RunLocal(process, env, f"http://127.0.0.1:{port}", log_path)
    finally:
        if process.poll() is None:  # the test failed before stopping it
            for proc in process_tree(process.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
            process.wait()


def wait_ready(run: RunLocal) -> float:
    started = time.monotonic()
    deadline = started + READY_TIMEOUT
    status = None
    while time.monotonic() < deadline:
        assert run.process.poll() is None, f"runlocal exited early:\n{run.log()[-4000:]}"
        try:
            status, _ = get(run.url + "/readyz")
        except OSError:  # not listening yet
            status = None
        if status == 200:
            return time.monotonic() - started
        time.sleep(0.25)
    pytest.fail(f"/readyz not 200 within {READY_TIMEOUT}s (last {status}):\n{run.log()[-4000:]}")


def sign_in(base_url: str, username: str, password: str) -> tuple[int, str]:
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    status, html = get(base_url + "/accounts/login/", opener)
    assert status == 200
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    credentials = {"csrfmiddlewaretoken": token, "username": username, "password": password}
    return get(base_url + "/accounts/login/", opener, data=credentials)


def test_runlocal_serves_runs_tasks_and_ctrl_c_stops_every_process(runlocal):
    wait_ready(runlocal)

    status, html = get(runlocal.url + "/accounts/login/")
    assert status == 200
    assert "Sign in" in html
    status, html = sign_in(runlocal.url, "builder", "steward-demo")
    assert status == 200
    assert ">Builder workspace</h2>" in html

    # The embedded worker really runs tasks: a client in the same environment gets the answer.
    client = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from console.tasks import ping; "
            "print(ping.delay().get(timeout=30))",
        ],
        cwd=ROOT,
        env=runlocal.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert client.stdout.strip() == "pong", client.stderr[-3000:] + runlocal.log()[-3000:]

    log = runlocal.log()
    assert f"Steward is running at {runlocal.url}/" in log
    assert "builder2" in log  # the demo logins are printed

    # Web server, worker (with its pool processes) and beat, each leading its own group.
    procs = process_tree(runlocal.process.pid)
    groups = {proc.pgid for proc in procs} - {runlocal.process.pid}
    assert len(groups) == 3, procs
    assert len(procs) >= 6, procs  # runlocal, runserver, beat, worker and 2 pool processes

    os.killpg(runlocal.process.pid, signal.SIGINT)
    assert runlocal.process.wait(timeout=STOP_TIMEOUT) == 0, runlocal.log()[-3000:]

    assert still_running(procs) == []
    log = runlocal.log()
    assert "Stopped web server, worker and beat." in log
    # The worker stopped its own pool processes (signalled directly, they die under it with
    # "Process 'ForkPoolWorker-1' ... exited with 'signal 15 (SIGTERM)'" and the worker hangs).
    assert "exited with 'signal" not in log
