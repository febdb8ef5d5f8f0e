import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_healthz_answers_without_login(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_is_ready_when_database_and_broker_answer(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json()["checks"] == {"database": "ok", "broker": "ok"}


@pytest.mark.django_db
def test_readyz_names_the_broker_when_it_does_not_answer(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["broker"]
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"].startswith("unreachable")


def test_readyz_names_the_database_when_it_does_not_answer():
    # A fresh process whose DATABASE_URL points at a closed port: the real driver fails.
    code = (
        "import django, json; django.setup(); from django.test import Client; "
        "r = Client().get('/readyz', HTTP_HOST='127.0.0.1'); "
        "print(r.status_code); print(r.content.decode())"
    )
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}},
        "DATABASE_URL": "postgres://postgres@127.0.0.1:1/steward",
        "STEWARD_VAR_DIR": "/tmp/steward-readyz-test",
    }
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    status, body = result.stdout.strip().split("\n", 1)
    assert status == "503", result.stderr
    body = json.loads(body)
    assert body["failing"] == ["database"]
    assert body["checks"]["database"].startswith("unreachable: OperationalError")
    assert body["checks"]["broker"] == "ok"
