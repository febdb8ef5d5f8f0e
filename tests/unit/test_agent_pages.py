"""Agent pages: list, create, editor (errors next to the field, nothing saved), submit,
review with four-eyes, history and rollback, visibility."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from agents import versions
from agents.models import Agent, AgentVersion, VersionStatus
from governance.models import DecisionRecord, Team
from tests.agent_factories import human_definition, make_agent, publish, rules_definition

pytestmark = pytest.mark.django_db


@pytest.fixture
def onboarding(demo_people):
    return Team.objects.get(name="Onboarding")


@pytest.fixture
def agent(demo_people, onboarding):
    return make_agent(demo_people["builder"], onboarding)


def login(client, user):
    client.force_login(user)
    return client


def editor_post(definition: dict, **extra) -> dict:
    """The editor's POST for a rules definition (inputs named by definition paths)."""
    data = {
        "description": definition.get("description", ""),
        "subject_field": definition.get("subject_field") or "",
        "confidence_threshold": str(definition.get("confidence_threshold", 0)),
        "retry_limit": str(definition.get("retry_limit", 3)),
        "timeout_seconds": str(definition.get("timeout_seconds", 30)),
    }
    for list_name in ("input_fields", "output_fields"):
        for i, field in enumerate(definition[list_name]):
            base = f"{list_name}[{i}]"
            data[f"{base}._row"] = "1"
            data[f"{base}.name"] = field["name"]
            data[f"{base}.type"] = field["type"]
            data[f"{base}.choices"] = ", ".join(field.get("choices", []))
            data[f"{base}.description"] = field.get("description", "")
            if field.get("required", True):
                data[f"{base}.required"] = "on"
            if field.get("personal"):
                data[f"{base}.personal"] = "on"
    config = definition["config"]
    if definition["kind"] == "rules":
        data["config.hit_policy"] = config["hit_policy"]
        for i, rule in enumerate(config["rules"]):
            base = f"config.rules[{i}]"
            data[f"{base}._row"] = "1"
            for key in ("condition", "decision", "confidence", "rationale", "description"):
                data[f"{base}.{key}"] = str(rule.get(key, ""))
            for name, value in rule.get("outputs", {}).items():
                data[f"{base}.outputs.{name}"] = str(value)
        if config.get("default"):
            data["config.default._enabled"] = "on"
            for key in ("decision", "confidence", "rationale"):
                data[f"config.default.{key}"] = str(config["default"].get(key, ""))
            for name, value in config["default"].get("outputs", {}).items():
                data[f"config.default.outputs.{name}"] = str(value)
    elif definition["kind"] == "human":
        data["config.team_id"] = str(config["team_id"])
        data["config.instructions"] = config["instructions"]
    data.update(extra)
    return data


# --- List ---------------------------------------------------------------------------------------


def test_the_list_shows_kind_team_and_versions(client, demo_people, agent):
    html = login(client, demo_people["builder"]).get("/agents/").content.decode()
    assert "Credit limit" in html
    assert "Decision table" in html
    assert "Onboarding" in html
    assert "draft v1" in html


def test_the_list_hides_other_teams_agents(client, demo_people, agent):
    html = login(client, demo_people["builder2"]).get("/agents/").content.decode()
    assert "Credit limit" not in html


def _list_queries(client, user) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/agents/")
    assert response.status_code == 200
    return len(queries)


def test_the_list_costs_the_same_queries_for_10_and_100_agents(client, demo_people, onboarding):
    builder = demo_people["builder"]
    login(client, builder)
    for n in range(10):
        make_agent(builder, onboarding, name=f"Agent {n}")
    ten = _list_queries(client, builder)
    for n in range(10, 100):
        make_agent(builder, onboarding, name=f"Agent {n}")
    assert _list_queries(client, builder) == ten


def test_the_list_filters_by_kind(client, demo_people, onboarding, agent):
    make_agent(demo_people["builder"], onboarding, human_definition(onboarding), name="Review")
    html = login(client, demo_people["builder"]).get("/agents/?kind=human").content.decode()
    assert "Review" in html
    assert "Credit limit" not in html


