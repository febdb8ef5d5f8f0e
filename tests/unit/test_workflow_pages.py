"""Workflow pages: the editor round trip for every pattern, errors next to their fields, htmx
row operations, submit / review / four-eyes / history / rollback, who sees what, and a list
whose query count does not grow with the number of workflows."""

from __future__ import annotations

import html as html_lib
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from agents import versions
from agents.models import VersionStatus, Workflow, WorkflowVersion
from governance import roles
from governance.models import Team
from governance.roles import Role
from tests.workflow_factories import LazyAgents, editor_data, field, workflow

pytestmark = pytest.mark.django_db


@pytest.fixture
def onboarding(demo_people):
    return Team.objects.get(name="Onboarding")


@pytest.fixture
def agents(demo_people, onboarding):
    return LazyAgents(demo_people, onboarding)


@pytest.fixture
def builder(client, demo_people):
    client.force_login(demo_people["builder"])
    return client


def create(client, team, data, name="Onboarding flow"):
    return client.post("/workflows/new/", {**data, "name": name, "team": str(team.pk)})


def saved(name="Onboarding flow") -> dict:
    version = WorkflowVersion.objects.get(workflow__name=name, status=VersionStatus.DRAFT)
    return version.definition


def errors_of(html: str, dom_id: str) -> str:
    """The text of the error list rendered for the input `dom_id` ('' when there is none)."""
    match = re.search(
        rf'<ul class="errorlist" id="{re.escape(dom_id)}-errors">(.*?)</ul>', html, re.S
    )
    return html_lib.unescape(re.sub(r"<[^>]+>", "", match.group(1))).strip() if match else ""


def m(target, source, const=None):
    return (target, source) if const is None else (target, source, const)


# --- The editor round trip, one test per pattern ---------------------------------------------


