"""Verifying the ledger in ranges, at once, in worker processes (`verify_chain(workers=N)`).

The report must be exactly the one a single process gives: same counts, head, first bad seq and
reason, wherever the tampering falls with respect to the range boundaries. Worker processes only
see committed rows, so these tests commit (a transactional test database).
"""

from __future__ import annotations

import binascii
import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction

from governance import checkpoints, verify
from governance.chainwalk import RangeResult, Walk
from tests.integration.ledger_helpers import fill, rechain, triggers_lifted


def transactional(test):
    return pytest.mark.postgres(pytest.mark.django_db(transaction=True)(test))


@pytest.fixture
def splits(monkeypatch) -> list[list[tuple[int, int | None]]]:
    """Ranges of one record or more allowed; the ranges each verification was cut into."""
    monkeypatch.setattr(verify, "MIN_RANGE_RECORDS", 1)
    planned, plan = [], verify._ranges

    def spy(*args):
        planned.append(plan(*args))
        return planned[-1]

    monkeypatch.setattr(verify, "_ranges", spy)
    return planned


def report(workers: int) -> dict:
    outcome = verify.verify_chain(workers=workers).as_dict()
    del outcome["duration_s"]
    return outcome


def fill_with_checkpoints() -> None:
    """15 records in ranges [1, 5], [6, 10], [11, 15] with three workers; signed heads at 8
    (inside the second range) and 15 (the last record)."""
    fill(8)
    checkpoints.make_checkpoint("manual")
    fill(7)
    checkpoints.make_checkpoint("manual")


def change(cursor, seq: int) -> None:
    cursor.execute(
        "UPDATE governance_decisionrecord SET canonical = "
        "replace(canonical, '\"amount\":%s', '\"amount\":999') WHERE seq = %s",
        [100 + seq, seq],
    )


def swap_with_next(cursor, seq: int) -> None:
    cursor.execute("UPDATE governance_decisionrecord SET seq = -1 WHERE seq = %s", [seq])
    cursor.execute("UPDATE governance_decisionrecord SET seq = %s WHERE seq = %s", [seq, seq + 1])
    cursor.execute("UPDATE governance_decisionrecord SET seq = %s WHERE seq = -1", [seq + 1])


TAMPERS = {
    "changed": change,
    "deleted": lambda cursor, seq: cursor.execute(
        "DELETE FROM governance_decisionrecord WHERE seq = %s", [seq]
    ),
    "relinked": lambda cursor, seq: cursor.execute(
        "UPDATE governance_decisionrecord SET prev_hash = %s WHERE seq = %s", ["ab" * 32, seq]
    ),
    "swapped with the next": swap_with_next,
    "changed and the chain recomputed": lambda cursor, seq: (
        change(cursor, seq),
        rechain(cursor, seq),
    ),
}


@pytest.mark.parametrize("seq", [4, 5, 6, 10, 11])
@pytest.mark.parametrize("tamper", list(TAMPERS))
@transactional
def test_a_tampered_record_around_a_range_boundary_is_reported_as_by_one_process(
    splits, tamper, seq
):
    fill_with_checkpoints()
    with transaction.atomic(), triggers_lifted() as cursor:
        TAMPERS[tamper](cursor, seq)
    single = report(workers=1)
    assert splits == []
    split = report(workers=3)
    assert splits == [[(1, 5), (6, 10), (11, None)]]
    assert split == single
    assert split["ok"] is False
    assert split["first_bad_seq"] in (seq, 8, 15)  # the record, or the checkpoint after it


@transactional
def test_a_chain_split_over_workers_verifies_intact_with_the_same_report(splits):
    # Signed heads at both ends of the first two ranges and at the last record.
    for count in (9, 1, 8, 1, 8):
        fill(count)
        checkpoints.make_checkpoint("manual")  # at 9, 10, 18, 19 and 27
    single = report(workers=1)
    split = report(workers=3)
    assert splits == [[(1, 9), (10, 18), (19, None)]]
    assert split == single
    assert (split["ok"], split["records_checked"], split["head_seq"]) == (True, 27, 27)
    assert split["checkpoints_checked"] == 5
    # From `since`, too: the first range starts from the stored hash before it.
    assert report_since(5, workers=2) == report_since(5, workers=1)
    assert splits[-1] == [(5, 16), (17, None)]


