"""CSV export of a million records: Steward's export against a bare COPY of the same rows.

Figures (DESIGN.md's BENCH lines):

- `ledger_export_csv_1m`: records/s of a whole CSV export through Steward's export code, as
  `python manage.py export_decisions --format csv --out -` runs it (a system export of the
  whole log: visibility and filter, the COPY windows, the erasure columns, SHA-256 of the
  output, then `export.made` and a checkpoint), written to /dev/null; baseline: `COPY (SELECT
  <the table's columns> ... ORDER BY seq) TO STDOUT (FORMAT csv)` of the same rows through
  psycopg to /dev/null. ratio = baseline time / our time (the throughput ratio); target >= 0.8.
  Both are bound by the database's COPY, so on a busy machine the ratio wanders around 1.
- `ledger_export_csv_1m_peak_rss`: peak resident memory (MB) of the process making our
  export; baseline: the bare COPY's process. Target: under 200 MB.

Each side runs in its own child process (best of ROUNDS, alternating); each child reports its
own peak RSS as the kernel's VmHWM (ru_maxrss would also count the parent's pages from before
the child's exec). Every run of ours appends its `export.made` record and a checkpoint, as
every export does; both sides copy up to the chain head at their start.

`bench/ledger.py` calls `main()` after filling the bench database; run alone, this script fills
`<DATABASE_URL name>_bench` up to 1M records first (it never drops it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from _common import bench_line, fill_ledger, setup_django

RECORDS = 1_000_000
ROUNDS = 3
BASELINE_COLUMNS = (
    "seq, recorded_at, event, actor_type, actor_id, actor_name, team_id, team_name, "
    "workflow_id, workflow_name, agent_id, agent_name, run_id, decision, confidence, "
    "subject_id, prev_hash, hash, canonical"
)


def _child_ours() -> dict:
    import django

    django.setup()
    from governance.decisions import DecisionFilter
    from governance.exports.selection import select
    from governance.exports.service import Export, export_to_stream

    started = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        result = export_to_stream(Export(select(DecisionFilter()), "csv", via="command"), sink)
    return {"seconds": time.perf_counter() - started, "records": result.records, "mb": _peak_mb()}


def _child_baseline() -> dict:
    import psycopg

    with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
        started = time.perf_counter()
        head_row = conn.execute("SELECT seq FROM governance_ledgerhead WHERE chain = 'main'")
        (head,) = head_row.fetchone()
        rows = 0
        statement = (
            f"COPY (SELECT {BASELINE_COLUMNS} FROM governance_decisionrecord "
            "WHERE seq <= %s ORDER BY seq) TO STDOUT (FORMAT csv)"
        )
        with (
            open(os.devnull, "wb") as sink,
            conn.cursor() as cursor,
            cursor.copy(statement, [head]) as copy,
        ):
            for data in copy:
                sink.write(data)
                rows += 1
        return {"seconds": time.perf_counter() - started, "records": rows, "mb": _peak_mb()}


def _peak_mb() -> float:
    """This process's peak resident memory in MB (VmHWM: since its own exec)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run_child(kind: str) -> dict:
    """Run one side in a child process; its report (seconds, records, peak MB)."""
    result = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--child", kind],
        stdout=subprocess.PIPE,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "console.settings"},
        check=False,
    )
    if result.returncode:
        raise SystemExit(f"the {kind} export child failed with exit status {result.returncode}")
    return json.loads(result.stdout.decode().strip().splitlines()[-1])


def main() -> None:
    best = {"ours": None, "baseline": None}
    rss = {"ours": 0.0, "baseline": 0.0}
    for _ in range(ROUNDS):
        for kind in ("baseline", "ours"):
            report = _run_child(kind)
            if best[kind] is None or report["seconds"] < best[kind]["seconds"]:
                best[kind] = report
            rss[kind] = max(rss[kind], report["mb"])
    ours, baseline = best["ours"], best["baseline"]
    print(
        f"# CSV export: ours {ours['records']:,} records in {ours['seconds']:.2f} s, bare COPY "
        f"{baseline['records']:,} in {baseline['seconds']:.2f} s (best of {ROUNDS}); targets: "
        "ratio >= 0.8, peak RSS < 200 MB",
        flush=True,
    )
    bench_line(
        "ledger_export_csv_1m",
        ours["records"] / ours["seconds"],
        "records/s",
        baseline["records"] / baseline["seconds"],
    )
    bench_line("ledger_export_csv_1m_peak_rss", rss["ours"], "MB", rss["baseline"])


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child = {"ours": _child_ours, "baseline": _child_baseline}[sys.argv[2]]
        print(json.dumps(child()), flush=True)
        sys.exit(0)
    setup_django(fresh=False)
    from governance.models import DecisionRecord

    have = DecisionRecord.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    if have < RECORDS:
        seconds = fill_ledger(RECORDS - have)
        print(f"# filled {RECORDS - have:,} records in {seconds:.0f} s", flush=True)
    main()
