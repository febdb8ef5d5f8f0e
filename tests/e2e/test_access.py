"""Access in the browser: an admin grants and revokes on an agent's Access tab (htmx, no reload)
and the grantee's access follows on their next request; a compliance officer filters the
access review, exports it as CSV and signs it off."""

from __future__ import annotations

import csv
import io

import pytest
from playwright.sync_api import expect

from governance.models import DecisionRecord, Team
from tests.agent_factories import make_agent
from tests.e2e.conftest import signed_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_admin_grants_and_revokes_on_the_access_tab_and_access_follows(
    browser, live_server, demo_people
):
    agent = make_agent(demo_people["builder"], Team.objects.get(name="Onboarding"))
    grantee = demo_people["builder2"]  # a builder of Support: no access to Onboarding's agent
    admin_context, admin = signed_in(browser, live_server, "admin")
    other_context, other = signed_in(browser, live_server, "builder2")
    try:
        assert other.goto(agent.get_absolute_url()).status == 404
        assert "Credit limit" not in other.goto("/agents/").text()

        admin.goto(agent.get_absolute_url())
        admin.get_by_role("navigation", name="Agent sections").get_by_role(
            "link", name="Access"
        ).click()
        expect(admin.get_by_role("heading", name="Access to Credit limit")).to_be_visible()
        admin.evaluate("window.stewardSamePage = true")  # gone if the page reloads

        admin.select_option("#id_action", "view")
        admin.select_option("#id_principal", f"user:{grantee.pk}")
        admin.get_by_role("button", name="Grant").click()
        area = admin.locator("#access-area")
        expect(admin.locator("#messages")).to_contain_text("Access granted.")
        granted = area.locator("tbody tr", has_text=grantee.username)
        expect(granted).to_have_count(1)
        expect(granted).to_contain_text("user grant")
        assert admin.evaluate("window.stewardSamePage") is True

        assert other.goto(agent.get_absolute_url()).status == 200
        expect(other.get_by_role("heading", name="Credit limit")).to_be_visible()
        other.goto("/agents/")
        expect(other.locator("table")).to_contain_text("Credit limit")

        admin.once("dialog", lambda dialog: dialog.accept())  # hx-confirm asks first
        granted.get_by_role("button", name="Revoke").click()
        expect(admin.locator("#messages")).to_contain_text("Access revoked.")
        expect(area.locator("tbody tr", has_text=grantee.username)).to_have_count(0)
        assert admin.evaluate("window.stewardSamePage") is True

        assert other.goto(agent.get_absolute_url()).status == 404
        assert "Credit limit" not in other.goto("/agents/").text()

        changes = DecisionRecord.objects.filter(event="grant.changed").order_by("seq")
        assert [record.actor_name for record in changes] == ["admin", "admin"]
        assert admin.console_errors == []
        assert all("status of 404" in error for error in other.console_errors)  # the refusals
    finally:
        admin_context.close()
        other_context.close()


def test_compliance_officer_filters_exports_and_signs_off_the_access_review(
    browser, live_server, demo_people
):
    make_agent(demo_people["builder"], Team.objects.get(name="Onboarding"))
    context, page = signed_in(browser, live_server, "compliance")
    try:
        page.goto("/")
        page.get_by_role("link", name="Access review").first.click()
        expect(page.get_by_role("heading", name="Access review", exact=True)).to_be_visible()

        page.fill("#id_user", "builder")
        page.get_by_role("button", name="Apply filters").click()
        rows = page.locator("#review-rows tbody tr")
        page.wait_for_url("**/access-review/?*user=builder*")  # htmx pushes the filtered URL
        for other in ("operator", "approver", "compliance"):  # the swap has happened
            expect(rows.filter(has_text=other)).to_have_count(0)
        shown = rows.count()
        assert shown > 0
        for text in rows.all_inner_texts():
            assert text.split("\t")[0].strip() == "builder"
        expect(page.locator("#review-rows tbody")).to_contain_text("Credit limit")

        with page.expect_download() as download_info:
            page.get_by_role("link", name="Export CSV").click()
        download = download_info.value
        assert download.suggested_filename == "steward-access-review.csv"
        with open(download.path(), encoding="utf-8") as exported:
            table = list(csv.reader(io.StringIO(exported.read())))
        assert table[0][:4] == ["user", "roles", "teams", "object_type"]
        assert len(table) - 1 == shown
        assert {row[0] for row in table[1:]} == {"builder"}
        assert any(row[5] == "Credit limit" for row in table[1:])

        page.fill("#signoff-note", "Quarterly review: nothing to revoke")
        page.get_by_role("button", name="Review completed").click()
        expect(page.get_by_text(f"Review signed off: {shown} access rows")).to_be_visible()
        expect(page.get_by_text("Last signed off")).to_contain_text("compliance")

        export = DecisionRecord.objects.get(event="export.made")
        signoff = DecisionRecord.objects.get(event="access_review.completed")
        assert export.actor_name == signoff.actor_name == "compliance"
        assert f'"rows":{shown}' in signoff.canonical
        assert page.console_errors == []
    finally:
        context.close()
