"""Bad input to the workflow editor and API: wrong types, 100 kB strings, markup in every text
field, unknown patterns. Each is a form error or a 400 naming the field, nothing is saved, and
nothing is ever a 500; markup is shown as text, in the pages and in the SVG diagram."""

from __future__ import annotations

import copy
import re

import pytest
from rest_framework.test import APIClient

from agents import versions
from agents.models import Workflow, WorkflowVersion
from governance.models import Team
from tests.workflow_factories import LazyAgents, editor_data, field, human_agent, workflow

pytestmark = pytest.mark.django_db

API = "/api/v1/workflows/"
BIG = "x" * 100_000
MARKUP = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def onboarding(demo_people):
    return Team.objects.get(name="Onboarding")


@pytest.fixture
def agents(demo_people, onboarding):
    return LazyAgents(demo_people, onboarding)


@pytest.fixture
def api(demo_people):
    client = APIClient()
    client.force_login(demo_people["builder"])
    return client


def base(agents) -> dict:
    """A valid maker-checker workflow with a trigger of each kind: every text field exists."""
    return {
        "description": "Letters",
        "input_fields": [field("topic"), field("tone", "choice", choices=["formal", "warm"])],
        "pattern": "maker_checker",
        "steps": [
            {
                "key": "writer",
                "label": "Writer",
                "role": "maker",
                "agent_id": agents["writer"].pk,
                "input_mapping": {
                    "topic": "input.topic",
                    "feedback": "context.feedback",
                    "max_words": {"const": 200},
                },
            },
            {
                "key": "review",
                "label": "Review",
                "role": "checker",
                "agent_id": agents["reviewer"].pk,
                "input_mapping": {"text": "steps.writer.output.text"},
            },
        ],
        "config": {"max_rounds": 3, "approve_decision": "approve"},
        "triggers": [
            {"type": "webhook"},
            {"type": "schedule", "every_minutes": 60, "input": {"topic": "weekly"}},
        ],
    }


@pytest.fixture
def flow(demo_people, onboarding, agents):
    return workflow(demo_people, onboarding, "Letters", base(agents))


def set_path(definition: dict, path: str, value) -> dict:
    """A copy of `definition` with the value at `path` (``steps[0].label``) replaced."""
    result = copy.deepcopy(definition)
    target, parts = result, re.findall(r"[^.\[\]]+", path)
    for part in parts[:-1]:
        target = target[int(part)] if isinstance(target, list) else target[part]
    last = parts[-1]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return result


def draft(flow) -> dict:
    return versions.draft_of(flow).definition


# --- API: wrong types -----------------------------------------------------------------------

WRONG_TYPES = [
    ("pattern", "waterfall", "pattern"),
    ("pattern", ["maker_checker"], "pattern"),
    ("description", {"a": 1}, "description"),
    ("input_fields", {"name": "topic"}, "input_fields"),
    ("input_fields[0].name", 7, "input_fields[0].name"),
    ("input_fields[0].type", "colour", "input_fields[0].type"),
    ("input_fields[1].choices", "formal", "input_fields[1].choices"),
    ("subject_field", ["topic"], "subject_field"),
    ("steps", {"writer": {}}, "steps"),
    ("steps[0]", "writer", "steps[0]"),
    ("steps[0].key", 12, "steps[0].key"),
    ("steps[0].key", "Writer Key", "steps[0].key"),
    ("steps[0].label", ["a"], "steps[0].label"),
    ("steps[0].role", ["maker"], "steps[0].role"),
    ("steps[0].agent_id", [1], "steps[0].agent_id"),
    ("steps[0].agent_id", True, "steps[0].agent_id"),
    ("steps[0].agent_id", 999999, "steps[0].agent_id"),
    ("steps[0].after", "review", "steps[0].after"),
    ("steps[0].input_mapping", ["input.topic"], "steps[0].input_mapping"),
    ("steps[0].input_mapping.topic", 5, "steps[0].input_mapping.topic"),
    ("steps[0].input_mapping.topic", "input.nope", "steps[0].input_mapping.topic"),
    ("config", ["max_rounds"], "config"),
    ("config.max_rounds", "many", "config.max_rounds"),
    ("config.max_rounds", 99, "config.max_rounds"),
    ("config.approve_decision", 5, "config.approve_decision"),
    ("triggers", {"type": "webhook"}, "triggers"),
    ("triggers[0].type", "email", "triggers[0].type"),
    ("triggers[1].every_minutes", "hourly", "triggers[1].every_minutes"),
    ("triggers[1].input", [1, 2], "triggers[1].input"),
]


