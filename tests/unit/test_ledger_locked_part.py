"""`append` prepares the canonical text before taking the chain lock and fills in only the seq
under it (on PostgreSQL the database hashes and inserts in the same statement): what it stores
must be exactly the RFC 8785 text and the chain hash of DESIGN.md."""

import json

import pytest
import rfc8785

from governance import ledger
from governance.actors import Actor, Ref
from governance.models import DecisionRecord, LedgerHead

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("seq", [1, 9, 10, 123456, 2**53 - 1])
def test_the_text_around_the_seq_is_the_rfc8785_text_with_that_seq(seq):
    document, _, alike = ledger._prepare(
        "agent.decided",
        None,
        {"decision": "refer", "confidence": 0.5, "note": "Zoë's «case» \u2028 ok"},
        None,
        None,
        {"team": ("3", "Équipe")},
    )
    document["recorded_at"] = "2026-01-01T00:00:00.000000Z"
    before, after = ledger._canonical_around_seq(document, alike)
    assert before + str(seq).encode() + after == rfc8785.dumps({**document, "seq": seq})


@pytest.mark.parametrize("confidence", [None, 1, 1.0, 0.5, 1e20, 2.5e-7, True, "high"])
def test_what_prepare_says_prints_alike_gives_the_rfc8785_bytes(confidence):
    class Name(str):
        pass

    document, _, alike = ledger._prepare(
        "agent.decided",
        Actor("agent", Name("7"), "Scorer"),
        {"decision": Name("approve"), "confidence": confidence, "amount": 1e21, "n": 2},
        None,
        None,
        {"team": ("3", "Équipe"), "run": 41, "agent": Ref(Name("9"), "x")},
    )
    document["recorded_at"] = "2026-01-01T00:00:00.000000Z"
    before, after = ledger._canonical_around_seq(document, alike)
    assert before + b"12" + after == rfc8785.dumps({**document, "seq": 12})


def test_the_stored_record_is_what_append_returns():
    first = ledger.append("test.one", actor=None, body={"text": "naïve ✓"})
    second = ledger.append("test.two", actor=None, body={"n": 2}, team=("1", "Ops"))
    for returned in (first, second):
        stored = DecisionRecord.objects.get(seq=returned.seq)
        assert (stored.canonical, stored.prev_hash, stored.hash) == (
            returned.canonical,
            returned.prev_hash,
            returned.hash,
        )
        assert stored.hash == ledger.chain_hash(stored.prev_hash, stored.canonical.encode())
        assert json.loads(stored.canonical)["seq"] == returned.seq
        assert stored.team_name == ("Ops" if returned is second else "")
    assert second.prev_hash == first.hash
    assert ledger.head() == ledger.Appended(2, second.hash)
    assert LedgerHead.objects.values_list("seq", "hash").get() == (2, second.hash)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("prepared", [True, False])
def test_the_append_statement_is_prepared_unless_turned_off(settings, prepared):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's")
    settings.STEWARD_LEDGER_PREPARED = prepared
    connection.close()  # a new connection: nothing prepared yet
    first = ledger.append("test.one", actor=None, body={"n": 1})
    second = ledger.append("test.two", actor=None, body={"n": 2})
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
            ["%governance_ledgerhead%"],
        )
        held = cursor.fetchone()[0]
    assert held == (1 if prepared else 0)
    assert second.prev_hash == first.hash
    assert DecisionRecord.objects.get(seq=second.seq).hash == second.hash
