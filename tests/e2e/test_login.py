"""Each persona signs in through the form, sees its own home panel and no other, signs out."""

from __future__ import annotations

import pytest
from django.conf import settings

from tests.e2e.conftest import screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PANELS = {
    "admin": "Administration",
    "builder": "Builder workspace",
    "approver": "Review queue",
    "operator": "Operations",
    "compliance": "Compliance",
}
# persona: the panel it sees (builder2 is a builder in the other team)
PERSONAS = {
    "admin": "admin",
    "builder": "builder",
    "builder2": "builder",
    "approver": "approver",
    "operator": "operator",
    "compliance": "compliance",
}

BUILDER_TEAMS = {"builder": "Onboarding", "builder2": "Support"}


@pytest.mark.parametrize("persona", PERSONAS)
def test_persona_signs_in_sees_only_its_panel_and_signs_out(
    page, live_server, demo_people, persona
):
    sign_in(page, persona, settings.STEWARD_DEMO_PASSWORD)

    assert page.url == f"{live_server.url}/"
    own = PERSONAS[persona]
    assert page.locator(f"section#panel-{own} h2").inner_text() == PANELS[own]
    assert demo_people[persona].first_name in page.locator("header.topbar").inner_text()
    assert page.locator("section[id^=panel-]").count() == 1
    for panel, title in PANELS.items():
        if panel != own:
            assert page.locator(f"#panel-{panel}").count() == 0
            assert page.get_by_role("heading", name=title, exact=True).count() == 0
    screenshot(page, f"home-{persona}")
    if persona in BUILDER_TEAMS:  # a builder sees their own team, not the other one
        panel = page.locator("section#panel-builder").inner_text()
        for builder, team in BUILDER_TEAMS.items():
            assert (team in panel) == (builder == persona)

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/accounts/login/")
    page.goto("/")
    assert "/accounts/login/" in page.url
    assert page.locator("section[id^=panel-]").count() == 0

    assert page.console_errors == []


def test_wrong_password_is_refused_with_a_message(page, demo_people):
    sign_in(page, "builder", "not-the-password")

    assert "/accounts/login/" in page.url
    assert page.get_by_text("That username and password do not match").is_visible()
    page.goto("/")
    assert "/accounts/login/" in page.url
    assert page.console_errors == []


def test_console_errors_are_caught_csp_refuses_inline_script(page):
    # The check every other test ends with must be able to fail: an inline script, which the
    # CSP forbids, shows up as a console error and does not run.
    page.goto("/accounts/login/")
    page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.injected = true'; document.body.appendChild(s); }"
    )
    page.wait_for_timeout(200)

    assert page.evaluate("() => window.injected === undefined")
    assert any("Content Security Policy" in error for error in page.console_errors)