@pytest.mark.parametrize(("path", "value", "field_name"), WRONG_TYPES)
def test_wrong_types_are_a_400_naming_the_field(api, flow, agents, path, value, field_name):
    before = draft(flow)
    definition = set_path(base(agents), path, value)
    response = api.put(f"{API}{flow.pk}/", {"definition": definition}, format="json")
    assert response.status_code == 400, response.content
    assert field_name in response.json(), response.json()
    assert draft(flow) == before


@pytest.mark.parametrize(
    "body",
    [
        {"definition": "not an object"},
        {"definition": None},
        {"definition": []},
        {"name": ["x"]},
        {"name": ""},
        {},
    ],
)
def test_malformed_update_bodies_are_400s(api, flow, body):
    response = api.put(f"{API}{flow.pk}/", body, format="json")
    assert response.status_code == 400
    assert response.json()


def test_json_that_is_not_json_is_a_400(api, flow):
    for text in ("{", '{"definition": NaN}', '{"definition": {"a": 1e999}}', "[" * 200):
        response = api.put(f"{API}{flow.pk}/", text, content_type="application/json")
        assert response.status_code == 400


def test_create_with_bad_fields_is_a_400(api, onboarding, agents):
    for body, name in [
        ({"name": "x", "team": "nope", "definition": base(agents)}, "team"),
        ({"name": "x", "team": 99999, "definition": base(agents)}, "team"),
        ({"name": BIG, "team": onboarding.pk, "definition": base(agents)}, "name"),
        ({"name": "x", "team": onboarding.pk}, "definition"),
    ]:
        response = api.post(API, body, format="json")
        assert response.status_code == 400
        assert name in response.json()
    assert not Workflow.objects.exists()


def test_bad_action_bodies_are_400s(demo_people, flow):
    versions.submit(flow, actor=demo_people["builder"])
    approver = APIClient()
    approver.force_login(demo_people["approver"])
    for action, body, name in [
        ("approve", {"version": "one"}, "version"),
        ("approve", {}, "version"),
        ("approve", {"version": 1, "reason": BIG}, "reason"),
        ("reject", {"version": 1, "reason": BIG}, "reason"),
        ("reject", {"version": -1, "reason": "x"}, "version"),
    ]:
        response = approver.post(f"{API}{flow.pk}/{action}/", body, format="json")
        assert response.status_code == 400
        assert name in response.json()
    assert versions.pending_of(flow).number == 1


def test_a_long_note_is_a_400(api, flow):
    response = api.post(f"{API}{flow.pk}/submit/", {"note": BIG}, format="json")
    assert response.status_code == 400
    assert "note" in response.json()
    assert versions.pending_of(flow) is None


# --- API: 100 kB strings in every text field ---------------------------------------------------

TEXT_FIELDS = [
    "description",
    "input_fields[0].name",
    "input_fields[0].description",
    "input_fields[1].choices[0]",
    "subject_field",
    "steps[0].key",
    "steps[0].label",
    "steps[0].when",
    "steps[0].input_mapping.topic",
    "steps[0].input_mapping.max_words.const",
    "config.approve_decision",
    "triggers[1].input.topic",
    "triggers[1].run_as",
]


@pytest.mark.parametrize("path", TEXT_FIELDS)
def test_100kb_strings_are_a_400_naming_the_field(api, flow, agents, path):
    before = draft(flow)
    definition = set_path(base(agents), path, BIG)
    response = api.put(f"{API}{flow.pk}/", {"definition": definition}, format="json")
    assert response.status_code == 400, path
    named = next(iter(response.json()))
    assert named == "definition" or path.startswith(named.split(".const")[0].rstrip("]")[:8]), (
        path,
        response.json(),
    )
    assert draft(flow) == before


@pytest.mark.parametrize(
    ("pattern", "key", "roles"),
    [
        ("supervisor", "selection_field", ("manager", "specialist")),
        ("conversation", "stop_condition", ("participant", "participant")),
    ],
)
def test_100kb_pattern_settings_are_a_400_naming_them(api, flow, agents, pattern, key, roles):
    before = draft(flow)
    definition = base(agents)
    definition["pattern"] = pattern
    for step, role in zip(definition["steps"], roles, strict=True):
        step["role"] = role
    definition["config"] = {key: BIG}
    response = api.put(f"{API}{flow.pk}/", {"definition": definition}, format="json")
    assert response.status_code == 400
    assert list(response.json()) == [f"config.{key}"]
    assert draft(flow) == before


