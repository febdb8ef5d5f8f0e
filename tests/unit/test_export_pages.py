"""The export pages: /decisions/export/, background jobs with progress, downloads."""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from datetime import timedelta
from unittest import mock

import pytest
from django.http import FileResponse, StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from kombu.exceptions import OperationalError

from governance.exports import jobs
from governance.models import DecisionRecord, ExportJob
from governance.roles import Role
from governance.tasks import run_export_job
from governance.verify_bundle import verify
from tests.factories import UserFactory
from tests.ledger_samples import make_sample_ledger

pytestmark = pytest.mark.django_db

EXPORT = "/decisions/export/"


@pytest.fixture
def sample():
    return make_sample_ledger()


@pytest.fixture(autouse=True)
def export_folder(tmp_path, monkeypatch):
    folder = tmp_path / "exports"
    folder.mkdir()
    monkeypatch.setattr(jobs, "export_dir", lambda: folder)
    return folder


@pytest.fixture
def as_user(client):
    def login(user):
        client.force_login(user)
        return client

    return login


def streamed(response) -> bytes:
    return b"".join(response.streaming_content)


def last_record() -> DecisionRecord:
    return DecisionRecord.objects.order_by("-seq").first()


def make_job(owner, **fields) -> ExportJob:
    return ExportJob.objects.create(owner=owner, format=fields.pop("format", "csv"), **fields)


# --- the export page --------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get(EXPORT)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_the_export_page_shows_the_filter_summary_the_size_and_the_formats(sample, as_user):
    response = as_user(sample.compliance).get(EXPORT, {"event": "agent.decided", "run": "run-2"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "agent.decided" in html
    assert "run-2" in html
    assert "1 record." in html
    for label in ("CSV", "JSON Lines", "Evidence bundle (zip)"):
        assert label in html
    assert 'name="event" value="agent.decided"' in html  # carried to the POST


def test_the_page_says_when_an_export_will_run_in_the_background(sample, as_user, settings):
    settings.STEWARD_EXPORT_INLINE_MAX = 3
    html = as_user(sample.compliance).get(EXPORT).content.decode()
    assert "More than 3 records" in html


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"since": "yesterday"}, "Enter a valid date/time"),
        ({"confidence_min": "5"}, "less than or equal to 1"),
        ({"confidence_min": "0.9", "confidence_max": "0.1"}, "must not be lower"),
        ({"event": "e" * 300}, "at most 64 characters"),
    ],
)
def test_an_invalid_filter_is_a_400_with_the_reason(sample, as_user, params, message):
    response = as_user(sample.compliance).get(EXPORT, params)
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html
    assert 'name="format"' not in html  # nothing to export until the filter is valid


def test_an_invalid_filter_posted_is_a_400_not_an_export(sample, as_user):
    response = as_user(sample.compliance).post(EXPORT, {"format": "csv", "since": "nope"})
    assert response.status_code == 400
    assert not DecisionRecord.objects.filter(event="export.made").exists()


@pytest.mark.parametrize("fmt", ["xml", ""])
def test_an_unknown_format_is_a_400(sample, as_user, fmt):
    response = as_user(sample.compliance).post(EXPORT, {"format": fmt})
    assert response.status_code == 400
    assert "Format:" in response.content.decode()


def test_get_and_post_only(sample, as_user):
    assert as_user(sample.compliance).put(EXPORT).status_code == 405


# --- small exports stream ---------------------------------------------------------------------


def test_a_small_export_streams_straight_back_as_a_download(sample, as_user):
    response = as_user(sample.compliance).post(EXPORT, {"format": "csv", "event": "agent.decided"})
    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(
        r'attachment; filename="steward-decisions-\d{8}-\d{6}\.csv"',
        response["Content-Disposition"],
    )
    data = streamed(response)
    assert len(data.decode().splitlines()) == 1 + len(sample.decisions)
    body = json.loads(last_record().canonical)["body"]
    assert (body["via"], body["records"], body["filters"]) == (
        "page",
        len(sample.decisions),
        {"event": "agent.decided"},
    )
    assert body["sha256"] == hashlib.sha256(data).hexdigest()


def test_a_builder_downloads_only_what_they_may_see(sample, as_user):
    response = as_user(sample.builder).post(EXPORT, {"format": "jsonl"})
    teams = {
        json.loads(line)["record"]["refs"].get("team", {}).get("id")
        for line in streamed(response).decode().splitlines()
    }
    assert teams <= {str(sample.risk.pk), None}
    assert str(sample.support.pk) not in teams


