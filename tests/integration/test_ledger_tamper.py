"""The tamper corpus: every way of changing the ledger behind Steward's back is caught by
`verify_ledger`, which names the first bad seq.

Tampering needs the append-only triggers lifted, as only a superuser or the table owner could;
they are put back inside the tampering's transaction.

Every test runs twice: verified by one process, and with the chain split over two (ranges of a
few records, so that tampered records fall at and around a range boundary). Worker processes
only see committed rows, so the second run's tests commit (a transactional test database).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from contextlib import contextmanager

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import CommandError, call_command
from django.db import transaction

from governance import checkpoints, keys, ledger, verify
from governance.canonical import canonical_bytes
from governance.models import Checkpoint, DecisionRecord
from tests.integration.ledger_helpers import (
    ROOT,
    fill,
    rechain,
    subprocess_env,
    triggers_lifted,
)

pytestmark = pytest.mark.django_db

# The ranges each verification of the running test was split into (two-worker runs only).
SPLITS: list[list[tuple[int, int | None]]] | None = None


@pytest.fixture(
    autouse=True,
    params=[
        pytest.param(1, id="1-worker"),
        pytest.param(
            2,
            id="2-workers",
            marks=[pytest.mark.postgres, pytest.mark.django_db(transaction=True)],
        ),
    ],
)
def workers(request, settings, monkeypatch):
    global SPLITS
    settings.STEWARD_VERIFY_WORKERS = request.param
    if request.param == 1:
        yield 1
        return
    monkeypatch.setattr(verify, "MIN_RANGE_RECORDS", 1)
    splits, plan = [], verify._ranges

    def planned(*args):
        splits.append(plan(*args))
        return splits[-1]

    monkeypatch.setattr(verify, "_ranges", planned)
    SPLITS = splits
    try:
        yield request.param
    finally:
        SPLITS = None


@contextmanager
def tampering():
    """`triggers_lifted`, in a transaction of its own (committed in the two-worker runs)."""
    with transaction.atomic(), triggers_lifted() as cursor:
        yield cursor


def verify_ledger(*args: str) -> tuple[int, dict]:
    """Run the command as `manage.py verify_ledger --json` would; return (exit code, report)."""
    out = io.StringIO()
    splits_before = len(SPLITS) if SPLITS is not None else 0
    try:
        call_command("verify_ledger", "--json", *args, stdout=out)
        code = 0
    except CommandError as exc:
        code = exc.returncode
    if SPLITS is not None:  # the chain was really split
        assert len(SPLITS) == splits_before + 1
        assert len(SPLITS[-1]) == 2, SPLITS[-1]
    return code, json.loads(out.getvalue())


def assert_broken_at(seq: int, *words: str) -> dict:
    code, report = verify_ledger()
    assert code == 1
    assert report["ok"] is False
    assert report["first_bad_seq"] == seq, report["reason"]
    for word in words:
        assert word in report["reason"]
    return report


def test_an_intact_chain_exits_0_and_records_ledger_verified():
    fill(10)
    code, report = verify_ledger()
    assert code == 0
    assert report["ok"] is True
    assert (report["records_checked"], report["head_seq"]) == (10, 10)
    assert report["head_hash"] == DecisionRecord.objects.get(seq=10).hash
    last = DecisionRecord.objects.order_by("-seq").first()
    assert last.event == "ledger.verified"
    assert last.actor_type == "system"
    body = json.loads(last.canonical)["body"]
    assert body["ok"] is True
    assert body["records_checked"] == 10
    assert last.decision == "intact"


def test_an_intact_chain_gets_a_checkpoint_over_the_head_it_verified():
    fill(10)
    verify_ledger()
    checkpoint = Checkpoint.objects.get(reason="verification")
    assert (checkpoint.seq, checkpoint.hash) == (10, DecisionRecord.objects.get(seq=10).hash)
    # The chain, its ledger.verified record and the new checkpoint verify again.
    assert verify_ledger()[0] == 0


def test_one_changed_byte_in_a_body_is_caught_at_that_record():
    fill(10)
    with tampering() as cursor:
        cursor.execute(
            "UPDATE governance_decisionrecord SET canonical = "
            "replace(canonical, '\"amount\":107', '\"amount\":108') WHERE seq = 7"
        )
    assert_broken_at(7, "does not match its stored hash")


def test_a_changed_seq_is_caught_where_the_record_is_missing():
    fill(10)
    with tampering() as cursor:
        cursor.execute("UPDATE governance_decisionrecord SET seq = 1007 WHERE seq = 7")
    assert_broken_at(7, "record 7 is missing")


def test_a_deleted_middle_record_is_caught_at_its_seq():
    fill(10)
    with tampering() as cursor:
        cursor.execute("DELETE FROM governance_decisionrecord WHERE seq = 5")
    assert_broken_at(5, "record 5 is missing")


def test_two_swapped_records_are_caught_at_the_first_of_them():
    fill(10)
    with tampering() as cursor:
        cursor.execute("UPDATE governance_decisionrecord SET seq = -7 WHERE seq = 7")
        cursor.execute("UPDATE governance_decisionrecord SET seq = 7 WHERE seq = 8")
        cursor.execute("UPDATE governance_decisionrecord SET seq = 8 WHERE seq = -7")
    assert_broken_at(7, "is record 8", "moved or reordered")


def test_a_relinked_record_is_caught_by_its_prev_hash():
    fill(10)
    with tampering() as cursor:
        cursor.execute(
            "UPDATE governance_decisionrecord SET prev_hash = %s WHERE seq = 6", ["ab" * 32]
        )
    assert_broken_at(6, "prev_hash does not match record 5's hash")


def test_a_truncated_tail_is_caught_through_the_latest_checkpoint():
    fill(10)
    checkpoints.make_checkpoint("manual")
    with tampering() as cursor:
        cursor.execute("DELETE FROM governance_decisionrecord WHERE seq > 8")
    assert_broken_at(9, "ends at seq 8", "covers seq 10", "records 9 to 10 were removed")


def test_a_chain_recomputed_after_a_change_is_caught_through_the_checkpoint():
    fill(4)
    checkpoints.make_checkpoint("manual")
    fill(6)
    checkpoints.make_checkpoint("manual")
    with tampering() as cursor:
        cursor.execute(
            "UPDATE governance_decisionrecord SET canonical = "
            "replace(canonical, '\"amount\":106', '\"amount\":999') WHERE seq = 6"
        )
        rechain(cursor, 6)
    # The chain itself is consistent again; only the signed head at 10 gives it away, and the
    # checkpoint at 4 still matching narrows the change down to records 5 to 10.
    assert_broken_at(10, "does not match checkpoint", "from 5 to 10")


@pytest.mark.parametrize("key_id", ["the forger's", "Steward's"])
def test_a_checkpoint_re_signed_with_another_key_is_caught(key_id):
    fill(10)
    checkpoint = checkpoints.make_checkpoint("manual")
    forger = Ed25519PrivateKey.generate()
    with tampering() as cursor:
        cursor.execute(
            "UPDATE governance_decisionrecord SET canonical = "
            "replace(canonical, '\"amount\":103', '\"amount\":999') WHERE seq = 3"
        )
        rechain(cursor, 3)
        new_head = ledger.head()
        payload = canonical_bytes(checkpoints.payload_for(10, new_head.hash, checkpoint.signed_at))
        cursor.execute(
            "UPDATE governance_checkpoint SET hash = %s, payload = %s, signature = %s, "
            "key_id = %s WHERE id = %s",
            [
                new_head.hash,
                payload.decode(),
                forger.sign(payload).hex(),
                keys.key_id(forger.public_key()) if key_id == "the forger's" else keys.key_id(),
                checkpoint.pk,
            ],
        )
    expected = "another key" if key_id == "the forger's" else "signature does not verify"
    assert_broken_at(10, expected)


def test_a_checkpoint_file_that_disagrees_is_caught(settings, tmp_path):
    """Whoever controls the database can also delete its checkpoints; the file outside it
    still holds the signed head."""
    settings.STEWARD_CHECKPOINT_DIR = tmp_path
    fill(10)
    checkpoints.write_file(checkpoints.make_checkpoint("manual"), tmp_path)
    assert verify_ledger()[1]["checkpoint_files_checked"] == 1
    with tampering() as cursor:
        cursor.execute(
            "UPDATE governance_decisionrecord SET canonical = "
            "replace(canonical, '\"amount\":104', '\"amount\":999') WHERE seq = 4"
        )
        rechain(cursor, 4)
        cursor.execute("DELETE FROM governance_checkpoint")
    report = assert_broken_at(10, "checkpoint file checkpoint-000000000010-")
    assert report["checkpoints_checked"] == 0


def test_an_altered_checkpoint_file_is_caught(settings, tmp_path):
    settings.STEWARD_CHECKPOINT_DIR = tmp_path
    fill(10)
    path = checkpoints.write_file(checkpoints.make_checkpoint("manual"), tmp_path)
    document = json.loads(path.read_text())
    document["payload"] = document["payload"].replace('"seq":10', '"seq":9')
    path.write_text(json.dumps(document))
    assert_broken_at(10, path.name, "signature does not verify")


def test_a_broken_chain_is_recorded_as_broken_and_not_signed():
    fill(10)
    with tampering() as cursor:
        cursor.execute("DELETE FROM governance_decisionrecord WHERE seq = 5")
    verify_ledger()
    outcome = verify.last_verification()
    assert (outcome.ok, outcome.first_bad_seq) == (False, 5)
    assert "record 5 is missing" in outcome.reason
    assert not Checkpoint.objects.filter(reason="verification").exists()


def test_since_starts_from_the_stored_hash_of_the_record_before_it():
    fill(10)
    with tampering() as cursor:
        cursor.execute(
            "UPDATE governance_decisionrecord SET canonical = "
            "replace(canonical, '\"amount\":103', '\"amount\":104') WHERE seq = 3"
        )
    code, report = verify_ledger("--since", "5")
    assert (code, report["records_checked"], report["since"]) == (0, 6, 5)
    code, report = verify_ledger("--since", "3")
    assert (code, report["first_bad_seq"]) == (1, 3)


def test_since_beyond_the_last_record_is_a_usage_error():
    fill(3)
    with pytest.raises(CommandError, match="beyond the last record") as caught:
        call_command("verify_ledger", "--since", "10", stdout=io.StringIO())
    assert caught.value.returncode == 2


def test_json_output_holds_every_figure():
    fill(3)
    code, report = verify_ledger()
    assert code == 0
    assert set(report) == {
        "ok",
        "records_checked",
        "first_bad_seq",
        "reason",
        "head_seq",
        "head_hash",
        "checkpoints_checked",
        "checkpoint_files_checked",
        "duration_s",
        "since",
    }


def test_last_verification_is_one_query(django_assert_num_queries):
    fill(3)
    assert verify.last_verification() is None
    verify_ledger()
    fill(2)
    with django_assert_num_queries(1):
        outcome = verify.last_verification()
    assert outcome.ok is True
    assert outcome.seq == 4
    assert outcome.first_bad_seq is None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_command_line_exits_0_when_intact_and_1_naming_the_first_bad_seq():
    fill(10)

    def run() -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", "verify_ledger"],
            cwd=ROOT,
            env=subprocess_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )

    intact = run()
    assert intact.returncode == 0, intact.stderr
    assert "Intact: 10 records" in intact.stdout
    with tampering() as cursor:
        cursor.execute("DELETE FROM governance_decisionrecord WHERE seq = 7")
    broken = run()
    assert broken.returncode == 1, broken.stderr
    assert "BROKEN at seq 7: record 7 is missing" in broken.stdout
    assert "broken at seq 7" in broken.stderr