# --- Create -------------------------------------------------------------------------------------


def test_a_builder_creates_a_rules_agent_through_the_editor(client, demo_people, onboarding):
    data = editor_post(rules_definition(), name="Limits", team=str(onboarding.pk), kind="rules")
    response = login(client, demo_people["builder"]).post("/agents/new/", data | {"op": "save"})
    agent = Agent.objects.get(name="Limits")
    assert response.status_code == 302
    assert response["Location"] == f"/agents/{agent.pk}/"
    draft = agent.versions.get()
    assert draft.status == VersionStatus.DRAFT
    assert [r["decision"] for r in draft.definition["config"]["rules"]] == ["approve", "refer"]
    assert draft.definition["input_fields"][3]["personal"] is True


def test_the_create_page_offers_only_the_builders_teams(client, demo_people):
    html = login(client, demo_people["builder2"]).get("/agents/new/").content.decode()
    assert ">Support<" in html
    assert ">Onboarding<" not in html


def test_creating_for_another_team_is_refused_and_saves_nothing(client, demo_people, onboarding):
    data = editor_post(rules_definition(), name="Sneaky", team=str(onboarding.pk), kind="rules")
    response = login(client, demo_people["builder2"]).post("/agents/new/", data | {"op": "save"})
    assert response.status_code == 200
    assert "choose one of your teams" in response.content.decode()
    assert not Agent.objects.exists()


def test_operators_cannot_open_the_create_page(client, demo_people):
    assert login(client, demo_people["operator"]).get("/agents/new/").status_code == 403


