"""Start-up refuses unsafe settings when DEBUG is off, naming the variable.

Each case starts a fresh interpreter, because settings are read once at import.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOOD_KEY = "k3y-" + "Zq8wX1pL0vT7nB2mR5cY9hJ4fD6gS3aE" * 2
SAFE = {
    "DEBUG": "false",
    "SECRET_KEY": GOOD_KEY,
    "ALLOWED_HOSTS": "steward.example.com",
    "STEWARD_DEMO_PASSWORD": "",
    "DATABASE_URL": "sqlite:////tmp/steward-startup-guard.sqlite3",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/9",
    "STEWARD_ENCRYPTION_KEY": "1TNOjVFEPbQKAN-Yh1Kb0w6IHe0dqlJJXi8c3-ODT4c=",
    "STEWARD_SIGNING_KEY": "/etc/steward/signing-key.pem",
}


def start(env_overrides: dict, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in SAFE}
    env.update({k: v for k, v in env_overrides.items() if v is not None})
    command = args or ("-c", "import django; django.setup(); print('started')")
    return subprocess.run(
        [sys.executable, *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_safe_production_settings_start():
    result = start(SAFE)
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


def test_check_deploy_reports_nothing_with_production_settings():
    result = start(SAFE, "manage.py", "check", "--deploy", "--fail-level", "DEBUG")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize(
    ("override", "variable"),
    [
        ({"SECRET_KEY": None}, "SECRET_KEY"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"STEWARD_DEMO_PASSWORD": "steward-demo"}, "STEWARD_DEMO_PASSWORD"),
        ({"ALLOWED_HOSTS": None}, "ALLOWED_HOSTS"),
        ({"STEWARD_ENCRYPTION_KEY": None}, "STEWARD_ENCRYPTION_KEY"),
        ({"STEWARD_SIGNING_KEY": None}, "STEWARD_SIGNING_KEY"),
        ({"DEBUG": "perhaps"}, "DEBUG"),
        ({"DATABASE_URL": "oracle://db/x"}, "DATABASE_URL"),
        ({"CELERY_TASK_TIME_LIMIT": "soon"}, "CELERY_TASK_TIME_LIMIT"),
        ({"CELERY_BROKER_URL": "ftp://x"}, "CELERY_BROKER_URL"),
    ],
)
def test_unsafe_or_malformed_settings_stop_startup_naming_the_variable(override, variable):
    result = start({**SAFE, **override})  # None: the variable is unset
    assert result.returncode != 0
    assert f"Environment variable {variable}" in result.stderr
    assert "started" not in result.stdout