@pytest.mark.parametrize("path", ["description", "steps[0].label", "triggers[1].input.topic"])
def test_nul_characters_are_a_400_naming_the_field(api, flow, agents, path):
    definition = set_path(base(agents), path, "abc\x00def")
    response = api.put(f"{API}{flow.pk}/", {"definition": definition}, format="json")
    assert response.status_code == 400
    assert list(response.json()) == [path]


def test_a_100kb_constant_is_refused_where_it_is(api, flow, agents):
    definition = set_path(base(agents), "steps[0].input_mapping.max_words", {"const": BIG})
    response = api.put(f"{API}{flow.pk}/", {"definition": definition}, format="json")
    assert response.json() == {
        "steps[0].input_mapping.max_words.const": ["text of at most 10000 characters"]
    }


def test_a_huge_definition_is_refused_whole(api, flow, agents):
    definition = base(agents)
    definition["padding"] = ["y" * 9000] * 30  # 270 kB of nonsense
    response = api.put(f"{API}{flow.pk}/", {"definition": definition}, format="json")
    assert response.status_code == 400
    assert "definition" in response.json()


# --- API and pages: markup is text ------------------------------------------------------------


def marked_up(agents) -> dict:
    definition = base(agents)
    definition["description"] = MARKUP
    definition["input_fields"][0]["description"] = MARKUP
    definition["input_fields"][1]["choices"] = [MARKUP, "warm"]
    definition["steps"][0]["label"] = MARKUP[:100]
    definition["steps"][1]["label"] = "Review <b>bold</b>"
    definition["steps"][0]["input_mapping"]["max_words"] = {"const": 5}
    definition["config"]["approve_decision"] = "<i>ok</i>"
    definition["triggers"][1]["input"] = {"topic": MARKUP}
    definition["triggers"][1]["run_as"] = "<u>operator</u>"
    return definition


def assert_no_markup(html: str) -> None:
    assert "<script>alert" not in html
    assert "<img src=x" not in html
    assert "<b>bold</b>" not in html
    assert "<i>ok</i>" not in html
    assert "<u>operator</u>" not in html


