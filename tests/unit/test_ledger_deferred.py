"""Deferred appends: records are checked at once, written together at the end of the block,
and the chain head is not locked before then."""

import threading

import pytest
from django.db import connection, transaction

from governance import ledger
from governance.models import DecisionRecord, LedgerHead
from governance.verify import verify_chain

pytestmark = pytest.mark.django_db


def test_records_are_written_in_order_when_the_block_ends():
    seen = []
    with transaction.atomic():
        before = ledger.append("test.before", actor=None, body={"n": 0})
        with ledger.deferred():
            first = ledger.append("test.one", actor=None, body={"n": 1})
            second = ledger.append("test.two", actor=None, body={"n": 2}, team=("3", "Ops"))
            ledger.when_written(second, seen.append)
            assert (first.seq, second.seq) == (None, None)
            assert DecisionRecord.objects.count() == 1
        assert (first.seq, second.seq) == (before.seq + 1, before.seq + 2)
    assert seen == [second]
    assert first.prev_hash == before.hash
    assert second.prev_hash == first.hash
    for returned in (first, second):
        stored = DecisionRecord.objects.get(seq=returned.seq)
        assert (stored.canonical, stored.hash) == (returned.canonical, returned.hash)
        assert stored.hash == ledger.chain_hash(stored.prev_hash, stored.canonical.encode())
    assert DecisionRecord.objects.get(seq=second.seq).team_name == "Ops"
    assert verify_chain(workers=1).ok


def _append_then_fail(event: str, error: Exception):
    with transaction.atomic(), ledger.deferred():
        ledger.append(event, actor=None, body={})
        raise error


def test_a_failed_inner_block_drops_its_records_and_the_rest_are_written():
    with transaction.atomic(), ledger.deferred():
        kept = ledger.append("test.kept", actor=None, body={})
        with pytest.raises(ValueError, match="inner"):
            _append_then_fail("test.dropped", ValueError("inner"))
        last = ledger.append("test.last", actor=None, body={})
    assert list(DecisionRecord.objects.order_by("seq").values_list("event", flat=True)) == [
        "test.kept",
        "test.last",
    ]
    assert last.seq == kept.seq + 1


def test_a_failed_block_writes_nothing():
    with pytest.raises(RuntimeError, match="boom"):
        _append_then_fail("test.never", RuntimeError("boom"))
    assert not DecisionRecord.objects.exists()


def test_a_bad_record_is_refused_at_the_append_not_at_the_end():
    with transaction.atomic(), ledger.deferred():
        with pytest.raises(ledger.LedgerError, match="body"):
            ledger.append("test.bad", actor=None, body={"x": float("nan")})
        ledger.append("test.good", actor=None, body={})
    assert list(DecisionRecord.objects.values_list("event", flat=True)) == ["test.good"]


@pytest.mark.django_db(transaction=True)
def test_deferred_appends_need_a_transaction():
    with pytest.raises(RuntimeError, match="inside a transaction"), ledger.deferred():
        pass  # pragma: no cover


@pytest.mark.django_db(transaction=True)
def test_the_chain_head_is_not_locked_until_the_block_ends():
    """Another appender is not kept waiting by a block that has appended and goes on working:
    that is the point of deferring (without it, it waits for this transaction to commit)."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has one writer at a time anyway")
    other_done = threading.Event()

    def other_appender():
        try:
            with transaction.atomic():
                ledger.append("test.other", actor=None, body={})
            other_done.set()
        finally:
            connection.close()

    with transaction.atomic(), ledger.deferred():
        mine = ledger.append("test.mine", actor=None, body={})
        thread = threading.Thread(target=other_appender)
        thread.start()
        assert other_done.wait(timeout=10), "the other appender waited for this transaction"
    thread.join(timeout=10)
    events = list(DecisionRecord.objects.order_by("seq").values_list("event", flat=True))
    assert events == ["test.other", "test.mine"]
    assert mine.seq == 2
    assert verify_chain(workers=1).ok


def test_a_block_of_any_text_is_chained_as_python_chains_it():
    """On PostgreSQL the block is chained in the server (steward_ledger_chain): its bytes and
    hashes must be exactly what chain_hash computes, whatever the text holds."""
    texts = ["Zoë", "«naïve» café", "\u2028 line separator", "emoji \U0001f600", 'tab\t"q"\\']
    with transaction.atomic(), ledger.deferred():
        records = [
            ledger.append("test.text", actor=None, body={"note": text, "n": n}, run=("r", text))
            for n, text in enumerate(texts * 30)  # a block of 150
        ]
    previous = (
        DecisionRecord.objects.get(seq=records[0].seq - 1).hash
        if records[0].seq > 1
        else (ledger.GENESIS_HASH)
    )
    for record in records:
        stored = DecisionRecord.objects.get(seq=record.seq)
        assert stored.prev_hash == previous
        assert stored.hash == ledger.chain_hash(previous, stored.canonical.encode()) == record.hash
        assert stored.canonical == record.canonical
        previous = stored.hash
    assert [r.seq for r in records] == list(range(records[0].seq, records[0].seq + len(records)))
    head = LedgerHead.objects.get(chain=ledger.CHAIN)  # the chain head row moved with them
    assert (head.seq, head.hash) == (records[-1].seq, records[-1].hash)
    assert verify_chain(workers=1).ok