def report_since(since: int, workers: int) -> dict:
    outcome = verify.verify_chain(since=since, workers=workers).as_dict()
    del outcome["duration_s"]
    return outcome


@transactional
def test_verify_ledger_takes_the_number_of_workers(splits):
    fill(10)
    out = io.StringIO()
    call_command("verify_ledger", "--json", "--workers", "2", stdout=out)
    assert json.loads(out.getvalue())["records_checked"] == 10
    assert splits == [[(1, 5), (6, None)]]
    with pytest.raises(CommandError, match="workers must be 1 or more") as caught:
        call_command("verify_ledger", "--workers", "0", stdout=io.StringIO())
    assert caught.value.returncode == 2


@transactional
def test_the_number_of_workers_defaults_to_the_setting(splits, settings):
    fill(12)
    settings.STEWARD_VERIFY_WORKERS = 3
    assert verify.verify_chain().ok
    assert splits == [[(1, 4), (5, 8), (9, None)]]


@pytest.mark.django_db
def test_inside_a_transaction_the_chain_is_verified_in_this_process(splits):
    """Workers could not see what the transaction wrote."""
    fill(10)  # not committed: the test runs in a transaction
    outcome = verify.verify_chain(workers=2)
    assert (outcome.ok, outcome.records_checked) == (True, 10)
    assert splits == []


@pytest.mark.django_db
def test_ranges_hold_at_least_the_minimum_of_records(monkeypatch):
    fill(10)
    monkeypatch.setattr(verify, "MIN_RANGE_RECORDS", 4)
    assert verify._ranges(1, 8) == [(1, 5), (6, None)]  # 10 records: two ranges of 4 or more
    assert verify._ranges(1, 1) == [(1, None)]
    assert verify._ranges(4, 8) == [(4, None)]  # 7 records: one range
    monkeypatch.setattr(verify, "MIN_RANGE_RECORDS", 3)
    assert verify._ranges(1, 3) == [(1, 4), (5, 8), (9, None)]


def digest(n: int) -> bytes:
    return binascii.hexlify(bytes([n]) * 32)


def range_result(**overrides) -> RangeResult:
    values = dict(
        first=6,
        end=10,
        start_hex=digest(5),
        clean=True,
        seq=11,
        last_hex=digest(10),
        checked=5,
        last_good_mark=0,
    )
    return RangeResult(**{**values, **overrides})


def walk_at_6() -> Walk:
    """A walk that verified records 1 to 5 (record 5's recomputed hash: digest(5))."""
    walk = Walk(1, digest(0), {}, 1)
    walk.seq, walk.prev_hex, walk.prev_raw, walk.checked = 6, digest(5), bytes([5]) * 32, 5
    return walk


@pytest.mark.parametrize(
    "overrides",
    [
        {"start_hex": digest(4)},  # started from another hash than the one recomputed here
        {"clean": False},  # a problem in the range
        {"first": 7},  # does not follow on
    ],
    ids=["another-starting-hash", "not-clean", "not-contiguous"],
)
def test_a_range_is_taken_only_if_it_starts_from_the_hash_the_walk_recomputed(overrides):
    walk = walk_at_6()
    assert walk.follow(range_result(**overrides)) is False
    assert (walk.seq, walk.prev_hex, walk.checked, walk.done) == (6, digest(5), 5, False)


def test_a_range_that_stitches_on_moves_the_walk_past_it():
    walk = walk_at_6()
    assert walk.follow(range_result(last_good_mark=8)) is True
    assert (walk.seq, walk.prev_hex, walk.checked, walk.last_good_mark) == (11, digest(10), 10, 8)
    assert walk.prev_raw == bytes([10]) * 32
    assert walk.done is False
    assert walk.follow(range_result(first=11, end=None, start_hex=digest(10), seq=12)) is True
    assert walk.done is True
