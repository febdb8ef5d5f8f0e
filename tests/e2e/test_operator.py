"""An operator starts a demo workflow in the browser and watches it finish on its page (htmx
polling, a real Celery worker); a run that needs a person waits, an approver resolves the
escalation from the inbox, and the run completes."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from agents.models import Run
from console.demo import seed_definitions
from tests.e2e.conftest import signed_in

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

FINISHES_WITHIN = 30_000  # ms: the page polls every 2 s; the worker runs a step in ms


def start_onboarding(page, flow, *, applicant: dict) -> None:
    page.goto("/runs/new/")
    page.get_by_role("link", name=flow.name).first.click()
    expect(page.get_by_role("heading", name=f"Start a run of {flow.name}")).to_be_visible()
    for name, value in applicant.items():
        field = page.locator(f"#id_input-{name}")
        if field.evaluate("element => element.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)
    page.get_by_role("button", name="Start the run").click()
    page.wait_for_url("**/runs/*/")


def test_an_operator_starts_a_run_and_watches_it_finish_and_an_approver_resolves_one(
    browser, live_server, demo_people, celery_worker
):
    flows = seed_definitions()
    onboarding = flows["sequential"]
    operator_context, operator = signed_in(browser, live_server, "operator")
    approver_context, approver = signed_in(browser, live_server, "approver")
    try:
        start_onboarding(
            operator,
            onboarding,
            applicant={
                "customer_id": "C-1001",
                "customer_name": "Jane Roe",
                "country": "DE",
                "pep": "false",
                "documents_verified": "true",
                "amount": "8000",
                "income": "52000",
            },
        )
        status = operator.get_by_role("region", name="Run status")
        expect(status).to_contain_text("Completed", timeout=FINISHES_WITHIN)  # no reload
        expect(operator.locator("#run-live")).to_contain_text("Final state")
        finished = Run.objects.get(workflow=onboarding)
        assert (finished.status, finished.outcome) == ("finished", "completed")
        assert finished.output == {"limit": 20000, "band": "A"}

        # Unverified documents: the KYC table is not confident, a person decides.
        start_onboarding(
            operator,
            onboarding,
            applicant={
                "customer_id": "C-1003",
                "customer_name": "Li Wei",
                "country": "FR",
                "pep": "false",
                "documents_verified": "false",
                "amount": "12000",
                "income": "41000",
            },
        )
        expect(status).to_contain_text("Waiting for a person", timeout=FINISHES_WITHIN)
        expect(operator.locator(".callout.waiting")).to_contain_text("low confidence")
        waiting = Run.objects.exclude(pk=finished.pk).get(workflow=onboarding)

        approver.goto("/escalations/")
        expect(approver.locator("main")).to_contain_text(onboarding.name)
        approver.goto(waiting.escalations.get().get_absolute_url())
        approver.locator("input[type=radio]").first.check()
        approver.locator("form.esc-form", has=approver.locator("input[type=radio]")).get_by_role(
            "button"
        ).click()
        expect(approver.locator("#messages")).to_be_visible()

        operator.reload()
        expect(status).to_contain_text("Completed", timeout=FINISHES_WITHIN)
        waiting.refresh_from_db()
        assert (waiting.status, waiting.outcome) == ("finished", "completed")
        assert waiting.escalations.get().status == "resolved"
        assert operator.console_errors == approver.console_errors == []
    finally:
        operator_context.close()
        approver_context.close()
