import json

import pytest
from django.core.management import CommandError, call_command

from governance import ledger
from governance.models import DecisionRecord, SubjectKey
from governance.personal import SubjectKeyring

pytestmark = pytest.mark.django_db


def record_for(subject: str, **personal):
    return ledger.append(
        "agent.decided", actor=None, body={"decision": "ok"}, personal=personal, subject=subject
    )


def test_personal_parts_open_for_their_subject_until_erased():
    record = record_for("cust-1", name="Jane Roe")
    part = json.loads(record.canonical)["personal"]
    opened = SubjectKeyring().open(part)
    assert opened.status == "readable"
    assert opened.data == {"name": "Jane Roe"}


def test_forget_subject_makes_every_part_unreadable_and_keeps_the_ciphertext(capsys):
    first = record_for("cust-1", name="Jane Roe")
    second = record_for("cust-1", email="jane@example.com")
    other = record_for("cust-2", name="John Doe")
    call_command("forget_subject", "cust-1", "--reason", "GDPR request 2026-114")
    assert "Erased subject 'cust-1'" in capsys.readouterr().out
    for record in (first, second):
        stored = DecisionRecord.objects.get(seq=record.seq)
        assert stored.canonical == record.canonical  # the ciphertext is still there
        opened = SubjectKeyring().open(json.loads(stored.canonical)["personal"])
        assert opened.status == "erased"
        assert opened.data is None
        assert "GDPR request 2026-114" in opened.explanation
    assert SubjectKeyring().open(json.loads(other.canonical)["personal"]).status == "readable"


def test_erasure_is_a_ledger_event_naming_the_reason_and_count():
    record_for("cust-1", name="Jane Roe")
    call_command("forget_subject", "cust-1", "--reason", "ticket 42")
    erased = json.loads(DecisionRecord.objects.get(event="subject.erased").canonical)
    assert erased["body"] == {"subject": "cust-1", "reason": "ticket 42", "records_affected": 1}


def test_no_new_personal_data_for_an_erased_subject():
    record_for("cust-1", name="Jane Roe")
    call_command("forget_subject", "cust-1", "--reason", "ticket 42")
    with pytest.raises(ledger.LedgerError, match="was erased"):
        record_for("cust-1", name="Jane again")


def test_erasing_twice_or_without_reason_is_refused():
    record_for("cust-1", name="Jane Roe")
    with pytest.raises(CommandError, match="reason"):
        call_command("forget_subject", "cust-1", "--reason", " ")
    call_command("forget_subject", "cust-1", "--reason", "ticket 42")
    with pytest.raises(CommandError, match="already erased"):
        call_command("forget_subject", "cust-1", "--reason", "again")
    assert DecisionRecord.objects.filter(event="subject.erased").count() == 1


def test_erasing_an_unknown_subject_blocks_future_data():
    call_command("forget_subject", "cust-9", "--reason", "request before any data")
    assert SubjectKey.objects.get(subject_id="cust-9").is_erased
    with pytest.raises(ledger.LedgerError, match="was erased"):
        record_for("cust-9", name="X")


def test_unknown_actor_is_refused():
    with pytest.raises(CommandError, match="--as: no active user"):
        call_command("forget_subject", "cust-1", "--reason", "x", "--as", "nobody")
