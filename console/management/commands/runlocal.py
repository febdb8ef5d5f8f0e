"""Start the web server, a Celery worker and Celery beat together; Ctrl-C stops all three.

Each child runs in its own process group, so stopping it also stops what it started (the
worker's pool processes); whatever has not exited after a grace period is killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from console.management.commands.seed_demo import PERSONAS

GRACE_SECONDS = 10


class Command(BaseCommand):
    help = "Run the web server on 127.0.0.1:8000 with a Celery worker and beat (Ctrl-C stops all)."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000")
        parser.add_argument("--concurrency", type=int, default=2)

    def handle(self, *args, addr: str, concurrency: int, **options):
        python = sys.executable
        var = str(settings.VAR_DIR)
        os.makedirs(var, exist_ok=True)
        commands = {
            "web": [python, str(settings.BASE_DIR / "manage.py"), "runserver", "--noreload", addr],
            "worker": [
                python,
                "-m",
                "celery",
                "-A",
                "console",
                "worker",
                "--loglevel=INFO",
                f"--concurrency={concurrency}",
                "-n",
                "steward-local@%h",
            ],
            "beat": [
                python,
                "-m",
                "celery",
                "-A",
                "console",
                "beat",
                "--loglevel=INFO",
                "-s",
                os.path.join(var, "celerybeat-schedule"),
            ],
        }
        children: dict[str, subprocess.Popen] = {}
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            for name, command in commands.items():
                children[name] = subprocess.Popen(command, start_new_session=True)  # noqa: S603
            self._banner(addr)
            while not stopping:
                for name, child in children.items():
                    if child.poll() is not None:
                        self.stderr.write(f"{name} exited with code {child.returncode}; stopping.")
                        stopping = True
                        break
                time.sleep(0.5)
        finally:
            self._stop_all(children)

    def _banner(self, addr: str) -> None:
        password = settings.STEWARD_DEMO_PASSWORD or "(STEWARD_DEMO_PASSWORD)"
        db = settings.DATABASES["default"]
        lines = [
            "",
            f"  Steward is running at http://{addr}/",
            f"  database: {db['ENGINE'].rsplit('.', 1)[-1]} {db['NAME']}",
            f"  broker:   {settings.CELERY_BROKER_URL.split('@')[-1]}",
            f"  demo logins (password {password}):",
            *(
                f"    {username:<11} {roles[0].value}"
                for username, (_, _, roles, _) in PERSONAS.items()
            ),
            "  Press Ctrl-C to stop the web server, the worker and beat.",
            "",
        ]
        self.stdout.write("\n".join(lines))

    def _stop_all(self, children: dict[str, subprocess.Popen]) -> None:
        self.stdout.write(f"Stopping web server, worker and beat (at most {GRACE_SECONDS} s)...")
        # SIGTERM to each leader only: the worker's warm shutdown stops its own pool processes
        # (signalled directly, they die under it and the main process then hangs).
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + GRACE_SECONDS
        for child in children.values():
            remaining = max(0.1, deadline - time.monotonic())
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=remaining)
        for child in children.values():
            # The group may outlive its leader (pool processes): kill what is left.
            _signal_group(child, signal.SIGKILL)
            if child.poll() is None:
                child.wait()
        self.stdout.write("Stopped web server, worker and beat.")


def _signal_group(child: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, sig)
