"""Many processes appending at once never fork or gap the chain."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from django.db import connection

from governance.verify import verify_chain
from tests.integration.ledger_helpers import ROOT, subprocess_env

WRITERS = 8
APPENDS = 1000

# Each writer appends its records in transactions of 1, 3 and 10 appends in turn, and every
# seventh transaction fails after appending (rolled back: its records must leave no gap).
# Commits skip the wait for the disk (synchronous_commit off, this session only): what is under
# test is the serialisation of appenders, which is the same either way, and the test stays fast.
WRITER = """
import sys, time
from pathlib import Path
import django
django.setup()
from django.db import connection, transaction
from governance import ledger
name, count, ready, go = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
with connection.cursor() as cursor:
    cursor.execute("SET synchronous_commit = off")
class Failed(Exception):
    pass
ready.touch()
while not go.exists():
    time.sleep(0.002)
done = attempt = 0
while done < count:
    size = min((1, 3, 10)[attempt % 3], count - done)
    try:
        with transaction.atomic():
            for i in range(done, done + size):
                ledger.append("test.concurrent", actor=None, body={"writer": name, "i": i})
            if attempt % 7 == 6:
                raise Failed
        done += size
    except Failed:
        pass
    attempt += 1
"""


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_eight_processes_appending_at_once_leave_a_gapless_valid_chain(tmp_path):
    go = tmp_path / "go"
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, f"w{n}", str(APPENDS), str(tmp_path / f"r{n}"), go],
            cwd=ROOT,
            env=subprocess_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(WRITERS)
    ]
    try:
        deadline = time.monotonic() + 60
        while not all((tmp_path / f"r{n}").exists() for n in range(WRITERS)):
            assert all(w.poll() is None for w in writers), [w.communicate() for w in writers]
            assert time.monotonic() < deadline, "writers not ready"
            time.sleep(0.02)
        go.touch()
        for writer in writers:
            _, stderr = writer.communicate(timeout=120)
            assert writer.returncode == 0, stderr
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
                writer.wait()

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), min(seq), max(seq) FROM governance_decisionrecord")
        assert cursor.fetchone() == (WRITERS * APPENDS, 1, WRITERS * APPENDS)
        cursor.execute(
            "SELECT count(DISTINCT (canonical::jsonb -> 'body' ->> 'writer', "
            "canonical::jsonb -> 'body' ->> 'i')) FROM governance_decisionrecord"
        )
        assert cursor.fetchone()[0] == WRITERS * APPENDS  # each record once, none lost
        cursor.execute("SELECT seq, hash FROM governance_ledgerhead")
        head = cursor.fetchone()
    report = verify_chain()
    assert report.ok, report.reason
    assert (report.records_checked, report.head_seq, report.head_hash) == (
        WRITERS * APPENDS,
        *head,
    )
