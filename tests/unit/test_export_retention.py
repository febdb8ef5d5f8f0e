"""Export files are removed after the retention period; their jobs say so (the download leads
back to the job's page), and leftovers in the export folder go too. Nothing outside it is
touched."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from console.celeryconfig import periodic_tasks
from governance.exports import jobs
from governance.exports.retention import remove_expired
from governance.models import ExportJob
from governance.tasks import remove_expired_exports

pytestmark = pytest.mark.django_db

HOURS = 24


@pytest.fixture(autouse=True)
def export_folder(tmp_path, monkeypatch, settings):
    settings.STEWARD_EXPORT_RETENTION_HOURS = HOURS
    folder = tmp_path / "exports"
    folder.mkdir()
    monkeypatch.setattr(jobs, "export_dir", lambda: folder)
    return folder


def finished_job(owner, folder, age: timedelta, name: str) -> ExportJob:
    path = folder / name
    path.write_bytes(b"seq,event\n1,run.started\n")
    return ExportJob.objects.create(
        owner=owner,
        format="csv",
        status=ExportJob.Status.DONE,
        file_path=str(path),
        file_bytes=24,
        sha256="ab" * 32,
        record_seq=7,
        finished_at=timezone.now() - age,
    )


def aged(path, age: timedelta):
    stamp = (timezone.now() - age).timestamp()
    os.utime(path, (stamp, stamp))


def test_files_past_the_retention_period_are_removed_and_their_jobs_expire(
    demo_people, export_folder
):
    owner = demo_people["compliance"]
    old = finished_job(owner, export_folder, timedelta(hours=HOURS + 1), "export-1.csv")
    recent = finished_job(owner, export_folder, timedelta(hours=HOURS - 1), "export-2.csv")

    removed = remove_expired()

    assert removed.expired_jobs == 1
    old.refresh_from_db()
    recent.refresh_from_db()
    assert (old.status, old.file_path, old.sha256) == ("expired", "", "ab" * 32)
    assert recent.status == "done"
    assert sorted(p.name for p in export_folder.iterdir()) == ["export-2.csv"]
    assert remove_expired().expired_jobs == 0  # nothing left to do


def test_leftovers_go_after_the_same_time_and_nothing_outside_the_folder_is_touched(
    demo_people, export_folder, tmp_path
):
    owner = demo_people["compliance"]
    stale_part = export_folder / "export-9.csv.part"  # a worker killed mid-export
    stale_part.write_bytes(b"half")
    aged(stale_part, timedelta(hours=HOURS + 2))
    fresh_part = export_folder / "export-10.csv.part"  # an export being written now
    fresh_part.write_bytes(b"half")
    outside = tmp_path / "elsewhere.csv"
    outside.write_bytes(b"not ours")
    job = ExportJob.objects.create(
        owner=owner,
        format="csv",
        status=ExportJob.Status.DONE,
        file_path=str(outside),
        finished_at=timezone.now() - timedelta(hours=HOURS + 1),
    )
    kept = finished_job(owner, export_folder, timedelta(hours=1), "export-3.csv")
    aged(export_folder / "export-3.csv", timedelta(hours=HOURS + 5))  # old file, recent job

    removed = remove_expired()

    assert removed.leftover_files == 1
    assert not stale_part.exists()
    assert fresh_part.exists()
    assert outside.exists()
    assert (export_folder / "export-3.csv").exists()
    job.refresh_from_db()
    kept.refresh_from_db()
    assert (job.status, kept.status) == ("expired", "done")


def test_an_expired_job_says_so_and_its_download_leads_back_to_it_saying_why(
    client, demo_people, export_folder
):
    owner = demo_people["compliance"]
    job = finished_job(owner, export_folder, timedelta(hours=HOURS + 1), "export-4.csv")
    remove_expired()
    client.force_login(owner)

    page = client.get(reverse("decision-export-job", args=[job.pk])).content.decode()
    download = client.get(reverse("decision-export-download", args=[job.pk]), follow=True)

    assert "Expired" in page
    assert f"kept for {HOURS} hours" in page
    assert "ab" * 32 in page  # the digest stays, as in the ledger's export.made record
    assert reverse("decision-export-download", args=[job.pk]) not in page
    assert "every 1s" not in page  # a finished job is not polled
    assert download.redirect_chain == [(job.get_absolute_url(), 302)]
    assert "removed after the retention period" in download.content.decode()


def test_beat_runs_the_removal_every_hour(demo_people, export_folder):
    owner = demo_people["compliance"]
    finished_job(owner, export_folder, timedelta(hours=HOURS + 1), "export-5.csv")
    schedule = periodic_tasks()["export-retention"]
    assert (schedule["task"], schedule["schedule"]) == (remove_expired_exports.name, 3600.0)
    assert remove_expired_exports() == 1