def test_a_small_bundle_downloads_and_verifies(sample, as_user, tmp_path):
    response = as_user(sample.compliance).post(
        EXPORT, {"format": "bundle", "team": str(sample.risk.pk)}
    )
    assert response["Content-Type"] == "application/zip"
    path = tmp_path / "b.zip"
    path.write_bytes(streamed(response))
    report = verify(str(path))
    assert report.records == len(
        DecisionRecord.objects.filter(team_id=str(sample.risk.pk), seq__lte=report.last_seq)
    )


# --- large exports run as a task --------------------------------------------------------------


@pytest.fixture
def large(settings):
    settings.STEWARD_EXPORT_INLINE_MAX = 3


def start_job(client, django_capture_on_commit_callbacks, **data) -> ExportJob:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(EXPORT, {"format": "csv", **data})
    job = ExportJob.objects.order_by("-pk").first()
    assert response.status_code == 302
    assert response["Location"] == reverse("decision-export-job", args=[job.pk])
    assert len(callbacks) == 1
    return job


def test_a_large_export_becomes_a_job_queued_after_commit(
    sample, as_user, large, django_capture_on_commit_callbacks
):
    client = as_user(sample.compliance)
    with (
        mock.patch.object(run_export_job, "delay") as delay,
        django_capture_on_commit_callbacks(execute=True),  # runs the callbacks on leaving
    ):
        response = client.post(EXPORT, {"format": "jsonl", "event": "agent.decided"})
    job = ExportJob.objects.get()
    assert response.status_code == 302
    delay.assert_called_once_with(job.pk)
    assert (job.owner, job.format, job.status) == (sample.compliance, "jsonl", "queued")
    assert job.filters == {"event": "agent.decided"}


def test_the_task_makes_the_file_and_the_page_offers_it(
    sample, as_user, large, django_capture_on_commit_callbacks, export_folder
):
    client = as_user(sample.compliance)
    job = start_job(client, django_capture_on_commit_callbacks, event="agent.decided")
    run_export_job(job.pk)  # what the worker runs; the worker itself is tested elsewhere
    job.refresh_from_db()
    assert job.status == "done"
    assert (job.progress_done, job.progress_total) == (len(sample.decisions), len(sample.decisions))
    html = client.get(reverse("decision-export-job", args=[job.pk])).content.decode()
    assert reverse("decision-export-download", args=[job.pk]) in html
    assert job.sha256 in html
    download = client.get(reverse("decision-export-download", args=[job.pk]))
    assert isinstance(download, FileResponse)
    data = b"".join(download.streaming_content)
    assert hashlib.sha256(data).hexdigest() == job.sha256
    assert len(data.decode().splitlines()) == 1 + len(sample.decisions)
    assert download["Content-Disposition"].startswith("attachment; filename=")
    record = DecisionRecord.objects.get(seq=job.record_seq)
    body = json.loads(record.canonical)["body"]
    assert (record.event, record.actor_name) == ("export.made", "carol")
    assert (body["via"], body["job"], body["sha256"]) == ("task", job.pk, job.sha256)
    assert [p.name for p in export_folder.iterdir()] == [f"export-{job.pk}.csv"]


def test_a_bundle_job_makes_a_bundle_that_verifies(
    sample, as_user, large, django_capture_on_commit_callbacks
):
    client = as_user(sample.compliance)
    job = start_job(client, django_capture_on_commit_callbacks, format="bundle")
    run_export_job(job.pk)
    job.refresh_from_db()
    assert job.status == "done", job.error
    assert verify(job.file_path).records > 3
    assert zipfile.is_zipfile(job.file_path)


def test_the_progress_fragment_polls_while_the_job_runs_and_stops_when_done(
    sample, as_user, large, django_capture_on_commit_callbacks
):
    client = as_user(sample.compliance)
    job = start_job(client, django_capture_on_commit_callbacks)
    url = reverse("decision-export-job", args=[job.pk])
    fragment = client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert "<html" not in fragment
    assert 'hx-trigger="every 1s"' in fragment
    assert "<progress" in fragment
    run_export_job(job.pk)
    fragment = client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert "hx-trigger" not in fragment
    assert "Download" in fragment
    assert 'value="100"' in fragment


def test_an_unreachable_broker_fails_the_job_visibly(
    sample, as_user, large, django_capture_on_commit_callbacks
):
    client = as_user(sample.compliance)
    with (
        mock.patch.object(
            run_export_job, "delay", side_effect=OperationalError("Connection refused")
        ),
        django_capture_on_commit_callbacks(execute=True),
    ):
        client.post(EXPORT, {"format": "csv"})
    job = ExportJob.objects.get()
    assert job.status == "failed"
    assert "task broker is unreachable" in job.error
    assert "The export failed." in client.get(job.get_absolute_url()).content.decode()


def test_a_failed_job_shows_why(sample, as_user):
    job = make_job(sample.compliance, filters={"confidence_min": "7"})
    run_export_job(job.pk)
    job.refresh_from_db()
    assert job.status == "failed"
    html = as_user(sample.compliance).get(job.get_absolute_url()).content.decode()
    assert "The export failed." in html
    assert "confidence_min" in html


