"""Engine benchmarks on PostgreSQL, Redis and real worker processes (issue 6).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/steward \\
    CELERY_BROKER_URL=redis://127.0.0.1:6379/0 python bench/engine.py

Figures, each next to its baseline from the same run:

- engine_webhook_runs_per_s: single-step rules workflow, signed webhook POSTs through the whole
  Django stack from BENCH_CLIENTS sender processes (as independent senders would post them;
  one sender measures one request's latency, not the system's throughput) until every run is
  finished with its decisions in the ledger, after WARM_UP_RUNS uncounted runs per sender;
  baseline: the same number of raw Celery no-op tasks (`ping`) sent and awaited.
- engine_step_overhead_ms: a 10-step sequential workflow, one run at a time, time per step;
  baseline: a raw Celery chain of 10 no-op tasks, time per task. Ratio = ours / baseline.
- engine_start_latency_p50_ms / _p95_ms: API POST /api/v1/workflows/{id}/runs/ until the
  response (the run row, its ledger record and its first step committed and sent to the
  broker); baseline: a bare Django view inserting one row, same middleware.

Settings are production's (bench/_common.py `production_settings`: DEBUG off, made-up keys),
in this process, the webhook senders and the workers; DEBUG=true in the environment measures
the development settings instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
import uuid

from _common import ROOT, bench_line, production_settings, setup_django

WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "4"))
RUNS = int(os.environ.get("BENCH_RUNS", "600"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "4"))  # webhook senders, one process each
SEQUENTIAL_RUNS = int(os.environ.get("BENCH_SEQUENTIAL_RUNS", "20"))
LATENCY_SAMPLES = int(os.environ.get("BENCH_LATENCY_SAMPLES", "200"))
WARM_UP_RUNS = 3  # per sender, not counted


def start_workers(queue: str) -> list[subprocess.Popen]:
    env = {**os.environ, "STEWARD_CELERY_QUEUE": queue, "PYTHONUNBUFFERED": "1"}
    procs = []
    for index in range(WORKERS):
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "console",
                    "worker",
                    "-Q",
                    queue,
                    "-n",
                    f"bench{index}-{queue}@%h",
                    f"--concurrency={CONCURRENCY}",
                    "--loglevel=WARNING",
                    "--without-mingle",
                    "--without-gossip",
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
    from console.celery import app

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answers = app.control.ping(timeout=0.5)
        if sum(1 for a in answers for name in a if queue in name) >= WORKERS:
            return procs
    raise SystemExit("bench workers did not start")


def stop_workers(procs) -> None:
    import signal

    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def build(people):
    from agents import versions
    from governance.models import Team

    team = Team.objects.get(name="Onboarding")
    rules = {
        "kind": "rules",
        "description": "bench",
        "input_fields": [{"name": "amount", "type": "number"}],
        "output_fields": [{"name": "band", "type": "text"}],
        "config": {
            "hit_policy": "first",
            "rules": [
                {
                    "condition": "input.amount < 1000.0",
                    "outputs": {"band": "small"},
                    "decision": "approve",
                    "confidence": 0.95,
                },
                {
                    "condition": "input.amount >= 1000.0",
                    "outputs": {"band": "large"},
                    "decision": "refer",
                    "confidence": 0.9,
                },
            ],
        },
    }
    agent = versions.create(
        versions.AGENT, actor=people["builder"], name="Bench band", team=team, definition=rules
    )
    versions.submit(agent, actor=people["builder"])
    versions.approve(agent, actor=people["approver"], number=1)
    # A second agent takes the band forward, so each of the ten steps has input to map.
    relay = dict(
        rules,
        input_fields=[
            {"name": "amount", "type": "number"},
            {"name": "band", "type": "text", "required": False},
        ],
    )
    relay_agent = versions.create(
        versions.AGENT, actor=people["builder"], name="Bench relay", team=team, definition=relay
    )
    versions.submit(relay_agent, actor=people["builder"])
    versions.approve(relay_agent, actor=people["approver"], number=1)

    def publish_flow(name, steps, triggers=()):
        flow = versions.create(
            versions.WORKFLOW,
            actor=people["builder"],
            name=name,
            team=team,
            definition={
                "input_fields": [{"name": "amount", "type": "number"}],
                "pattern": "sequential",
                "steps": steps,
                "triggers": list(triggers),
            },
        )
        versions.submit(flow, actor=people["builder"])
        versions.approve(flow, actor=people["approver"], number=1)
        flow.refresh_from_db()
        return flow

    single = publish_flow(
        "Bench single",
        [{"key": "band", "agent_id": agent.pk}],
        [{"type": "webhook", "run_as": "operator"}],
    )
    ten = publish_flow(
        "Bench ten",
        [
            {
                "key": f"s{i}",
                "agent_id": relay_agent.pk,
                **({"input_mapping": {"band": f"steps.s{i - 1}.output.band"}} if i else {}),
            }
            for i in range(10)
        ],
    )
    return single, ten


def wait_finished(run_ids, timeout=600, sweep=True, poll=0.02):
    from agents.engine import dispatch
    from agents.models import Run

    deadline = time.monotonic() + timeout
    last_sweep = time.monotonic()
    while time.monotonic() < deadline:
        left = Run.objects.filter(pk__in=run_ids).exclude(status=Run.Status.FINISHED).count()
        if not left:
            return time.perf_counter()
        if sweep and time.monotonic() - last_sweep > 5:
            dispatch.sweep()  # what beat does every 5 s
            last_sweep = time.monotonic()
        time.sleep(poll)
    raise SystemExit(f"runs did not finish within {timeout}s")


def _post_webhooks(slug, secret, first, count, queue, out, ready, go) -> None:
    """One webhook sender (its own process): `count` signed POSTs through the whole Django
    stack, each with a distinct amount; sends back the run ids."""
    os.environ["STEWARD_CELERY_QUEUE"] = queue
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    import django

    django.setup()
    from django.test import Client

    from agents.engine import triggers

    client = Client(HTTP_HOST="localhost")

    def send(amount):
        body = json.dumps({"amount": amount}).encode()
        stamp = int(time.time())
        response = client.post(
            f"/hooks/{slug}/",
            secure=True,  # production redirects HTTP
            data=body,
            content_type="application/json",
            HTTP_X_STEWARD_TIMESTAMP=str(stamp),
            HTTP_X_STEWARD_SIGNATURE=triggers.sign(secret, stamp, body),
        )
        if response.status_code != 202:
            raise RuntimeError(f"webhook answered {response.status_code}: {response.content[:300]}")
        return response.json()["run"]

    # Warm up with real runs (imports compiled on first use, URL resolver, database and broker
    # connections: seconds in a new process, and the workers' children likewise), then wait
    # for the others, so the figure counts steady work, as the baseline's does: its no-op
    # tasks run after ours, on warm workers.
    try:
        out.put(("warm", [send(-1 - first - n) for n in range(WARM_UP_RUNS)]))
        ready.wait()
        go.wait()
        out.put(("ok", [send(i) for i in range(first, first + count)]))
    except RuntimeError as exc:
        out.put(("error", str(exc)))


def webhook_throughput(single, queue: str) -> None:
    """CLIENTS processes post RUNS webhooks between them, as independent senders would; the
    figure is runs finished per second from the first POST to the last run's end."""
    import multiprocessing

    from django.db import connections

    from agents.engine import triggers
    from console.tasks import ping

    secret = triggers.rotate_webhook_secret(single, actor=_people()["builder"])
    connections.close_all()
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    share = -(-RUNS // CLIENTS)
    shares = [(n * share, min(share, RUNS - n * share)) for n in range(CLIENTS) if n * share < RUNS]
    ready, go = context.Barrier(len(shares) + 1), context.Event()
    senders = [
        context.Process(
            target=_post_webhooks,
            args=(single.slug, secret, first, count, queue, out, ready, go),
        )
        for first, count in shares
    ]
    for sender in senders:
        sender.start()
    warm = []
    for _ in senders:
        status, value = out.get(timeout=300)
        if status != "warm":
            raise SystemExit(value)
        warm.extend(value)
    wait_finished(warm)
    ready.wait(timeout=300)
    began = time.perf_counter()
    go.set()
    run_ids = []
    for _ in senders:
        status, value = out.get(timeout=600)
        if status != "ok":
            raise SystemExit(value)
        run_ids.extend(value)
    sent = time.perf_counter()
    for sender in senders:
        sender.join()
    done = wait_finished(run_ids)
    ours = RUNS / (done - began)

    pinged = time.perf_counter()
    results = [ping.delay() for _ in range(RUNS)]
    for result in results:
        result.get(timeout=120)
    baseline = RUNS / (time.perf_counter() - pinged)
    bench_line("engine_webhook_runs_per_s", ours, "runs/s", baseline)
    print(
        f"  ({RUNS} runs; {len(senders)} senders, webhooks accepted after {sent - began:.2f}s, "
        f"all runs finished after {done - began:.2f}s; "
        f"{WORKERS} workers x {CONCURRENCY})",
        flush=True,
    )


def step_overhead(ten) -> None:
    from celery import chain

    from agents.engine import runs
    from agents.models import Run
    from console.tasks import ping

    people = _people()
    timings = []
    for i in range(SEQUENTIAL_RUNS):
        began = time.perf_counter()
        run = runs.start(
            ten.published_version, {"amount": i}, actor=people["operator"], trigger=Run.Trigger.API
        )
        wait_finished([run.pk], sweep=False, poll=0.005)  # 0.5 ms a step at most
        timings.append((time.perf_counter() - began) / 10)
    ours = statistics.median(timings) * 1000
    chains = []
    for _ in range(SEQUENTIAL_RUNS):
        began = time.perf_counter()
        chain(*(ping.si() for _ in range(10))).apply_async().get(timeout=60)
        chains.append((time.perf_counter() - began) / 10)
    baseline = statistics.median(chains) * 1000
    bench_line("engine_step_overhead_ms", ours, "ms/step", baseline)


def start_latency(single) -> None:
    from django.conf import settings
    from django.test import Client
    from django.urls import NoReverseMatch, clear_url_caches, reverse
    from rest_framework.authtoken.models import Token

    settings.ROOT_URLCONF = "_bare_view_urls"
    clear_url_caches()
    people = _people()
    token, _ = Token.objects.get_or_create(user=people["operator"])
    client = Client(HTTP_AUTHORIZATION=f"Token {token.key}", HTTP_HOST="localhost")
    try:
        url = reverse("api-workflow-runs", args=[single.pk])
    except NoReverseMatch:
        url = f"/api/v1/workflows/{single.pk}/runs/"
    ours, base = [], []
    for i in range(LATENCY_SAMPLES):
        began = time.perf_counter()
        response = client.post(
            url, data={"input": {"amount": i}}, content_type="application/json", secure=True
        )
        ours.append(time.perf_counter() - began)
        if response.status_code not in (200, 201, 202):
            raise SystemExit(f"{url} answered {response.status_code}: {response.content[:300]}")
        began = time.perf_counter()
        client.post("/bench/insert/", secure=True)
        base.append(time.perf_counter() - began)
    for label, q in (("p50", 50), ("p95", 95)):
        mine = statistics.quantiles(ours, n=100)[q - 1] * 1000
        theirs = statistics.quantiles(base, n=100)[q - 1] * 1000
        bench_line(f"engine_start_latency_{label}_ms", mine, "ms", theirs)


def _people():
    from governance.models import User

    return {u.username: u for u in User.objects.all()}


def main() -> None:
    production_settings()  # as deployed; workers and senders inherit the environment
    setup_django(fresh=True, suffix="_bench_engine")
    from django.conf import settings

    if not settings.CELERY_BROKER_URL.startswith("redis"):
        raise SystemExit("the engine benchmark needs Redis: set CELERY_BROKER_URL=redis://...")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"# DEBUG={settings.DEBUG}; load average {load}", flush=True)
    from console.celery import app
    from console.management.commands.seed_demo import seed_people

    queue = f"bench-{uuid.uuid4().hex[:8]}"
    app.conf.task_default_queue = queue
    seed_people("bench-password-1")
    single, ten = build(_people())
    procs = start_workers(queue)
    try:
        webhook_throughput(single, queue)
        step_overhead(ten)
        start_latency(single)
    finally:
        stop_workers(procs)


if __name__ == "__main__":
    main()
