"""Operator pages: the run list, the start form, the live run page and cancelling."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from agents.models import Escalation, Run, StepRun
from tests.support.operate import (
    conflict_flow,
    kyc_flow,
    start,
    typed_flow,
)

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def as_user(client, demo_people):
    def login(username):
        client.force_login(demo_people[username])
        return client

    return login


@pytest.fixture
def typed(demo_people):
    return typed_flow(demo_people)


@pytest.fixture
def kyc(demo_people):
    return kyc_flow(demo_people)


def no_inline_code(html: str) -> None:
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag, tag
    assert not re.search(r"\sstyle=", html)
    assert "<style" not in html
    assert not re.search(r"\son[a-z]+=", html)
    assert "hx-on" not in html


# --- The start form -----------------------------------------------------------------------------


def test_the_start_form_has_a_typed_widget_per_input_field(as_user, typed):
    response = as_user("operator").get(f"/workflows/{typed.pk}/run/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'type="text" name="input-customer_id"' in html
    assert 'type="number" name="input-amount"' in html
    assert re.search(r'<select name="input-vip"[^>]*>\s*<option value="" selected>—</option>', html)
    assert 'type="date" name="input-since"' in html
    assert '<option value="business">business</option>' in html
    assert re.search(r'<textarea name="input-extra"[^>]*class="mono"', html)
    no_inline_code(html)


def test_bad_input_starts_nothing_and_the_errors_sit_beside_their_fields(as_user, typed):
    response = as_user("operator").post(
        f"/workflows/{typed.pk}/run/",
        {"input-amount": "lots", "input-since": "31/01/2026", "input-segment": "other"},
    )
    assert response.status_code == 200  # the form again, with its errors
    assert not Run.objects.exists()
    form = response.context["form"]
    assert form.errors["customer_id"] == ["this field is required"]
    assert "expected a number" in form.errors["amount"][0]
    assert "YYYY-MM-DD" in form.errors["since"][0]
    assert "retail, business" in form.errors["segment"][0]
    html = response.content.decode()
    assert "Nothing was started." in html
    assert 'id="id_input-amount_errors"' in html


def test_malformed_json_is_refused_before_the_engine(as_user, typed):
    response = as_user("operator").post(
        f"/workflows/{typed.pk}/run/",
        {
            "input-customer_id": "C1",
            "input-amount": "5",
            "input-segment": "retail",
            "input-extra": "{not json",
        },
    )
    assert response.status_code == 200  # the form again, with its errors
    assert "not valid JSON" in response.context["form"].errors["extra"][0]
    assert not Run.objects.exists()


@pytest.mark.parametrize("number", ["NaN", "inf", "-Infinity"])
def test_numbers_that_are_not_finite_are_refused(as_user, typed, number):
    response = as_user("operator").post(
        f"/workflows/{typed.pk}/run/",
        {"input-customer_id": "C1", "input-amount": number, "input-segment": "retail"},
    )
    assert response.status_code == 200  # the form again, with its errors
    assert "finite" in response.context["form"].errors["amount"][0]
    assert not Run.objects.exists()


def test_good_input_starts_a_run_and_opens_its_page(as_user, typed, demo_people):
    response = as_user("operator").post(
        f"/workflows/{typed.pk}/run/",
        {
            "input-customer_id": "C1",
            "input-amount": "12.5",
            "input-vip": "true",
            "input-since": "2026-01-31",
            "input-segment": "business",
            "input-extra": '{"tags": ["a"]}',
        },
    )
    run = Run.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/runs/{run.pk}/"
    assert run.input == {
        "customer_id": "C1",
        "amount": 12.5,
        "vip": True,
        "since": "2026-01-31",
        "segment": "business",
        "extra": {"tags": ["a"]},
    }
    assert (run.trigger, run.started_by) == (Run.Trigger.MANUAL, demo_people["operator"])


@pytest.mark.parametrize("username", ["builder", "builder2", "approver", "compliance"])
def test_only_holders_of_run_may_open_the_start_form(as_user, typed, username):
    client = as_user(username)
    assert client.get(f"/workflows/{typed.pk}/run/").status_code == 404
    assert client.post(f"/workflows/{typed.pk}/run/", {"input-customer_id": "x"}).status_code == 404
    assert not Run.objects.exists()


def test_the_pick_list_offers_only_runnable_workflows(as_user, typed):
    assert "Typed" in as_user("operator").get("/runs/new/").content.decode()
    html = as_user("builder").get("/runs/new/").content.decode()
    assert "Typed" not in html
    assert "No workflow to run" in html


# --- The run page -------------------------------------------------------------------------------


def test_the_run_page_shows_the_timeline_with_decisions_and_ledger_links(as_user, kyc, demo_people):
    run = start(kyc, {"customer_id": "C1", "country": "DE", "amount": 10}, demo_people)
    kyc_step = StepRun.objects.get(run=run, step_key="kyc")
    html = as_user("operator").get(f"/runs/{run.pk}/").content.decode()
    assert "Completed" in html
    assert "EU customer with a clean record" in html
    assert f'href="/decisions/{kyc_step.decision_seq}/"' in html
    assert 'value="0.9500"' in html  # the confidence bar
    assert f"/decisions/?run={run.pk}" in html
    assert "Cancel run" not in html  # finished
    no_inline_code(html)


def test_a_running_run_polls_and_a_finished_one_stops(as_user, kyc, demo_people):
    run = start(
        kyc, {"customer_id": "C1", "country": "DE", "amount": 10}, demo_people, run_it=False
    )
    client = as_user("operator")
    partial = client.get(f"/runs/{run.pk}/", **HX)
    html = partial.content.decode()
    assert 'hx-trigger="every 2s"' in html
    assert "<html" not in html
    assert 'id="run-actions"' not in html  # the cancel form is left alone while it runs
    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert "Cancel run" in page

    from tests.support.engine import drain

    drain(run)
    html = client.get(f"/runs/{run.pk}/", **HX).content.decode()
    assert "hx-trigger" not in html
    assert re.search(r'<div id="run-actions" class="run-actions" hx-swap-oob="true"></div>', html)


def test_retries_show_their_delay_and_escalations_their_link(as_user, kyc, demo_people):
    run = start(kyc, {"customer_id": "C1", "country": "XX", "amount": 10}, demo_people)
    escalation = Escalation.objects.get(run=run)
    first = StepRun.objects.get(run=run, step_key="kyc")
    # An earlier failed attempt, retried with a 4 s backoff (as execute._record_failure does).
    StepRun.objects.filter(pk=first.pk).update(attempt=2)
    failed = StepRun.objects.create(
        run=run,
        step_key="kyc",
        activation=0,
        attempt=1,
        agent=first.agent,
        agent_version=first.agent_version,
        status=StepRun.Status.RETRYING,
        error={"type": "system_unavailable", "message": "timed out", "target": "kyc.example"},
    )
    StepRun.objects.filter(pk=first.pk).update(
        created_at=failed.created_at + timedelta(seconds=1),
        not_before=failed.created_at + timedelta(seconds=5),
    )
    html = as_user("operator").get(f"/runs/{run.pk}/").content.decode()
    assert "Retried after 4.0 s" in html
    assert "timed out" in html
    assert f'href="/escalations/{escalation.pk}/"' in html
    assert "Waiting for a person" in html


def test_markup_in_inputs_and_rationales_is_shown_as_text(as_user, typed, demo_people):
    from agents.engine import runs

    run = runs.start(
        typed.published_version,
        {"customer_id": "<script>alert(1)</script>", "amount": 1, "segment": "retail"},
        actor=demo_people["operator"],
        trigger=Run.Trigger.MANUAL,
    )
    html = as_user("operator").get(f"/runs/{run.pk}/").content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_runs_of_other_teams_are_not_found(as_user, kyc, demo_people):
    run = start(kyc, {"customer_id": "C1", "country": "DE", "amount": 10}, demo_people)
    assert as_user("builder2").get(f"/runs/{run.pk}/").status_code == 404
    assert as_user("builder2").post(f"/runs/{run.pk}/cancel/").status_code == 404
    # A builder of the team sees the run but is offered no cancel button.
    html = as_user("builder").get(f"/runs/{run.pk}/").content.decode()
    assert "Cancel run" not in html


# --- Cancelling ---------------------------------------------------------------------------------


def test_an_operator_cancels_a_waiting_run(as_user, kyc, demo_people):
    run = start(kyc, {"customer_id": "C1", "country": "XX", "amount": 10}, demo_people)
    response = as_user("operator").post(
        f"/runs/{run.pk}/cancel/", {"cancel-reason": "duplicate request"}
    )
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.outcome == Run.Outcome.CANCELLED
    assert Escalation.objects.get(run=run).status == Escalation.Status.CANCELLED
    page = as_user("operator").get(f"/runs/{run.pk}/").content.decode()
    assert f"Run {run.short_id} cancelled." in page


def test_viewers_without_run_may_not_cancel(as_user, kyc, demo_people):
    run = start(kyc, {"customer_id": "C1", "country": "XX", "amount": 10}, demo_people)
    assert as_user("builder").post(f"/runs/{run.pk}/cancel/").status_code == 403
    run.refresh_from_db()
    assert run.status == Run.Status.WAITING


def test_cancelling_a_finished_run_changes_nothing(as_user, kyc, demo_people):
    run = start(kyc, {"customer_id": "C1", "country": "DE", "amount": 10}, demo_people)
    response = as_user("operator").post(f"/runs/{run.pk}/cancel/", follow=True)
    assert "had already finished" in response.content.decode()
    run.refresh_from_db()
    assert run.outcome == Run.Outcome.COMPLETED


# --- The list -----------------------------------------------------------------------------------


def test_the_list_filters_by_workflow_status_and_outcome(as_user, kyc, demo_people):
    banding = conflict_flow(demo_people)
    done = start(kyc, {"customer_id": "C1", "country": "DE", "amount": 10}, demo_people)
    waiting = start(banding, {"amount": 20}, demo_people)
    client = as_user("operator")

    def shown(query):
        return [r.pk for r in client.get("/runs/" + query).context["page"].items]

    assert set(shown("")) == {done.pk, waiting.pk}
    assert shown(f"?workflow={banding.pk}") == [waiting.pk]
    assert shown("?status=waiting") == [waiting.pk]
    assert shown("?outcome=completed") == [done.pk]
    assert as_user("builder2").get("/runs/").context["page"].items == []


def test_the_list_pages_newest_first_without_offsets(as_user, kyc, demo_people):
    from agents.views import runs as run_views

    made = [
        start(
            kyc, {"customer_id": f"C{n}", "country": "DE", "amount": 1}, demo_people, run_it=False
        ).pk
        for n in range(5)
    ]
    client = as_user("operator")
    size = run_views.PAGE_SIZE
    run_views.PAGE_SIZE = 2
    try:
        seen, url = [], "/runs/"
        with CaptureQueriesContext(connection) as queries:
            while url:
                response = client.get(url)
                seen += [r.pk for r in response.context["page"].items]
                url = response.context["older_url"]
    finally:
        run_views.PAGE_SIZE = size
    assert seen == list(reversed(made))
    assert "OFFSET" not in " ".join(q["sql"].upper() for q in queries.captured_queries)


def _list_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/runs/")
    assert response.status_code == 200
    return len(queries)


def test_the_list_costs_the_same_queries_for_10_and_50_runs(as_user, kyc, demo_people):
    client = as_user("operator")
    for n in range(10):
        start(
            kyc, {"customer_id": f"C{n}", "country": "DE", "amount": 1}, demo_people, run_it=False
        )
    ten = _list_queries(client)
    for n in range(40):
        start(
            kyc, {"customer_id": f"D{n}", "country": "DE", "amount": 1}, demo_people, run_it=False
        )
    assert _list_queries(client) == ten


def test_the_runs_and_inbox_entries_appear_in_the_navigation(as_user):
    html = as_user("operator").get("/").content.decode()
    assert 'href="/runs/"' in html
    assert 'href="/escalations/"' in html
    html = as_user("compliance").get("/").content.decode()
    assert 'href="/runs/"' not in html


def test_the_operator_home_lists_recent_runs(as_user, kyc, demo_people):
    run = start(kyc, {"customer_id": "C1", "country": "XX", "amount": 10}, demo_people)
    html = as_user("operator").get("/").content.decode()
    assert f'href="/runs/{run.pk}/"' in html
    assert "<strong>1</strong> open escalation you may resolve" in html
    html = as_user("approver").get("/").content.decode()
    assert "<strong>1</strong> open escalation you may resolve" in html
