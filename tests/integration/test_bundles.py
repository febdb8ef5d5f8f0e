"""Evidence bundles, verified offline by `python -m governance.verify_bundle` in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from governance import keys
from governance.decisions import DecisionFilter
from governance.models import DecisionRecord
from governance.verify_bundle import key_id_of
from tests.ledger_samples import JANE, JOHN, erase, make_sample_ledger, make_zip, run_export
from tests.ledger_samples import zip_members as members_of

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
MEMBERS = (
    "FORMAT.md",
    "public_key.pem",
    "records.jsonl",
    "personal.jsonl",
    "skeleton.jsonl",
    "checkpoints.json",
    "manifest.json",
    "manifest.sig",
)


@pytest.fixture
def sample():
    return make_sample_ledger()


def verify(path: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "governance.verify_bundle", str(path), *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def risk_decisions(sample) -> DecisionFilter:
    return DecisionFilter(event="agent.decided", team=str(sample.risk.pk))


def resign(members: dict[str, bytes], key: Ed25519PrivateKey, **manifest_changes) -> dict:
    """What an insider holding `key` could make: every digest recomputed, the manifest signed."""
    import hashlib

    manifest = json.loads(members["manifest.json"])
    manifest.update(manifest_changes)
    for name in manifest["files"]:
        data = members[name]
        manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    manifest_bytes = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    return {
        **members,
        "manifest.json": manifest_bytes,
        "manifest.sig": (key.sign(manifest_bytes).hex() + "\n").encode(),
    }


def lines(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.decode().splitlines()]


# --- a valid bundle ---------------------------------------------------------------------------


def test_a_filtered_bundle_verifies_offline(sample, tmp_path):
    data, _ = run_export(
        "bundle", exporter=sample.compliance, decision_filter=risk_decisions(sample)
    )
    result = verify(write(tmp_path, "bundle.zip", data))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("VALID")
    assert "records: 3 selected" in result.stdout
    assert "key INSIDE the bundle, not pinned" in result.stdout


def test_a_bundle_holds_the_documented_files_and_exact_record_bytes(sample):
    data, _ = run_export(
        "bundle", exporter=sample.compliance, decision_filter=risk_decisions(sample)
    )
    members = members_of(data)
    assert sorted(members) == sorted(MEMBERS)
    records = lines(members["records.jsonl"])
    expected = [d for d in sample.decisions if d.team_id == str(sample.risk.pk)]
    assert [r["seq"] for r in records] == [d.seq for d in expected]
    for item, record in zip(records, expected, strict=True):
        assert item["canonical"] == record.canonical
        assert (item["prev_hash"], item["hash"]) == (record.prev_hash, record.hash)
    manifest = json.loads(members["manifest.json"])
    assert manifest["filters"] == {"event": "agent.decided", "team": str(sample.risk.pk)}
    assert manifest["exported_by"]["name"] == "carol"
    assert manifest["selection"]["records"] == 3
    assert manifest["key_id"] == keys.key_id()
    assert members["public_key.pem"] == keys.public_key_pem()


def test_the_skeleton_covers_every_record_of_the_range_up_to_a_signed_checkpoint(sample):
    data, _ = run_export(
        "bundle", exporter=sample.compliance, decision_filter=risk_decisions(sample)
    )
    members = members_of(data)
    skeleton = lines(members["skeleton.jsonl"])
    seqs = [entry["seq"] for entry in skeleton]
    first = sample.decisions[0].seq
    manifest = json.loads(members["manifest.json"])
    anchor = manifest["checkpoints"]["anchor_seq"]
    assert seqs == list(range(first, anchor + 1))  # selected or not, no gaps
    assert len(seqs) > manifest["selection"]["records"]
    stored = dict(DecisionRecord.objects.filter(seq__in=seqs).values_list("seq", "hash"))
    assert all(entry["hash"] == stored[entry["seq"]] for entry in skeleton)
    signed = [json.loads(c["payload"])["seq"] for c in json.loads(members["checkpoints.json"])]
    assert anchor in signed


def test_the_verifier_needs_neither_django_nor_steward(sample, tmp_path):
    data, _ = run_export("bundle", exporter=sample.compliance)
    bundle = write(tmp_path, "bundle.zip", data)
    alone = tmp_path / "verify_bundle.py"
    alone.write_bytes((ROOT / "governance" / "verify_bundle.py").read_bytes())
    code = (
        "import runpy, sys; sys.modules['django'] = None; sys.modules['governance'] = None; "
        f"sys.argv = ['verify_bundle.py', {str(bundle)!r}]; "
        f"runpy.run_path({str(alone)!r}, run_name='__main__')"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", code], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_bundle_verifies_against_the_pinned_key(sample, tmp_path):
    data, _ = run_export("bundle", exporter=sample.compliance)
    bundle = write(tmp_path, "bundle.zip", data)
    by_id = verify(bundle, "--expect-key-id", keys.key_id())
    assert by_id.returncode == 0, by_id.stdout
    assert "(the pinned key)" in by_id.stdout
    pem = write(tmp_path, "steward.pem", keys.public_key_pem())
    assert verify(bundle, "--public-key", str(pem)).returncode == 0


def test_a_bundle_of_nothing_verifies(sample, tmp_path):
    data, _ = run_export("bundle", decision_filter=DecisionFilter(event="no.such.event"))
    result = verify(write(tmp_path, "empty.zip", data))
    assert result.returncode == 0, result.stdout
    assert "records: none selected" in result.stdout


# --- tampering --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MEMBERS)
def test_one_changed_byte_in_any_file_fails_the_bundle(sample, tmp_path, name):
    data, _ = run_export(
        "bundle", exporter=sample.compliance, decision_filter=risk_decisions(sample)
    )
    members = members_of(data)
    changed = bytearray(members[name])
    changed[len(changed) // 2] ^= 0x01
    members[name] = bytes(changed)
    result = verify(write(tmp_path, "changed.zip", make_zip(members)))
    assert result.returncode == 1, result.stdout
    assert result.stdout.startswith("INVALID")
    # A changed manifest or key breaks the signature; any other file, its digest.
    blamed = {
        "manifest.json": ("manifest.sig",),
        "public_key.pem": ("public_key.pem", "manifest.sig"),
    }
    assert any(f": {file}: " in result.stdout for file in blamed.get(name, (name,))), result.stdout


def test_a_corrupted_zip_is_reported_not_crashed_on(sample, tmp_path):
    data, _ = run_export("bundle", exporter=sample.compliance)
    corrupted = bytearray(data)
    offset = data.index(b"records.jsonl") + 200  # inside the compressed records
    corrupted[offset] ^= 0xFF
    result = verify(write(tmp_path, "corrupt.zip", bytes(corrupted)))
    assert result.returncode == 1
    assert result.stdout.startswith("INVALID")
    assert "Traceback" not in result.stderr


def test_a_bundle_re_signed_with_another_key_fails_when_the_key_is_pinned(sample, tmp_path):
    data, _ = run_export("bundle", exporter=sample.compliance)
    other = Ed25519PrivateKey.generate()
    other_pem = other.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    members = {**members_of(data), "public_key.pem": other_pem}
    forged = write(
        tmp_path,
        "forged.zip",
        make_zip(resign(members, other, key_id=key_id_of(other.public_key()))),
    )
    by_id = verify(forged, "--expect-key-id", keys.key_id())
    assert by_id.returncode == 1
    assert "is not the expected key" in by_id.stdout
    pem = write(tmp_path, "steward.pem", keys.public_key_pem())
    by_pem = verify(forged, "--public-key", str(pem))
    assert by_pem.returncode == 1
    assert "is not the pinned key" in by_pem.stdout
    # Unpinned it still fails: Steward's checkpoints do not verify with the forger's key.
    unpinned = verify(forged)
    assert unpinned.returncode == 1
    assert "checkpoints.json" in unpinned.stdout


def test_a_manifest_signed_by_another_key_than_the_included_one_fails(sample, tmp_path):
    data, _ = run_export("bundle", exporter=sample.compliance)
    forged = resign(members_of(data), Ed25519PrivateKey.generate())
    result = verify(write(tmp_path, "forged.zip", make_zip(forged)))
    assert result.returncode == 1
    assert "manifest.sig: not a valid signature" in result.stdout


def test_a_bundle_whose_skeleton_omits_a_record_fails(sample, tmp_path):
    data, _ = run_export(
        "bundle", exporter=sample.compliance, decision_filter=risk_decisions(sample)
    )
    members = members_of(data)
    skeleton = members["skeleton.jsonl"].decode().splitlines(keepends=True)
    omitted = json.loads(skeleton[1])["seq"]  # a record the filter did not select
    del skeleton[1]
    members["skeleton.jsonl"] = "".join(skeleton).encode()
    manifest = json.loads(members["manifest.json"])
    manifest["skeleton"]["entries"] -= 1
    forged = resign(members, keys.signing_key(), skeleton=manifest["skeleton"])
    result = verify(write(tmp_path, "gap.zip", make_zip(forged)))
    assert result.returncode == 1
    assert f"skeleton.jsonl seq {omitted + 1}: follows seq {omitted - 1}" in result.stdout


def test_a_record_changed_after_export_fails_even_in_a_re_signed_bundle(sample, tmp_path):
    data, _ = run_export(
        "bundle", exporter=sample.compliance, decision_filter=risk_decisions(sample)
    )
    members = members_of(data)
    records = lines(members["records.jsonl"])
    records[1]["canonical"] = records[1]["canonical"].replace('"approve"', '"reject"')
    members["records.jsonl"] = "".join(json.dumps(r) + "\n" for r in records).encode()
    result = verify(write(tmp_path, "changed.zip", make_zip(resign(members, keys.signing_key()))))
    assert result.returncode == 1
    assert f"records.jsonl seq {records[1]['seq']}: hash does not match" in result.stdout


def test_a_bundle_without_a_checkpoint_covering_its_records_fails(sample, tmp_path):
    data, _ = run_export("bundle", exporter=sample.compliance)
    members = {**members_of(data), "checkpoints.json": b"[]\n"}
    result = verify(
        write(tmp_path, "unanchored.zip", make_zip(resign(members, keys.signing_key())))
    )
    assert result.returncode == 1
    assert "no signed checkpoint" in result.stdout


def test_a_file_added_to_the_bundle_fails_it(sample, tmp_path):
    data, _ = run_export("bundle", exporter=sample.compliance)
    members = {**members_of(data), "NOTE.txt": b"all approved by the board"}
    result = verify(write(tmp_path, "extra.zip", make_zip(members)))
    assert result.returncode == 1
    assert "NOTE.txt: is in the zip but not in the manifest" in result.stdout


@pytest.mark.parametrize("content", [None, b"not a zip at all"])
def test_what_is_not_a_bundle_is_invalid_with_a_reason(tmp_path, content):
    path = tmp_path / "nothing.zip"
    if content is not None:
        path.write_bytes(content)
    result = verify(path)
    assert result.returncode == 1
    assert "cannot open as a zip file" in result.stdout


# --- personal data and erasure ----------------------------------------------------------------


def personal_lines(data: bytes) -> dict[str, dict]:
    return {item["subject"]: item for item in lines(members_of(data)["personal.jsonl"])}


def test_a_compliance_officers_bundle_carries_decrypted_personal_data(sample):
    data, _ = run_export("bundle", exporter=sample.compliance)
    personal = personal_lines(data)
    assert personal["cust-jane"]["status"] == "readable"
    assert personal["cust-jane"]["data"] == JANE
    assert personal["cust-john"]["data"] == JOHN
    assert json.loads(members_of(data)["manifest.json"])["personal"]["decrypted"] is True


def test_a_builders_bundle_withholds_personal_data(sample, tmp_path):
    data, _ = run_export("bundle", exporter=sample.builder)
    personal = personal_lines(data)
    assert personal["cust-jane"]["status"] == "withheld"
    assert "data" not in personal["cust-jane"]
    assert "cust-john" not in personal  # a support record: not visible to this builder
    for name, content in members_of(data).items():
        for value in JANE.values():
            assert value.encode() not in content, name
    assert verify(write(tmp_path, "b.zip", data)).returncode == 0


def test_a_system_bundle_carries_personal_data_only_when_asked(sample):
    assert personal_lines(run_export("bundle")[0])["cust-jane"]["status"] == "withheld"
    asked = personal_lines(run_export("bundle", include_personal=True)[0])
    assert asked["cust-jane"]["data"] == JANE


def test_after_erasure_no_bundle_shows_the_subjects_data_and_it_still_verifies(sample, tmp_path):
    erase("cust-jane", by="carol", reason="GDPR request 2026-114")
    data, _ = run_export("bundle", exporter=sample.compliance)
    members = members_of(data)
    for name, content in members.items():
        for value in JANE.values():
            assert value.encode() not in content, name
    jane = personal_lines(data)["cust-jane"]
    assert jane["status"] == "erased"
    assert (jane["erased_by"], jane["reason"]) == ("carol", "GDPR request 2026-114")
    assert jane["erased_at"].endswith("Z")
    assert personal_lines(data)["cust-john"]["data"] == JOHN  # others stay readable
    ciphertext = json.loads(sample.decisions[0].canonical)["personal"]["ciphertext"]
    assert ciphertext.encode() in members["records.jsonl"]
    result = verify(write(tmp_path, "erased.zip", data))
    assert result.returncode == 0, result.stdout
    assert "1 erased" in result.stdout