def test_markup_in_every_text_field_is_shown_as_text(client, demo_people, flow, agents):
    api = APIClient()
    api.force_login(demo_people["builder"])
    response = api.put(
        f"{API}{flow.pk}/",
        {"name": f"Letters {MARKUP}", "definition": marked_up(agents)},
        format="json",
    )
    assert response.status_code == 200, response.json()
    versions.submit(flow, actor=demo_people["builder"], note=MARKUP)
    client.force_login(demo_people["builder"])
    for url in (
        "/workflows/",
        f"/workflows/{flow.pk}/",
        f"/workflows/{flow.pk}/edit/",
        f"/workflows/{flow.pk}/history/",
        f"/workflows/{flow.pk}/versions/1/",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert_no_markup(html)
        assert "&lt;script&gt;" in html, url
    client.force_login(demo_people["approver"])
    html = client.get(f"/workflows/{flow.pk}/review/").content.decode()
    assert_no_markup(html)
    svg = api.get(f"{API}{flow.pk}/diagram/?version=1").content.decode()
    assert_no_markup(svg)
    assert "&lt;script&gt;" in svg


# --- Pages: the editor form -------------------------------------------------------------------


def form_data(agents, **changes) -> dict:
    data = editor_data(
        pattern="maker_checker",
        name="Letters",
        input_fields=[field("topic"), field("tone", "choice", choices=["formal", "warm"])],
        steps=[
            {
                "key": "writer",
                "label": "Writer",
                "role": "maker",
                "agent_id": agents["writer"].pk,
                "mapping": [
                    ("topic", "input.topic"),
                    ("feedback", "context.feedback"),
                    ("max_words", "const", "200"),
                ],
            },
            {
                "key": "review",
                "label": "Review",
                "role": "checker",
                "agent_id": agents["reviewer"].pk,
                "mapping": [("text", "steps.writer.output.text")],
            },
        ],
        config={"max_rounds": 3, "approve_decision": "approve"},
        triggers=[
            {"type": "webhook"},
            {"type": "schedule", "every_minutes": "60", "input": '{"topic": "weekly"}'},
        ],
    )
    data.update(changes)
    return data


def test_the_form_data_itself_is_valid(client, demo_people, flow, agents):
    client.force_login(demo_people["builder"])
    response = client.post(f"/workflows/{flow.pk}/edit/", form_data(agents, description="ok"))
    assert response.status_code == 302
    assert draft(flow)["description"] == "ok"


FORM_FIELDS = [
    "name",
    "description",
    "input_fields[0].name",
    "input_fields[0].description",
    "input_fields[1].choices",
    "steps[0].key",
    "steps[0].label",
    "steps[0].agent_id",
    "steps[0].role",
    "steps[0].mapping[0].source",
    "steps[0].mapping[2].const",
    "config.max_rounds",
    "config.approve_decision",
    "triggers[1].every_minutes",
    "triggers[1].input",
    "triggers[1].run_as",
    "pattern",
]


@pytest.mark.parametrize("name", FORM_FIELDS)
@pytest.mark.parametrize("value", [BIG, "abc\x00def", "[1, 2]", "-1"])
def test_bad_form_values_never_500_and_save_nothing_wrong(
    client, demo_people, flow, agents, name, value
):
    client.force_login(demo_people["builder"])
    before = list(WorkflowVersion.objects.values_list("number", "definition"))
    response = client.post(f"/workflows/{flow.pk}/edit/", form_data(agents, **{name: value}))
    assert response.status_code in (200, 302, 400), response.status_code
    if response.status_code == 200:
        assert "Not saved" in response.content.decode()
        assert list(WorkflowVersion.objects.values_list("number", "definition")) == before
    if value == BIG:
        assert response.status_code == 200, name  # a 100 kB value never fits
        html = response.content.decode()
        assert "errorlist" in html


def test_markup_typed_into_the_editor_comes_back_as_text(client, demo_people, flow, agents):
    client.force_login(demo_people["builder"])
    data = form_data(agents, description=MARKUP, **{"steps[0].label": "<b>bold</b>"})
    data["input_fields[0].description"] = MARKUP
    data["steps[1].key"] = MARKUP  # invalid: the form comes back with it, as text
    html = client.post(f"/workflows/{flow.pk}/edit/", data).content.decode()
    assert "Not saved" in html
    assert_no_markup(html)
    assert "&lt;script&gt;" in html


def test_forged_rows_and_operations_never_500(client, demo_people, flow, agents):
    client.force_login(demo_people["builder"])
    url = f"/workflows/{flow.pk}/edit/"
    for extra in (
        {"steps[9999]._row": "1"},
        {"steps[0].mapping[9999]._row": "1", "steps[0].mapping[9999].source": "const"},
        {"input_fields[-1]._row": "1"},
        {"triggers[0].type": "email"},
        {"op": "remove:steps:99"},
        {"op": "up:steps[0].mapping:0"},
        {"op": "add:triggers:email"},
        {"op": "add:steps[42].mapping"},
        {"op": "x" * 5000},
        {"steps[0].after": ["writer", "ghost"]},
    ):
        response = client.post(url, {**form_data(agents), **extra})
        assert response.status_code in (200, 302, 400), extra


def test_a_workflow_one_may_not_view_cannot_be_a_trigger(client, demo_people, onboarding, agents):
    support = Team.objects.get(name="Support")
    support_people = {"builder": demo_people["builder2"], "approver": demo_people["approver"]}
    answer = human_agent(support_people, support, "Support answer", ["message"], ["answer"])
    hidden = workflow(
        support_people,
        support,
        "Support flow",
        {
            "pattern": "sequential",
            "input_fields": [field("message")],
            "steps": [{"key": "a", "agent_id": answer.pk}],
        },
    )
    client.force_login(demo_people["builder"])
    data = form_data(agents)
    data["triggers[2]._row"] = "1"
    data["triggers[2].type"] = "workflow"
    data["triggers[2].workflow_id"] = str(hidden.pk)
    data["triggers[2].outcome"] = "completed"
    response = client.post("/workflows/new/", {**data, "team": str(onboarding.pk)})
    html = response.content.decode()
    assert "one of the workflows you may view" in html
    assert "Support flow" not in html
    assert not Workflow.objects.filter(name="Letters").exclude(pk=hidden.pk).exists()


# --- CSP: nothing inline on the workflow pages -------------------------------------------------


def test_workflow_pages_carry_no_inline_script_style_or_handlers(client, demo_people, flow):
    versions.submit(flow, actor=demo_people["builder"])
    client.force_login(demo_people["admin"])
    for url in (
        "/workflows/",
        "/workflows/new/",
        f"/workflows/{flow.pk}/",
        f"/workflows/{flow.pk}/edit/",
        f"/workflows/{flow.pk}/review/",
        f"/workflows/{flow.pk}/history/",
        f"/workflows/{flow.pk}/versions/1/",
    ):
        html = client.get(url).content.decode()
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in tag, url
        assert not re.search(r"\sstyle=", html), url
        assert "<style" not in html, url
        assert not re.search(r"\son[a-z]+=", html), url
        assert "hx-on" not in html, url
