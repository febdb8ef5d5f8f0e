"""The engine on real Celery worker processes, Redis and PostgreSQL: every pattern end to end,
and the chaos loop (killed workers, restarted broker, dropped database connections).

Chaos scenarios repeat CHAOS_REPEAT times (5 in `make test`, 50 in `make chaos`). Each run must
reach a terminal state within the bound, with no decision recorded twice or missing, and the
ledger must verify afterwards.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.db import connection

from agents import versions
from agents.engine import runs
from agents.models import Connection, Run
from governance.models import DecisionRecord, Team
from tests.integration.engine_support import (
    assert_exactly_once,
    assert_ledger_intact,
    wait_for_runs,
    wait_for_step,
)
from tests.support.engine import publish, rules_agent, workflow
from tests.support.http_service import Reply, make_service_fixture  # noqa: F401 (fixture)
from tests.support.patterns import build_all

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

CHAOS_REPEAT = int(os.environ.get("CHAOS_REPEAT", "5"))
LEASE = 2
RUN_BOUND = 45  # seconds within which every run must reach a terminal state


@pytest.fixture
def fast_engine(settings, celery_worker_env):
    """Short leases and resend delays in the workers and in this process (which sweeps)."""
    settings.STEWARD_STEP_LEASE_SECONDS = LEASE
    settings.STEWARD_RESEND_AFTER_SECONDS = 1
    celery_worker_env.update(
        STEWARD_STEP_LEASE_SECONDS=str(LEASE), STEWARD_RESEND_AFTER_SECONDS="1"
    )


def start(flow, data, people):
    return runs.start(
        flow.published_version, data, actor=people["operator"], trigger=Run.Trigger.MANUAL
    )


PATTERNS = ["sequential", "concurrent", "router", "maker_checker", "supervisor", "conversation"]


def test_every_pattern_on_real_workers(fast_engine, celery_workers, demo_people):
    """All seven patterns' demo shapes at once on two workers (event-driven starts are in
    tests/unit/test_engine_patterns.py; here every run is started the same way)."""
    celery_workers.start("a", concurrency=2)
    celery_workers.start("b", concurrency=1)
    flows = build_all(demo_people)
    started = {
        pattern: start(flows[pattern][0], flows[pattern][1], demo_people) for pattern in PATTERNS
    }
    finished = {run.pk: run for run in wait_for_runs(started.values(), timeout=RUN_BOUND)}
    for pattern, run in started.items():
        run = finished[run.pk]
        assert (run.status, run.outcome) == (Run.Status.FINISHED, Run.Outcome.COMPLETED), (
            pattern,
            run.status,
        )
        assert run.output == flows[pattern][2], pattern
        events = list(
            DecisionRecord.objects.filter(run_id=str(run.pk))
            .order_by("seq")
            .values_list("event", flat=True)
        )
        assert (events[0], events[-1]) == ("run.started", "run.finished"), pattern
        assert_exactly_once(run)
    assert_ledger_intact()


# --- Chaos -------------------------------------------------------------------------------------
@pytest.fixture
def slow_flow(demo_people, make_service):
    """http step (1.5 s answer from a loopback service) then a rules step."""
    service = make_service()
    service.route("GET", "/score", Reply(json={"risk": "low", "decision": "scored"}, delay=1.5))
    team = Team.objects.get(name="Onboarding")
    endpoint = Connection.objects.create(
        name="Scoring service",
        team=team,
        kind=Connection.Kind.HTTP,
        base_url=f"http://127.0.0.1:{service.port}",
        allow_internal=True,
        timeout_seconds=10,
    )
    scorer = publish(
        versions.AGENT,
        None,
        {
            "kind": "http",
            "description": "slow scoring service",
            "input_fields": [{"name": "customer_id", "type": "text"}],
            "output_fields": [{"name": "risk", "type": "text"}],
            "retry_limit": 2,
            "timeout_seconds": 10,
            "config": {
                "connection_id": str(endpoint.pk),
                "method": "GET",
                "path_template": "/score",
                "response_mapping": {"risk": "/risk"},
                "decision_pointer": "/decision",
            },
        },
        author=demo_people["builder"],
        approver=demo_people["approver"],
        name="Scorer",
        team=team,
    )
    decide = rules_agent(
        "Decide",
        team,
        demo_people,
        inputs=[("risk", "text", True)],
        outputs=[("limit", "number")],
        rows=[
            {"condition": "input.risk == 'low'", "outputs": {"limit": 5000}, "decision": "approve"}
        ],
        default={"outputs": {"limit": 0}, "decision": "decline"},
    )
    flow = workflow(
        "Slow",
        team,
        demo_people,
        pattern="sequential",
        inputs=[("customer_id", "text")],
        steps=[
            {"key": "score", "agent_id": scorer.pk},
            {
                "key": "decide",
                "agent_id": decide.pk,
                "input_mapping": {"risk": "steps.score.output.risk"},
            },
        ],
    )
    return flow, service


def _check_completed(run_list):
    for run in run_list:
        assert (run.status, run.outcome) == (Run.Status.FINISHED, Run.Outcome.COMPLETED), (
            f"run {run.pk} is {run.status}/{run.outcome}"
        )
        assert run.output == {"limit": 5000}
        assert_exactly_once(run)
    assert_ledger_intact()


def test_chaos_sigkill_the_worker_child_mid_step(
    fast_engine, celery_workers, demo_people, slow_flow
):
    flow, _ = slow_flow
    worker = celery_workers.start()
    started = []
    for i in range(CHAOS_REPEAT):
        run = start(flow, {"customer_id": f"C{i}"}, demo_people)
        started.append(run)
        assert wait_for_step(run, "score", "running"), worker.log()[-2000:]
        time.sleep(0.3)  # inside the 1.5 s call
        children = [pid for pid in worker.pids() if pid != worker.pid]
        for pid in children:
            os.kill(pid, signal.SIGKILL)
        wait_for_runs([run], timeout=RUN_BOUND)
    _check_completed(wait_for_runs(started, timeout=RUN_BOUND))


def test_chaos_sigkill_the_whole_worker(fast_engine, celery_workers, demo_people, slow_flow):
    flow, _ = slow_flow
    worker = celery_workers.start()
    started = []
    for i in range(CHAOS_REPEAT):
        run = start(flow, {"customer_id": f"C{i}"}, demo_people)
        started.append(run)
        assert wait_for_step(run, "score", "running"), worker.log()[-2000:]
        time.sleep(0.3)
        worker.kill()
        worker = celery_workers.start()
        wait_for_runs([run], timeout=RUN_BOUND)
    _check_completed(wait_for_runs(started, timeout=RUN_BOUND))


def _local_redis():
    url = urlsplit(settings.CELERY_BROKER_URL)
    if url.hostname not in ("127.0.0.1", "localhost") or not shutil.which("redis-server"):
        pytest.skip("needs a local redis-server to restart")
    return url.port or 6379


def _restart_redis(port: int) -> None:
    subprocess.run(
        ["redis-cli", "-p", str(port), "shutdown", "nosave"],
        check=False,
        capture_output=True,
        timeout=10,
    )
    subprocess.run(
        [
            "redis-server",
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            "/tmp",
        ],
        check=True,
        capture_output=True,
        timeout=10,
    )
    for _ in range(100):
        if (
            subprocess.run(
                ["redis-cli", "-p", str(port), "ping"], capture_output=True, check=False
            ).stdout.strip()
            == b"PONG"
        ):
            return
        time.sleep(0.05)
    raise RuntimeError("redis did not come back")


def test_chaos_restart_redis_during_a_run(fast_engine, celery_workers, demo_people, slow_flow):
    port = _local_redis()
    flow, _ = slow_flow
    worker = celery_workers.start()
    started = []
    for i in range(CHAOS_REPEAT):
        run = start(flow, {"customer_id": f"C{i}"}, demo_people)
        started.append(run)
        assert wait_for_step(run, "score", "running"), worker.log()[-2000:]
        _restart_redis(port)
        wait_for_runs([run], timeout=RUN_BOUND)
    _check_completed(wait_for_runs(started, timeout=RUN_BOUND))


def test_chaos_drop_postgresql_connections_during_a_run(
    fast_engine, celery_workers, demo_people, slow_flow
):
    flow, _ = slow_flow
    worker = celery_workers.start()
    started = []
    for i in range(CHAOS_REPEAT):
        run = start(flow, {"customer_id": f"C{i}"}, demo_people)
        started.append(run)
        assert wait_for_step(run, "score", "running"), worker.log()[-2000:]
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        wait_for_runs([run], timeout=RUN_BOUND)
    _check_completed(wait_for_runs(started, timeout=RUN_BOUND))


def test_a_run_started_while_the_broker_is_down_starts_when_it_is_back(
    fast_engine, celery_workers, demo_people, slow_flow
):
    port = _local_redis()
    flow, _ = slow_flow
    celery_workers.start()
    subprocess.run(
        ["redis-cli", "-p", str(port), "shutdown", "nosave"],
        check=False,
        capture_output=True,
        timeout=10,
    )
    try:
        began = time.monotonic()
        run = start(flow, {"customer_id": "C1"}, demo_people)  # the request succeeds
        assert time.monotonic() - began < 10
        assert run.status == Run.Status.RUNNING
    finally:
        _restart_redis(port)
    _check_completed(wait_for_runs([run], timeout=RUN_BOUND))