def test_an_unexpected_error_fails_the_job_without_leaking_details(sample, as_user, monkeypatch):
    job = make_job(sample.compliance)

    def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(jobs, "export_to_path", broken)
    run_export_job(job.pk)
    job.refresh_from_db()
    assert job.status == "failed"
    assert "unexpected error (RuntimeError)" in job.error
    assert "secret internals" not in job.error


def test_a_job_owned_by_a_deactivated_user_fails(sample):
    job = make_job(sample.builder)
    sample.builder.is_active = False
    sample.builder.save()
    run_export_job(job.pk)
    job.refresh_from_db()
    assert (job.status, job.error) == ("failed", "exporter: only an active user may export")


def test_a_stalled_job_says_so(sample, as_user):
    job = make_job(sample.compliance, status="running")
    ExportJob.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    html = as_user(sample.compliance).get(job.get_absolute_url()).content.decode()
    assert "No progress since" in html


def test_the_task_does_nothing_for_a_missing_or_finished_job(sample):
    run_export_job(987654)
    job = make_job(sample.compliance, status="done", file_path="/nowhere")
    run_export_job(job.pk)
    job.refresh_from_db()
    assert (job.status, job.file_path) == ("done", "/nowhere")


# --- who may see a job ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "status"),
    [("owner", 200), ("compliance", 200), ("admin", 200), ("team_mate", 404), ("outsider", 404)],
)
def test_a_job_is_visible_to_its_owner_compliance_and_admins_only(sample, as_user, who, status):
    people = {
        "owner": sample.builder,
        "compliance": sample.compliance,
        "admin": UserFactory(roles=[Role.ADMIN]),
        "team_mate": UserFactory(roles=[Role.BUILDER], teams=[sample.risk]),
        "outsider": sample.outsider,
    }
    job = make_job(sample.builder)
    run_export_job(job.pk)
    client = as_user(people[who])
    assert client.get(job.get_absolute_url()).status_code == status
    download = client.get(reverse("decision-export-download", args=[job.pk]))
    assert download.status_code == status


def test_an_unknown_job_is_a_404(sample, as_user):
    client = as_user(sample.compliance)
    assert client.get("/decisions/exports/424242/").status_code == 404
    assert client.get("/decisions/exports/424242/download/").status_code == 404


def test_a_job_whose_file_is_gone_is_a_404_not_a_500(sample, as_user, export_folder):
    job = make_job(sample.compliance, status="done", file_path=str(export_folder / "gone.csv"))
    url = reverse("decision-export-download", args=[job.pk])
    assert as_user(sample.compliance).get(url).status_code == 404


def test_only_files_in_the_export_folder_are_ever_served(sample, as_user):
    job = make_job(sample.compliance, status="done", file_path="/etc/passwd")
    url = reverse("decision-export-download", args=[job.pk])
    assert as_user(sample.compliance).get(url).status_code == 404


def test_an_unfinished_job_has_nothing_to_download(sample, as_user):
    job = make_job(sample.compliance, status="running")
    url = reverse("decision-export-download", args=[job.pk])
    assert as_user(sample.compliance).get(url).status_code == 404


def test_the_export_page_lists_recent_background_exports(sample, as_user):
    mine = make_job(sample.builder)
    theirs = make_job(sample.outsider)
    html = as_user(sample.builder).get(EXPORT).content.decode()
    assert mine.get_absolute_url() in html
    assert theirs.get_absolute_url() not in html
    html = as_user(sample.compliance).get(EXPORT).content.decode()
    assert theirs.get_absolute_url() in html


# --- page hygiene -----------------------------------------------------------------------------


def page_urls(sample):
    job = make_job(sample.compliance, status="failed", error="disk full")
    return [EXPORT, f"{EXPORT}?since=bad", job.get_absolute_url()]


def test_export_pages_carry_no_inline_script_style_or_handlers(sample, as_user):
    client = as_user(sample.compliance)
    for url in page_urls(sample):
        html = client.get(url).content.decode()
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in tag, url
        assert not re.search(r"\sstyle=", html), url
        assert "<style" not in html, url
        assert not re.search(r"\son[a-z]+=", html), url
        assert not re.search(r"\shx-on", html), url


@pytest.mark.parametrize(
    ("role", "shown"), [(Role.COMPLIANCE, True), (Role.ADMIN, True), (Role.BUILDER, False)]
)
def test_the_sidebar_links_exports_for_compliance_and_admins(as_user, role, shown):
    html = as_user(UserFactory(roles=[role])).get("/").content.decode()
    assert (f'href="{EXPORT}"' in html) is shown