def test_adding_a_row_re_renders_the_editor_without_saving(client, demo_people, onboarding):
    data = editor_post(rules_definition(), name="Limits", team=str(onboarding.pk), kind="rules")
    response = login(client, demo_people["builder"]).post(
        "/agents/new/", data | {"op": "add:config.rules"}, HTTP_HX_REQUEST="true"
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert 'name="config.rules[2]._row"' in html
    assert "<html" not in html  # the editor partial only
    assert not Agent.objects.exists()


def test_removing_a_row_keeps_the_others_in_order(client, demo_people, onboarding):
    data = editor_post(rules_definition(), name="Limits", team=str(onboarding.pk), kind="rules")
    html = (
        login(client, demo_people["builder"])
        .post("/agents/new/", data | {"op": "remove:config.rules:0"}, HTTP_HX_REQUEST="true")
        .content.decode()
    )
    assert "config.rules[1]._row" not in html
    assert "input.amount &gt;= 1000.0 &amp;&amp; input.country == &#x27;US&#x27;" in html


# --- Edit: errors next to the field, nothing saved ----------------------------------------------


def test_saving_the_editor_saves_the_draft(client, demo_people, agent):
    definition = rules_definition(description="Now with a new description")
    response = login(client, demo_people["builder"]).post(
        f"/agents/{agent.pk}/edit/", editor_post(definition) | {"op": "save"}
    )
    assert response.status_code == 302
    assert versions.draft_of(agent).definition["description"] == "Now with a new description"


def test_an_invalid_condition_is_shown_on_its_row_and_nothing_is_saved(client, demo_people, agent):
    before = versions.draft_of(agent).definition
    definition = rules_definition()
    definition["config"]["rules"][1]["condition"] = "input.amount >"
    response = login(client, demo_people["builder"]).post(
        f"/agents/{agent.pk}/edit/", editor_post(definition) | {"op": "save"}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "Nothing was saved" in html
    assert "Rule 2 · condition" in html
    assert 'id="f-config-rules-1-condition" aria-invalid="true"' in html or (
        'aria-describedby="f-config-rules-1-condition-errors"' in html
    )
    assert versions.draft_of(agent).definition == before


def test_a_choice_field_without_choices_is_shown_on_its_cell(client, demo_people, agent):
    definition = rules_definition()
    definition["input_fields"][2]["choices"] = []
    html = (
        login(client, demo_people["builder"])
        .post(f"/agents/{agent.pk}/edit/", editor_post(definition) | {"op": "save"})
        .content.decode()
    )
    assert 'id="f-input_fields-2-choices-errors"' in html
    assert "a choice field needs its choices" in html


def test_an_unknown_output_column_lands_on_the_row(client, demo_people, agent):
    data = editor_post(rules_definition()) | {"config.rules[0].outputs.ghost": "1"}
    html = (
        login(client, demo_people["builder"])
        .post(f"/agents/{agent.pk}/edit/", data | {"op": "save"})
        .content.decode()
    )
    # Only declared output fields are columns, so the ghost value is dropped, not an error.
    assert "Nothing was saved" not in html or "ghost" not in html


def test_invalid_json_in_a_json_output_is_named_and_nothing_is_saved(
    client, demo_people, onboarding
):
    definition = rules_definition(
        output_fields=[{"name": "limit", "type": "number"}, {"name": "extra", "type": "json"}]
    )
    definition["config"]["rules"][0]["outputs"]["extra"] = "{not json"
    data = editor_post(definition, name="J", team=str(onboarding.pk), kind="rules")
    html = (
        login(client, demo_people["builder"])
        .post("/agents/new/", data | {"op": "save"})
        .content.decode()
    )
    assert "not valid JSON" in html
    assert "Rule 1 · extra" in html
    assert not Agent.objects.exists()


def test_markup_in_every_text_field_is_shown_as_text(client, demo_people, onboarding):
    markup = "<script>alert(1)</script><b onmouseover=x>"
    definition = rules_definition(description=markup)
    definition["input_fields"][0]["description"] = markup
    definition["config"]["rules"][0]["rationale"] = markup
    definition["config"]["rules"][0]["decision"] = markup[:100]
    data = editor_post(definition, name=markup[:90], team=str(onboarding.pk), kind="rules")
    builder = demo_people["builder"]
    login(client, builder).post("/agents/new/", data | {"op": "save"})
    agent = Agent.objects.get()
    for url in (
        "/agents/",
        f"/agents/{agent.pk}/",
        f"/agents/{agent.pk}/edit/",
        f"/agents/{agent.pk}/history/",
        f"/agents/{agent.pk}/versions/1/",
        f"/agents/{agent.pk}/try/",
    ):
        html = client.get(url).content.decode()
        assert "<script>alert" not in html, url
        assert "<b onmouseover" not in html, url


def test_the_editor_page_of_a_published_agent_starts_a_new_draft(client, demo_people, agent):
    publish(agent, demo_people["builder"], demo_people["approver"])
    html = login(client, demo_people["builder"]).get(f"/agents/{agent.pk}/edit/").content.decode()
    assert "Saving creates a <strong>new draft</strong> from v1" in html
    client.post(
        f"/agents/{agent.pk}/edit/",
        editor_post(rules_definition(description="v2")) | {"op": "save"},
    )
    published = AgentVersion.objects.get(agent=agent, number=1)
    assert published.status == VersionStatus.PUBLISHED
    assert published.definition["description"] != "v2"
    assert versions.draft_of(agent).number == 2


def test_an_unknown_op_changes_nothing(client, demo_people, agent):
    response = login(client, demo_people["builder"]).post(
        f"/agents/{agent.pk}/edit/", editor_post(rules_definition()) | {"op": "drop:tables"}
    )
    assert response.status_code == 200
    assert "That action is not one this form knows." in response.content.decode()


# --- Submit, review, four-eyes ------------------------------------------------------------------


def test_submit_with_a_note_and_withdraw(client, demo_people, agent):
    login(client, demo_people["builder"])
    response = client.post(f"/agents/{agent.pk}/submit/", {"note": "first version"})
    assert response.status_code == 302
    pending = versions.pending_of(agent)
    assert pending.submit_note == "first version"
    client.post(f"/agents/{agent.pk}/withdraw/")
    assert versions.pending_of(agent) is None
    assert versions.draft_of(agent).number == 1


def test_an_approver_sees_the_diff_and_publishes(client, demo_people, onboarding, agent):
    publish(agent, demo_people["builder"], demo_people["approver"])
    versions.save_draft(
        agent, rules_definition(description="Changed"), actor=demo_people["builder"]
    )
    versions.submit(agent, actor=demo_people["builder"])
    login(client, demo_people["approver"])
    html = client.get(f"/agents/{agent.pk}/review/").content.decode()
    assert '<code class="path">description</code>' in html
    assert "Changed" in html
    response = client.post(f"/agents/{agent.pk}/review/", {"decision": "approve"})
    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.published_version.number == 2


def test_a_reject_needs_a_reason(client, demo_people, agent):
    versions.submit(agent, actor=demo_people["builder"])
    login(client, demo_people["approver"])
    response = client.post(f"/agents/{agent.pk}/review/", {"decision": "reject"})
    assert response.status_code == 200
    assert "This field is required" in response.content.decode()
    client.post(
        f"/agents/{agent.pk}/review/", {"decision": "reject", "reject-reason": "limits too high"}
    )
    assert AgentVersion.objects.get(agent=agent, number=1).review_reason == "limits too high"


def test_the_author_cannot_approve_their_own_version_through_the_page(
    client, demo_people, onboarding
):
    admin = demo_people["admin"]  # may change and publish everything
    agent = make_agent(admin, onboarding)
    versions.submit(agent, actor=admin)
    login(client, admin)
    page = client.get(f"/agents/{agent.pk}/review/").content.decode()
    assert "Four-eyes rule" in page
    response = client.post(f"/agents/{agent.pk}/review/", {"decision": "approve"})
    assert response.status_code == 403
    assert "four-eyes" in response.content.decode()
    agent.refresh_from_db()
    assert agent.published_version is None


def test_builders_without_publish_get_404_on_the_review_page(client, demo_people, agent):
    versions.submit(agent, actor=demo_people["builder"])
    response = login(client, demo_people["builder"]).post(
        f"/agents/{agent.pk}/review/", {"decision": "approve"}
    )
    assert response.status_code == 404


# --- History and rollback -----------------------------------------------------------------------


def test_history_lists_every_version_and_rollback_needs_approval(client, demo_people, agent):
    builder, approver = demo_people["builder"], demo_people["approver"]
    publish(agent, builder, approver)
    versions.save_draft(agent, rules_definition(description="v2"), actor=builder)
    publish(agent, builder, approver)
    login(client, builder)
    html = client.get(f"/agents/{agent.pk}/history/").content.decode()
    assert "published · in use" in html
    assert "Roll back to v1" in html
    client.post(f"/agents/{agent.pk}/versions/1/rollback/")
    pending = versions.pending_of(agent)
    assert (pending.number, pending.rollback_of) == (3, 1)
    agent.refresh_from_db()
    assert agent.published_version.number == 2  # not until a second person approves


# --- Visibility ---------------------------------------------------------------------------------

AGENT_PAGES = (
    "/agents/{pk}/",
    "/agents/{pk}/edit/",
    "/agents/{pk}/try/",
    "/agents/{pk}/review/",
    "/agents/{pk}/history/",
    "/agents/{pk}/versions/1/",
)


@pytest.mark.parametrize("url", AGENT_PAGES)
def test_another_teams_builder_gets_404(client, demo_people, agent, url):
    response = login(client, demo_people["builder2"]).get(url.format(pk=agent.pk))
    assert response.status_code == 404


@pytest.mark.parametrize(
    "url", ["/agents/{pk}/submit/", "/agents/{pk}/withdraw/", "/agents/{pk}/versions/1/rollback/"]
)
def test_another_teams_builder_cannot_post_either(client, demo_people, agent, url):
    login(client, demo_people["builder2"])
    count = DecisionRecord.objects.count()
    response = client.post(url.format(pk=agent.pk))
    assert response.status_code == 404
    assert DecisionRecord.objects.count() == count


def test_compliance_officers_see_but_cannot_edit(client, demo_people, agent):
    login(client, demo_people["compliance"])
    assert client.get(f"/agents/{agent.pk}/").status_code == 200
    assert client.get(f"/agents/{agent.pk}/edit/").status_code == 404


def test_anonymous_visitors_are_sent_to_sign_in(client, agent):
    response = client.get(f"/agents/{agent.pk}/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_htmx_values_in_the_editor_are_valid_json_attributes(client, demo_people, agent):
    html = login(client, demo_people["builder"]).get(f"/agents/{agent.pk}/edit/").content.decode()
    assert 'hx-vals="{&quot;op&quot;: &quot;refresh&quot;}"' in html
    assert 'hx-vals="{"' not in html


def test_the_error_summary_links_to_the_input(client, demo_people, agent):
    definition = rules_definition()
    definition["config"]["rules"][0]["condition"] = "input.amount <"
    html = (
        login(client, demo_people["builder"])
        .post(f"/agents/{agent.pk}/edit/", editor_post(definition) | {"op": "save"})
        .content.decode()
    )
    assert '<a href="#f-config-rules-0-condition">Rule 1 · condition</a>' in html


# --- CSP: no inline script, style or handlers on any of these pages ---------------------------


def test_pages_carry_no_inline_script_style_or_handlers(client, demo_people, onboarding, agent):
    import re

    from tests.agent_factories import make_connection

    conn = make_connection(demo_people["builder"], onboarding)
    versions.submit(agent, actor=demo_people["builder"])
    login(client, demo_people["admin"])
    urls = [
        "/agents/",
        "/agents/new/",
        "/agents/new/?kind=llm",
        "/agents/new/?kind=http",
        "/agents/new/?kind=human",
        *(u.format(pk=agent.pk) for u in AGENT_PAGES),
        "/connections/",
        "/connections/new/",
        f"/connections/{conn.pk}/",
        f"/connections/{conn.pk}/edit/",
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in tag, (url, tag)
        assert not re.search(r"\sstyle=", html), url
        assert "<style" not in html, url
        assert not re.search(r"\son[a-z]+=", html), url
        assert "hx-on" not in html, url


def test_the_agent_list_comes_in_pages_of_fifty(client, demo_people):
    from agents.models import Agent
    from governance.models import Team

    team = Team.objects.get(name="Onboarding")
    Agent.objects.bulk_create(
        Agent(name=f"Agent {i:03d}", slug=f"agent-{i:03d}", team=team, kind="rules")
        for i in range(60)
    )
    client.force_login(demo_people["builder"])
    first = client.get("/agents/").content.decode()
    assert "Agent 049" in first
    assert "Agent 050" not in first
    assert "page=2" in first
    second = client.get("/agents/?page=2").content.decode()
    assert "Agent 059" in second
    assert "Agent 000" not in second


def test_the_team_filter_offers_the_teams_of_visible_agents_and_filters_by_them(
    client, demo_people
):
    onboarding, support = Team.objects.get(name="Onboarding"), Team.objects.get(name="Support")
    Agent.objects.bulk_create(
        [
            Agent(name="Ours", slug="ours", team=onboarding, kind="rules"),
            Agent(name="Theirs", slug="theirs", team=support, kind="rules"),
        ]
    )
    client.force_login(demo_people["builder"])
    html = client.get("/agents/").content.decode()
    assert f'<option value="{onboarding.pk}">Onboarding</option>' in html
    assert ">Support</option>" not in html  # no agent of theirs is visible
    assert "1 agent." in html
    filtered = client.get(f"/agents/?team={onboarding.pk}").content.decode()
    assert f'<option value="{onboarding.pk}" selected>Onboarding</option>' in filtered
    assert "Ours" in filtered
    assert "1 agent match these filters" in filtered
    assert "Theirs" not in client.get(f"/agents/?team={support.pk}").content.decode()