def test_sequential_round_trip(builder, onboarding, agents):
    data = editor_data(
        pattern="sequential",
        input_fields=[field("customer_id"), field("country", "choice", choices=["DE", "FR"])],
        steps=[
            {
                "key": "kyc",
                "label": "KYC check",
                "agent_id": agents["kyc"].pk,
                "mapping": [m("customer_id", "input.customer_id"), m("country", "const", "DE")],
            },
            {
                "key": "credit",
                "label": "Credit decision",
                "agent_id": agents["credit"].pk,
                "mapping": [
                    m("customer_id", "input.customer_id"),
                    m("risk", "steps.kyc.output.risk"),
                ],
            },
        ],
    )
    response = create(builder, onboarding, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    definition = saved()
    assert definition["pattern"] == "sequential"
    assert [s["key"] for s in definition["steps"]] == ["kyc", "credit"]
    assert [s["after"] for s in definition["steps"]] == [[], ["kyc"]]
    assert definition["steps"][0]["input_mapping"] == {
        "customer_id": "input.customer_id",
        "country": {"const": "DE"},
    }
    assert definition["steps"][1]["input_mapping"]["risk"] == "steps.kyc.output.risk"
    assert definition["steps"][1]["agent_version"] == 1
    assert definition["input_fields"][1]["choices"] == ["DE", "FR"]
    workflow = Workflow.objects.get(name="Onboarding flow")
    assert response["Location"] == f"/workflows/{workflow.pk}/"
    assert workflow.team == onboarding


def test_concurrent_round_trip_fans_out_and_joins(builder, onboarding, agents):
    data = editor_data(
        pattern="concurrent",
        input_fields=[field("customer_id"), field("country")],
        steps=[
            {"key": "kyc", "agent_id": agents["kyc"].pk},
            {
                "key": "fraud",
                "agent_id": agents["fraud"].pk,
                "mapping": [m("case", "input.customer_id")],
            },
            {
                "key": "credit",
                "agent_id": agents["credit"].pk,
                "after": ["kyc", "fraud"],
                "mapping": [m("risk", "steps.kyc.output.risk")],
            },
        ],
    )
    assert create(builder, onboarding, data).status_code == 302
    steps = saved()["steps"]
    assert [s["after"] for s in steps] == [[], [], ["kyc", "fraud"]]
    assert {s["role"] for s in steps} == {"step"}


def test_router_round_trip_keeps_each_route_condition(builder, onboarding, agents):
    data = editor_data(
        pattern="router",
        input_fields=[field("message")],
        steps=[
            {"key": "triage", "role": "router", "agent_id": agents["classifier"].pk},
            {
                "key": "billing",
                "role": "route",
                "agent_id": agents["answer"].pk,
                "when": "router.output.category == 'billing'",
            },
            {"key": "human", "role": "default", "agent_id": agents["answer"].pk},
        ],
    )
    assert create(builder, onboarding, data).status_code == 302
    steps = saved()["steps"]
    assert [(s["role"], s["after"]) for s in steps] == [
        ("router", []),
        ("route", ["triage"]),
        ("default", ["triage"]),
    ]
    assert steps[1]["when"] == "router.output.category == 'billing'"


def test_maker_checker_round_trip_with_its_loop_settings(builder, onboarding, agents):
    data = editor_data(
        pattern="maker_checker",
        input_fields=[field("topic")],
        steps=[
            {
                "key": "writer",
                "role": "maker",
                "agent_id": agents["writer"].pk,
                "mapping": [
                    m("topic", "input.topic"),
                    m("feedback", "context.feedback"),
                    m("max_words", "const", "200"),
                ],
            },
            {
                "key": "review",
                "role": "checker",
                "agent_id": agents["reviewer"].pk,
                "mapping": [m("text", "steps.writer.output.text")],
            },
        ],
        config={"max_rounds": 4, "approve_decision": "ok"},
    )
    assert create(builder, onboarding, data).status_code == 302
    definition = saved()
    assert definition["config"] == {"max_rounds": 4, "approve_decision": "ok"}
    assert definition["steps"][0]["input_mapping"]["feedback"] == "context.feedback"
    assert definition["steps"][0]["input_mapping"]["max_words"] == {"const": 200}
    assert definition["steps"][1]["after"] == ["writer"]


def test_supervisor_round_trip_with_its_selection_field(builder, onboarding, agents):
    data = editor_data(
        pattern="supervisor",
        input_fields=[field("case")],
        steps=[
            {
                "key": "lead",
                "role": "manager",
                "agent_id": agents["manager"].pk,
                "mapping": [
                    m("case", "input.case"),
                    m("specialist_outputs", "context.specialist_outputs"),
                ],
            },
            {"key": "fraud", "role": "specialist", "agent_id": agents["fraud"].pk},
            {"key": "sanctions", "role": "specialist", "agent_id": agents["fraud"].pk},
        ],
        config={"selection_field": "specialists"},
    )
    assert create(builder, onboarding, data).status_code == 302
    definition = saved()
    assert definition["config"] == {"selection_field": "specialists"}
    assert [s["after"] for s in definition["steps"]] == [[], ["lead"], ["lead"]]


def test_conversation_round_trip_with_stop_condition_and_turn_limit(builder, onboarding, agents):
    data = editor_data(
        pattern="conversation",
        input_fields=[field("offer")],
        steps=[
            {
                "key": "buyer",
                "role": "participant",
                "agent_id": agents["speaker"].pk,
                "mapping": [m("offer", "input.offer"), m("transcript", "context.transcript")],
            },
            {"key": "seller", "role": "participant", "agent_id": agents["speaker"].pk},
        ],
        config={"stop_condition": "last.decision == 'agreed'", "max_turns": 8},
    )
    assert create(builder, onboarding, data).status_code == 302
    definition = saved()
    assert definition["config"] == {"stop_condition": "last.decision == 'agreed'", "max_turns": 8}
    assert [s["after"] for s in definition["steps"]] == [[], ["buyer"]]


def test_event_driven_round_trip_with_every_trigger(builder, demo_people, onboarding, agents):
    upstream = workflow(
        demo_people,
        onboarding,
        "Upstream",
        {
            "pattern": "sequential",
            "input_fields": [field("message")],
            "steps": [{"key": "a", "agent_id": agents["classifier"].pk}],
        },
    )
    data = editor_data(
        pattern="sequential",
        input_fields=[field("message")],
        steps=[{"key": "answer", "agent_id": agents["answer"].pk}],
        triggers=[
            {"type": "webhook"},
            {"type": "schedule", "every_minutes": "30", "input": '{"message": "daily"}'},
            {
                "type": "workflow",
                "workflow_id": upstream.pk,
                "outcome": "any",
                "run_as": "operator",
            },
        ],
    )
    assert create(builder, onboarding, data).status_code == 302
    assert saved()["triggers"] == [
        {"type": "webhook"},
        {"type": "schedule", "every_minutes": 30, "input": {"message": "daily"}},
        {"type": "workflow", "workflow_id": upstream.pk, "outcome": "any", "run_as": "operator"},
    ]


def test_the_create_page_starts_from_name_team_and_pattern(builder, onboarding):
    page = builder.get("/workflows/new/")
    assert page.status_code == 200
    assert 'value="maker_checker"' in page.content.decode()
    started = builder.post(
        "/workflows/new/",
        {"op": "start", "name": "Letters", "team": onboarding.pk, "pattern": "maker_checker"},
    )
    html = started.content.decode()
    assert started.status_code == 200
    assert 'name="steps[0].role"' in html
    assert 'value="maker" selected' in html
    assert 'name="config.max_rounds"' in html
    assert not Workflow.objects.exists()  # nothing is saved before "Create draft"


def test_builders_only_offer_their_own_teams(client, demo_people):
    client.force_login(demo_people["builder2"])
    html = client.get("/workflows/new/").content.decode()
    assert ">Support<" in html
    assert ">Onboarding<" not in html


def test_people_without_the_builder_role_cannot_create(client, demo_people):
    client.force_login(demo_people["operator"])
    assert client.get("/workflows/new/").status_code == 403


# --- Errors next to their fields; nothing saved ------------------------------------------------


def test_an_unreachable_step_is_named_next_to_its_after(builder, onboarding, agents):
    data = editor_data(
        pattern="concurrent",
        input_fields=[field("message")],
        steps=[
            {"key": "a", "agent_id": agents["classifier"].pk},
            {"key": "b", "agent_id": agents["answer"].pk, "after": ["ghost"]},
        ],
    )
    response = create(builder, onboarding, data)
    assert response.status_code == 200
    html = response.content.decode()
    assert "'ghost' is not a step: unreachable" in errors_of(html, "w-steps-1-after")
    assert "Not saved" in html
    assert not Workflow.objects.exists()


def test_a_cycle_outside_a_loop_pattern_is_named_next_to_its_after(builder, onboarding, agents):
    data = editor_data(
        pattern="concurrent",
        input_fields=[field("message")],
        steps=[
            {"key": "start", "agent_id": agents["classifier"].pk},
            {"key": "a", "agent_id": agents["answer"].pk, "after": ["b"]},
            {"key": "b", "agent_id": agents["answer"].pk, "after": ["a"]},
        ],
    )
    html = create(builder, onboarding, data).content.decode()
    message = errors_of(html, "w-steps-1-after") or errors_of(html, "w-steps-2-after")
    assert "cycle" in message
    assert "only possible in the maker-checker and conversation patterns" in message
    assert not Workflow.objects.exists()


def test_a_mapping_to_a_missing_field_is_named_on_its_row(builder, onboarding, agents):
    data = editor_data(
        pattern="sequential",
        input_fields=[field("message")],
        steps=[
            {
                "key": "answer",
                "agent_id": agents["answer"].pk,
                "mapping": [m("message", "input.message"), m("nope", "input.message")],
            }
        ],
    )
    html = create(builder, onboarding, data).content.decode()
    assert "has no input field 'nope'" in errors_of(html, "w-steps-0-mapping-1-target")
    assert not Workflow.objects.exists()


def test_a_source_from_a_missing_output_is_named_on_its_row(builder, onboarding, agents):
    data = editor_data(
        pattern="sequential",
        input_fields=[field("customer_id"), field("country")],
        steps=[
            {"key": "kyc", "agent_id": agents["kyc"].pk},
            {
                "key": "credit",
                "agent_id": agents["credit"].pk,
                "mapping": [m("risk", "steps.kyc.output.score")],
            },
        ],
    )
    html = create(builder, onboarding, data).content.decode()
    assert "has no output field 'score'" in errors_of(html, "w-steps-1-mapping-0-source")


def test_several_form_problems_are_shown_at_once(builder, onboarding, agents):
    data = editor_data(
        pattern="sequential",
        steps=[{"key": "a", "agent_id": ""}, {"key": "b", "agent_id": "999999"}],
        triggers=[{"type": "schedule", "every_minutes": "5", "input": "{not json"}],
    )
    html = create(builder, onboarding, data).content.decode()
    assert errors_of(html, "w-steps-0-agent_id") == "choose an agent"
    assert "agents you may view" in errors_of(html, "w-steps-1-agent_id")
    assert "not valid JSON" in errors_of(html, "w-triggers-0-input")
    assert "3 problems need fixing" in html


def test_an_unpublished_agent_is_refused_at_submit_on_its_step(builder, onboarding, agents):
    data = editor_data(
        pattern="sequential",
        input_fields=[field("customer_id")],
        steps=[{"key": "helper", "label": "Helper", "agent_id": agents["unpublished"].pk}],
    )
    assert create(builder, onboarding, data).status_code == 302  # a draft may use it
    workflow = Workflow.objects.get()
    response = builder.post(f"/workflows/{workflow.pk}/submit/", {"note": "please"})
    assert response.status_code == 400
    html = response.content.decode()
    row = re.search(r'<tr class="invalid" id="step-0">(.*?)</tr>', html, re.S)
    assert row
    assert "is not published yet: publish it first" in row.group(1)
    assert WorkflowVersion.objects.get().status == VersionStatus.DRAFT


def test_an_unknown_pattern_is_a_form_error(builder, onboarding, agents):
    data = editor_data(
        pattern="waterfall", steps=[{"key": "a", "agent_id": agents["classifier"].pk}]
    )
    response = create(builder, onboarding, data)
    assert response.status_code == 200
    assert not Workflow.objects.exists()


# --- Editing an existing workflow ----------------------------------------------------------


@pytest.fixture
def sequential(demo_people, onboarding, agents):
    return workflow(
        demo_people,
        onboarding,
        "KYC then credit",
        {
            "pattern": "sequential",
            "input_fields": [field("customer_id"), field("country")],
            "steps": [
                {"key": "kyc", "label": "KYC check", "agent_id": agents["kyc"].pk},
                {
                    "key": "credit",
                    "agent_id": agents["credit"].pk,
                    "input_mapping": {"risk": "steps.kyc.output.risk"},
                },
            ],
        },
    )


def test_the_editor_shows_the_draft(builder, sequential, agents):
    html = builder.get(f"/workflows/{sequential.pk}/edit/").content.decode()
    assert 'value="KYC check"' in html
    assert f'<option value="{agents["kyc"].pk}" selected>' in html
    assert 'value="steps.kyc.output.risk" selected' in html


def test_saving_edits_the_draft_and_renames(builder, sequential, agents):
    data = editor_data(
        pattern="sequential",
        name="KYC, then credit",
        input_fields=[field("customer_id"), field("country")],
        steps=[
            {"key": "kyc", "label": "Know your customer", "agent_id": agents["kyc"].pk},
            {
                "key": "credit",
                "agent_id": agents["credit"].pk,
                "mapping": [m("risk", "steps.kyc.output.risk")],
            },
        ],
    )
    response = builder.post(f"/workflows/{sequential.pk}/edit/", data)
    assert response.status_code == 302
    sequential.refresh_from_db()
    assert sequential.name == "KYC, then credit"
    draft = versions.draft_of(sequential)
    assert draft.number == 1
    assert draft.definition["steps"][0]["label"] == "Know your customer"


def test_renaming_a_key_follows_it_into_the_sources(builder, sequential, agents):
    data = editor_data(
        pattern="sequential",
        name=sequential.name,
        input_fields=[field("customer_id"), field("country")],
        steps=[
            {"key": "kyc", "agent_id": agents["kyc"].pk},
            {
                "key": "credit",
                "agent_id": agents["credit"].pk,
                "mapping": [m("risk", "steps.kyc.output.risk")],
            },
        ],
    )
    data["steps[0].key"] = "know_customer"  # was kyc
    assert builder.post(f"/workflows/{sequential.pk}/edit/", data).status_code == 302
    steps = versions.draft_of(sequential).definition["steps"]
    assert steps[0]["key"] == "know_customer"
    assert steps[1]["after"] == ["know_customer"]
    assert steps[1]["input_mapping"]["risk"] == "steps.know_customer.output.risk"


def test_editing_a_published_workflow_starts_a_new_draft(builder, demo_people, sequential, agents):
    versions.submit(sequential, actor=demo_people["builder"])
    versions.approve(sequential, actor=demo_people["approver"], number=1)
    data = editor_data(
        pattern="sequential",
        name=sequential.name,
        description="Second cut",
        input_fields=[field("customer_id"), field("country")],
        steps=[{"key": "kyc", "agent_id": agents["kyc"].pk}],
    )
    assert builder.post(f"/workflows/{sequential.pk}/edit/", data).status_code == 302
    assert versions.draft_of(sequential).number == 2
    assert sequential.versions.get(number=1).status == VersionStatus.PUBLISHED


# --- htmx: rows added, removed, refreshed ----------------------------------------------------


def htmx_post(client, url, data):
    return client.post(url, data, HTTP_HX_REQUEST="true")


def test_adding_a_step_answers_the_editor_partial(builder, sequential, agents):
    data = editor_data(
        pattern="sequential",
        steps=[{"key": "kyc", "agent_id": agents["kyc"].pk}],
        op="add:steps",
        name=sequential.name,
    )
    response = htmx_post(builder, f"/workflows/{sequential.pk}/edit/", data)
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html
    assert html.lstrip().startswith("<form")
    assert 'name="steps[1]._row"' in html
    assert versions.draft_of(sequential).definition["steps"][1]["key"] == "credit"  # unsaved


def test_removing_rows(builder, sequential, agents):
    data = editor_data(
        pattern="sequential",
        input_fields=[field("customer_id"), field("country")],
        steps=[
            {"key": "kyc", "agent_id": agents["kyc"].pk},
            {"key": "credit", "agent_id": agents["credit"].pk, "mapping": [m("risk", "x")]},
        ],
        op="remove:steps:0",
        name=sequential.name,
    )
    html = htmx_post(builder, f"/workflows/{sequential.pk}/edit/", data).content.decode()
    assert 'name="steps[1]._row"' not in html
    assert 'value="credit"' in html
    data["op"] = "remove:steps[1].mapping:0"
    html = htmx_post(builder, f"/workflows/{sequential.pk}/edit/", data).content.decode()
    assert 'name="steps[1].mapping[0]._row"' not in html


def test_choosing_an_agent_fills_its_mapping_rows(builder, sequential, agents):
    data = editor_data(
        pattern="sequential",
        input_fields=[field("customer_id"), field("country")],
        steps=[
            {"key": "kyc", "agent_id": agents["kyc"].pk},
            {"key": "credit", "agent_id": agents["credit"].pk},
        ],
        op="refresh",
        name=sequential.name,
    )
    data["steps[1].agent_was"] = ""  # the agent was just chosen
    html = htmx_post(builder, f"/workflows/{sequential.pk}/edit/", data).content.decode()
    assert re.search(
        r'name="steps\[1\]\.mapping\[0\]\.target".*?value="customer_id" selected', html, re.S
    )
    assert 'value="input.customer_id" selected' in html
    assert 'value="steps.kyc.output.risk" selected' in html  # guessed from KYC's output


def test_without_htmx_the_same_buttons_return_the_whole_page(builder, sequential, agents):
    data = editor_data(
        pattern="sequential",
        input_fields=[field("customer_id")],
        steps=[{"key": "kyc", "agent_id": agents["kyc"].pk}],
        op="add:input_fields",
        name=sequential.name,
    )
    html = builder.post(f"/workflows/{sequential.pk}/edit/", data).content.decode()
    assert "<html" in html
    assert 'name="input_fields[1]._row"' in html


def test_an_unknown_operation_is_a_bad_request(builder, sequential):
    data = editor_data(pattern="sequential", steps=[], op="explode:steps", name=sequential.name)
    assert builder.post(f"/workflows/{sequential.pk}/edit/", data).status_code == 400


# --- Submit, review, four-eyes, withdraw, history, rollback -----------------------------------


def test_submit_then_a_second_person_publishes(client, demo_people, sequential):
    client.force_login(demo_people["builder"])
    response = client.post(f"/workflows/{sequential.pk}/submit/", {"note": "ready"})
    assert response.status_code == 302
    client.force_login(demo_people["approver"])
    review = client.get(f"/workflows/{sequential.pk}/review/")
    html = review.content.decode()
    assert review.status_code == 200
    assert "ready" in html
    assert "<svg" in html
    assert "steps[kyc]" in html or "steps" in html  # the diff lists the fields
    response = client.post(
        f"/workflows/{sequential.pk}/review/", {"decision": "approve", "version": 1}
    )
    assert response.status_code == 302
    sequential.refresh_from_db()
    assert sequential.published_version.number == 1


def test_the_author_cannot_approve_through_the_page(client, demo_people, sequential):
    author = demo_people["builder"]
    roles.assign_role(author, Role.APPROVER, actor=None)
    client.force_login(author)
    client.post(f"/workflows/{sequential.pk}/submit/", {"note": ""})
    response = client.post(
        f"/workflows/{sequential.pk}/review/", {"decision": "approve", "version": 1}
    )
    assert response.status_code == 403
    assert "four-eyes" in response.content.decode()
    assert versions.pending_of(sequential).number == 1
    sequential.refresh_from_db()
    assert sequential.published_version is None


def test_rejecting_needs_a_reason(client, demo_people, sequential):
    versions.submit(sequential, actor=demo_people["builder"])
    client.force_login(demo_people["approver"])
    url = f"/workflows/{sequential.pk}/review/"
    response = client.post(url, {"decision": "reject", "version": 1, "reason": " "})
    assert response.status_code == 400
    assert "say why" in response.content.decode()
    response = client.post(url, {"decision": "reject", "version": 1, "reason": "Too vague"})
    assert response.status_code == 302
    assert WorkflowVersion.objects.get().status == VersionStatus.REJECTED


def test_withdraw_takes_the_submission_back(builder, demo_people, sequential):
    versions.submit(sequential, actor=demo_people["builder"])
    assert builder.post(f"/workflows/{sequential.pk}/withdraw/").status_code == 302
    assert WorkflowVersion.objects.get().status == VersionStatus.DRAFT


def test_history_and_rollback_through_four_eyes(client, demo_people, sequential, agents):
    builder, approver = demo_people["builder"], demo_people["approver"]
    versions.submit(sequential, actor=builder)
    versions.approve(sequential, actor=approver, number=1)
    sequential.refresh_from_db()
    definition = dict(sequential.published_version.definition)
    versions.save_draft(sequential, {**definition, "description": "v2"}, actor=builder)
    versions.submit(sequential, actor=builder)
    versions.approve(sequential, actor=approver, number=2)
    client.force_login(builder)
    history = client.get(f"/workflows/{sequential.pk}/history/").content.decode()
    assert "Roll back to v1" in history
    response = client.post(f"/workflows/{sequential.pk}/versions/1/rollback/", {"note": "v2 broke"})
    assert response.status_code == 302
    rollback = versions.pending_of(sequential)
    assert (rollback.number, rollback.rollback_of) == (3, 1)
    sequential.refresh_from_db()
    assert sequential.published_version.number == 2  # not until a second person approves
    client.force_login(approver)
    client.post(f"/workflows/{sequential.pk}/review/", {"decision": "approve", "version": 3})
    sequential.refresh_from_db()
    assert sequential.published_version.number == 3


def test_a_version_page_shows_its_diagram_and_changes(builder, sequential):
    response = builder.get(f"/workflows/{sequential.pk}/versions/1/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "<svg" in html
    assert "KYC check" in html
    assert builder.get(f"/workflows/{sequential.pk}/versions/9/").status_code == 404


def test_the_workflow_page_shows_the_diagram(builder, sequential):
    html = builder.get(f"/workflows/{sequential.pk}/").content.decode()
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in html
    assert "Submit for review" in html


# --- Who sees what ----------------------------------------------------------------------------

PAGES = {
    "detail": "/workflows/{pk}/",
    "edit": "/workflows/{pk}/edit/",
    "history": "/workflows/{pk}/history/",
    "version": "/workflows/{pk}/versions/1/",
    "review": "/workflows/{pk}/review/",
}
# user -> pages they get a 200 on (the workflow is Onboarding's, version 1 under review)
ALLOWED = {
    "builder": {"detail", "edit", "history", "version"},
    "builder2": set(),
    "approver": {"detail", "history", "version", "review"},
    "operator": {"detail", "history", "version"},
    "compliance": {"detail", "history", "version"},
    "admin": {"detail", "edit", "history", "version", "review"},
}


@pytest.mark.parametrize("username", sorted(ALLOWED))
def test_permission_matrix(client, demo_people, sequential, username):
    versions.submit(sequential, actor=demo_people["builder"])
    client.force_login(demo_people[username])
    for name, url in PAGES.items():
        status = client.get(url.format(pk=sequential.pk)).status_code
        expected = 200 if name in ALLOWED[username] else 404
        assert status == expected, (username, name, status)


def test_anonymous_people_are_sent_to_sign_in(client, sequential):
    for url in [*PAGES.values(), "/workflows/", "/workflows/new/"]:
        response = client.get(url.format(pk=sequential.pk))
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


def test_the_list_shows_only_what_one_may_view(client, demo_people, sequential):
    client.force_login(demo_people["builder2"])
    assert "KYC then credit" not in client.get("/workflows/").content.decode()
    client.force_login(demo_people["operator"])
    html = client.get("/workflows/").content.decode()
    assert "KYC then credit" in html
    assert "draft v1" in html
    assert "Sequential" in html


def make_workflows(team, agent_id: int, count: int, start: int) -> None:
    """Rows straight into the tables (the services are tested elsewhere; this is volume)."""
    definition = {"pattern": "sequential", "steps": [{"key": "a", "agent_id": agent_id}]}
    created = Workflow.objects.bulk_create(
        Workflow(name=f"Flow {n:04}", slug=f"flow-{n}", team=team)
        for n in range(start, start + count)
    )
    WorkflowVersion.objects.bulk_create(
        WorkflowVersion(workflow=w, number=1, status=VersionStatus.DRAFT, definition=definition)
        for w in created
    )


def test_the_list_query_count_does_not_grow(client, demo_people, onboarding, agents):
    client.force_login(demo_people["builder"])
    make_workflows(onboarding, agents["kyc"].pk, 10, 0)
    with CaptureQueriesContext(connection) as ten:
        assert client.get("/workflows/").status_code == 200
    make_workflows(onboarding, agents["kyc"].pk, 90, 10)
    with CaptureQueriesContext(connection) as hundred:
        html = client.get("/workflows/").content.decode()
    assert "Flow 0049" in html
    assert "Page 1 of 2" in html
    assert len(hundred) == len(ten), [q["sql"] for q in hundred]
