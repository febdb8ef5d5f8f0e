import hashlib
import json

import pytest
from django.db import DatabaseError, transaction

from governance import ledger
from governance.actors import Actor, Ref
from governance.models import DecisionRecord, LedgerHead
from tests.factories import TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_records_chain_from_the_genesis_hash():
    first = ledger.append("test.one", actor=None, body={"n": 1})
    second = ledger.append("test.two", actor=None, body={"n": 2})
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == "0" * 64
    assert second.prev_hash == first.hash
    expected = hashlib.sha256(bytes.fromhex(first.hash) + second.canonical.encode()).hexdigest()
    assert second.hash == expected


def test_canonical_text_is_rfc8785_and_holds_every_field_but_the_hashes():
    user = UserFactory(username="dana")
    team = TeamFactory(name="Risk")
    record = ledger.append(
        "agent.decided",
        actor=user,
        body={"decision": "approve", "confidence": 0.92, "inputs": {"amount": 1200}},
        team=team,
        agent=Ref("7", "KYC check"),
        run=("9f1c", "run 9f1c"),
    )
    stored = DecisionRecord.objects.get(seq=record.seq)
    document = json.loads(stored.canonical)
    assert stored.canonical == json.dumps(document, sort_keys=True, separators=(",", ":"))
    assert document["seq"] == record.seq
    assert document["event"] == "agent.decided"
    assert document["actor"] == {"type": "person", "id": str(user.pk), "name": "dana"}
    assert document["refs"]["team"] == {"id": str(team.pk), "name": "Risk"}
    assert document["refs"]["agent"] == {"id": "7", "name": "KYC check"}
    assert document["refs"]["run"] == {"id": "9f1c", "name": "run 9f1c"}
    assert document["decision"] == "approve"
    assert document["confidence"] == 0.92
    assert "hash" not in document
    assert "prev_hash" not in document
    assert (stored.team_name, stored.agent_id, stored.decision) == ("Risk", "7", "approve")


def test_a_rolled_back_append_leaves_no_gap():
    ledger.append("test.kept", actor=None, body={})

    def failing_caller():
        with transaction.atomic():
            ledger.append("test.lost", actor=None, body={})
            raise RuntimeError("the caller's work failed")

    with pytest.raises(RuntimeError):
        failing_caller()
    kept = ledger.append("test.kept", actor=None, body={})
    assert kept.seq == 2
    assert LedgerHead.objects.get().seq == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": float("nan")}, "body.amount"),
        ({"big": 2**60}, "body.big"),
        ({"when": object()}, "body.when"),
        ({"nested": [{"api_key": "sk-123"}]}, "body.nested[0].api_key"),
        ({"password": "x"}, "body.password"),
        ({1: "x"}, "body"),
    ],
)
def test_bodies_the_ledger_cannot_hold_are_refused_naming_the_path(body, field):
    with pytest.raises(ledger.LedgerError) as caught:
        ledger.append("test.bad", actor=None, body=body)
    assert caught.value.field == field
    assert not DecisionRecord.objects.exists()


def test_oversized_records_are_refused_with_their_size(settings):
    settings.STEWARD_LEDGER_MAX_RECORD_BYTES = 2048
    with pytest.raises(
        ledger.LedgerError, match=r"record is \d+ bytes; the ledger accepts at most 2048"
    ):
        ledger.append("test.big", actor=None, body={"text": "x" * 5000})
    assert not DecisionRecord.objects.exists()
    assert LedgerHead.objects.get().seq == 0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"event": ""}, "event"),
        ({"event": "x" * 65}, "event"),
        ({"event": "ok", "body": []}, "body"),
        ({"event": "ok", "customer": "1"}, "refs"),
        ({"event": "ok", "subject": "cust-1"}, "personal"),
        ({"event": "ok", "personal": {"name": "A"}}, "personal"),
    ],
)
def test_malformed_appends_are_refused(kwargs, field):
    kwargs.setdefault("body", {})
    event = kwargs.pop("event")
    with pytest.raises(ledger.LedgerError) as caught:
        ledger.append(event, actor=None, **kwargs)
    assert caught.value.field == field


def test_actors_people_agents_and_the_system():
    agent = Actor("agent", "12", "KYC check v3")
    assert (
        json.loads(ledger.append("e", actor=agent, body={}).canonical)["actor"]["type"] == "agent"
    )
    assert json.loads(ledger.append("e", actor=None, body={}).canonical)["actor"] == {
        "type": "system",
        "id": "",
        "name": "steward",
    }
    with pytest.raises(TypeError, match="actor"):
        ledger.append("e", actor="someone", body={})


def test_personal_part_is_ciphertext_covered_by_the_hash():
    record = ledger.append(
        "agent.decided",
        actor=None,
        body={"decision": "ok"},
        personal={"name": "Jane Roe", "iban": "DE89370400440532013000"},
        subject="cust-42",
    )
    assert "Jane" not in record.canonical
    assert "DE8937" not in record.canonical
    part = json.loads(record.canonical)["personal"]
    assert part["subject"] == "cust-42"
    assert part["alg"] == "AES-256-GCM"
    assert record.subject_id == "cust-42"


def test_the_database_refuses_to_change_or_delete_records():
    ledger.append("test.fixed", actor=None, body={})
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        DecisionRecord.objects.update(event="tampered")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        DecisionRecord.objects.all().delete()
    assert DecisionRecord.objects.get().event == "test.fixed"
