"""Bad input through the agent editor and the API: a form error or a 400 naming the field,
nothing saved, never a 500; markup is shown as text."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from agents import versions
from agents.models import Agent, AgentVersion, Connection
from governance.models import Team
from tests.agent_factories import make_agent, make_connection, rules_definition
from tests.unit.test_agent_pages import editor_post

pytestmark = pytest.mark.django_db

BIG = "x" * 100_000
MARKUP = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def onboarding(demo_people):
    return Team.objects.get(name="Onboarding")


@pytest.fixture
def agent(demo_people, onboarding):
    return make_agent(demo_people["builder"], onboarding)


@pytest.fixture
def api(demo_people):
    client = APIClient()
    client.force_authenticate(demo_people["builder"])
    return client


def snapshot() -> list:
    return list(AgentVersion.objects.order_by("pk").values_list("pk", "definition"))


def with_change(path: str, value) -> dict:
    """The rules definition with the value at a dotted path (``config.rules.0.condition``)."""
    definition = rules_definition()
    *parents, last = path.split(".")
    target = definition
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if last.isdigit():
        target[int(last)] = value
    else:
        target[last] = value
    return definition


# (path in the definition, bad value, the field the answer must name)
API_CASES = [
    ("kind", 7, "kind"),
    ("kind", "oracle", "kind"),
    ("description", 5, "description"),
    ("description", BIG, "description"),
    ("input_fields", "amount", "input_fields"),
    ("input_fields.1", "amount", "input_fields[1]"),
    ("input_fields.1.type", "money", "input_fields[1].type"),
    ("input_fields.1.name", "Amount!", "input_fields[1].name"),
    ("input_fields.1.name", BIG, "input_fields[1].name"),
    ("input_fields.2.choices", "DE", "input_fields[2].choices"),
    ("input_fields.0.description", BIG, "input_fields[0].description"),
    ("subject_field", "nobody", "subject_field"),
    ("confidence_threshold", "abc", "confidence_threshold"),
    ("confidence_threshold", 7, "confidence_threshold"),
    ("confidence_threshold", [], "confidence_threshold"),
    ("retry_limit", 2.5, "retry_limit"),
    ("retry_limit", True, "retry_limit"),
    ("timeout_seconds", {}, "timeout_seconds"),
    ("timeout_seconds", "1e999", "timeout_seconds"),
    ("config", [], "config"),
    ("config.hit_policy", "all", "config.hit_policy"),
    ("config.rules", "every row", "config.rules"),
    ("config.rules.0", "rule", "config.rules[0]"),
    ("config.rules.0.condition", "input.amount <", "config.rules[0].condition"),
    ("config.rules.0.condition", "input.salary > 1.0", "config.rules[0].condition"),
    ("config.rules.0.condition", "input.country > 3.0", "config.rules[0].condition"),
    ("config.rules.0.condition", BIG, "config.rules[0].condition"),
    ("config.rules.0.outputs", [], "config.rules[0].outputs"),
    ("config.rules.0.outputs.limit", "lots", "config.rules[0].outputs.limit"),
    ("config.rules.0.confidence", 3, "config.rules[0].confidence"),
    ("config.rules.0.rationale", BIG, "config.rules[0].rationale"),
    ("config.rules.0.decision", BIG, "config.rules[0].decision"),
    ("config.rules.0.decision", {"a": 1}, "config.rules[0].decision"),
]


@pytest.mark.parametrize(("path", "value", "field"), API_CASES)
def test_the_api_answers_400_naming_the_field_and_saves_nothing(api, agent, path, value, field):
    before = snapshot()
    response = api.put(
        f"/api/v1/agents/{agent.pk}/", {"definition": with_change(path, value)}, format="json"
    )
    assert response.status_code == 400, response.content[:300]
    # The field named, or a column inside it (outputs [] -> outputs.limit is missing).
    assert any(key == field or key.startswith(field + ".") for key in response.json()), (
        response.json()
    )
    assert snapshot() == before


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{{ amount", "line 1"),
        ("{{ ''.__class__ }}", "__class__"),
        ("{{ salary }}", "unknown variable"),
        ("{% for %}", "line 1"),
    ],
)
def test_template_errors_are_named_on_save(api, demo_people, onboarding, template, problem):
    model = make_connection(
        demo_people["builder"], onboarding, kind="model", auth_method="none", secret=""
    )
    definition = {
        "kind": "llm",
        "input_fields": [{"name": "amount", "type": "number"}],
        "config": {"connection_id": str(model.pk), "user_prompt_template": template},
    }
    response = api.post(
        "/api/v1/agents/",
        {"name": "LLM", "team": onboarding.pk, "definition": definition},
        format="json",
    )
    assert response.status_code == 400
    messages = response.json()["config.user_prompt_template"]
    assert problem in messages[0]
    assert not Agent.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        '{"definition": {"kind": "rules", "confidence_threshold": NaN}}',
        '{"definition": {"kind": "rules", "retry_limit": 1e999}}',
        '{"definition": {"kind": "rules", "retry_limit": 123456789012345678901234567890}}',
        '{"definition": ' + "[" * 5000 + "]" * 5000 + "}",
        '{"definition": ' + '{"a":' * 200 + "1" + "}" * 200 + "}",
        "not json at all",
        '{"definition": "\\ud800"}',
    ],
)
def test_malformed_json_is_a_400(api, agent, body):
    before = snapshot()
    response = api.generic(
        "PUT", f"/api/v1/agents/{agent.pk}/", body, content_type="application/json"
    )
    assert response.status_code == 400, response.content[:300]
    assert snapshot() == before


@pytest.mark.parametrize(
    "payload",
    [
        {"name": "", "team": 1, "definition": {}},
        {"name": BIG, "team": 1, "definition": rules_definition()},
        {"name": "X", "team": "Onboarding", "definition": rules_definition()},
        {"name": "X", "team": 99999, "definition": rules_definition()},
        {"name": "X", "team": 1, "definition": "rules"},
        {"name": "X", "team": 1},
        [],
    ],
)
def test_bad_create_payloads_are_400s(api, onboarding, payload):
    if isinstance(payload, dict) and payload.get("team") == 1:
        payload = {**payload, "team": onboarding.pk}
    response = api.post("/api/v1/agents/", payload, format="json")
    assert response.status_code == 400, response.content[:300]
    assert not Agent.objects.exists()


@pytest.mark.parametrize(
    ("action", "payload", "field"),
    [
        ("submit", {"note": BIG}, "note"),
        ("approve", {"version": "one"}, "version"),
        ("reject", {"version": 1, "reason": ""}, "reason"),
        ("rollback", {"version": -1}, "version"),
        ("try", {"inputs": "amount=5"}, "inputs"),
        ("try", {"inputs": {}, "version": 99}, "version"),
    ],
)
def test_bad_action_payloads_are_400s_naming_the_field(
    api, demo_people, agent, action, payload, field
):
    if action in ("approve", "reject"):
        versions.submit(agent, actor=demo_people["builder"])
        api.force_authenticate(demo_people["approver"])
    response = api.post(f"/api/v1/agents/{agent.pk}/{action}/", payload, format="json")
    assert response.status_code == 400, response.content[:300]
    assert field in response.json()


def test_huge_try_inputs_fail_as_data_missing_and_are_recorded_cut(api, agent):
    response = api.post(
        f"/api/v1/agents/{agent.pk}/try/",
        {"inputs": {"customer_id": BIG, "amount": 1, "country": "DE"}},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["error"]["kind"] == "data_missing"


def test_markup_is_stored_as_given_and_returned_as_json(api, agent):
    definition = rules_definition(description=MARKUP)
    definition["config"]["rules"][0]["rationale"] = MARKUP
    response = api.put(f"/api/v1/agents/{agent.pk}/", {"definition": definition}, format="json")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["draft"]["definition"]["description"] == MARKUP


# --- Through the forms --------------------------------------------------------------------------

FORM_CASES = [
    ({"confidence_threshold": "abc"}, "confidence_threshold"),
    ({"retry_limit": "2.5"}, "retry_limit"),
    ({"timeout_seconds": BIG}, "timeout_seconds"),
    ({"description": BIG}, "description"),
    ({"input_fields[1].type": "money"}, "input_fields[1].type"),
    ({"input_fields[1].name": BIG}, "input_fields[1].name"),
    ({"input_fields[2].choices": ""}, "input_fields[2].choices"),
    ({"subject_field": "nobody"}, "subject_field"),
    ({"config.hit_policy": "all"}, "config.hit_policy"),
    ({"config.rules[0].condition": "input.amount <"}, "config.rules[0].condition"),
    ({"config.rules[0].condition": BIG}, "config.rules[0].condition"),
    ({"config.rules[0].outputs.limit": "lots"}, "config.rules[0].outputs.limit"),
    ({"config.rules[0].confidence": "high"}, "config.rules[0].confidence"),
    ({"config.rules[0].rationale": BIG}, "config.rules[0].rationale"),
]


def field_error_id(path: str) -> str:
    from agents.forms.definition import dom_id

    return f'id="{dom_id(path)}-errors"'


@pytest.mark.parametrize(("change", "field"), FORM_CASES)
def test_the_editor_shows_the_error_on_the_field_and_saves_nothing(
    client, demo_people, agent, change, field
):
    client.force_login(demo_people["builder"])
    before = snapshot()
    data = editor_post(rules_definition()) | change | {"op": "save"}
    response = client.post(f"/agents/{agent.pk}/edit/", data)
    html = response.content.decode()
    assert response.status_code == 200
    assert "Nothing was saved" in html
    assert field_error_id(field) in html, field
    assert snapshot() == before


def test_an_unknown_kind_in_the_create_form_is_an_error(client, demo_people, onboarding):
    client.force_login(demo_people["builder"])
    data = editor_post(rules_definition(), name="X", team=str(onboarding.pk), kind="oracle")
    html = client.post("/agents/new/", data | {"op": "save"}).content.decode()
    assert "Nothing was saved" in html
    assert "choose one of rules, llm, http, human" in html
    assert not Agent.objects.exists()


def test_a_huge_name_in_the_create_form_is_an_error(client, demo_people, onboarding):
    client.force_login(demo_people["builder"])
    data = editor_post(rules_definition(), name=BIG, team=str(onboarding.pk), kind="rules")
    html = client.post("/agents/new/", data | {"op": "save"}).content.decode()
    assert field_error_id("name") in html
    assert not Agent.objects.exists()


def test_garbage_row_markers_and_ops_never_fail(client, demo_people, agent):
    client.force_login(demo_people["builder"])
    data = editor_post(rules_definition()) | {
        "input_fields[99999]._row": "1",
        "config.rules[-1]._row": "1",
        "config.rules[abc].condition": "x",
    }
    for op in ("remove:config.rules:999", "up:input_fields:0", "add:nothing", "save", ""):
        response = client.post(f"/agents/{agent.pk}/edit/", data | {"op": op})
        assert response.status_code in (200, 302)


def test_markup_in_every_editor_field_comes_back_as_text(client, demo_people, agent):
    client.force_login(demo_people["builder"])
    data = {key: MARKUP for key in editor_post(rules_definition())}
    data = editor_post(rules_definition()) | {
        k: MARKUP for k in data if not k.endswith(("._row", ".required", ".personal"))
    }
    html = client.post(f"/agents/{agent.pk}/edit/", data | {"op": "save"}).content.decode()
    assert "<script>alert" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;" in html


def test_markup_in_a_saved_agent_is_text_on_every_page(client, demo_people, onboarding):
    definition = rules_definition(description=MARKUP)
    definition["input_fields"][0]["description"] = MARKUP
    definition["config"]["rules"][0]["rationale"] = MARKUP
    definition["config"]["rules"][0]["description"] = MARKUP[:400]
    agent = make_agent(demo_people["builder"], onboarding, definition, name=MARKUP[:100])
    versions.submit(agent, actor=demo_people["builder"], note=MARKUP)
    client.force_login(demo_people["approver"])
    for url in ("/agents/", f"/agents/{agent.pk}/", f"/agents/{agent.pk}/review/"):
        html = client.get(url).content.decode()
        assert "<script>alert" not in html, url
        assert "<img src=x" not in html, url


# --- Connections ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", BIG),
        ("base_url", BIG),
        ("description", BIG),
        ("header_name", MARKUP),
        ("secret", BIG),
        ("timeout_seconds", "soon"),
        ("team", "Onboarding"),
        ("kind", "ftp"),
        ("auth_method", "kerberos"),
    ],
)
def test_bad_connection_input_is_a_400_naming_the_field(api, onboarding, field, value):
    payload = {
        "name": "Scoring",
        "team": onboarding.pk,
        "kind": "http",
        "base_url": "https://scoring.example.com",
        "auth_method": "api_key_header",
        "header_name": "X-API-Key",
        "secret": "k-1",
        field: value,
    }
    response = api.post("/api/v1/connections/", payload, format="json")
    assert response.status_code == 400, response.content[:300]
    assert field in response.json()
    assert not Connection.objects.exists()


def test_markup_in_a_connection_is_text_on_its_pages(client, demo_people, onboarding):
    conn = make_connection(demo_people["builder"], onboarding, name=MARKUP[:90], description=MARKUP)
    client.force_login(demo_people["builder"])
    for url in ("/connections/", f"/connections/{conn.pk}/", f"/connections/{conn.pk}/edit/"):
        html = client.get(url).content.decode()
        assert "<script>alert" not in html
        assert "<img src=x" not in html


def test_connection_form_errors_never_500(client, demo_people, onboarding):
    client.force_login(demo_people["builder"])
    for data in (
        {"name": BIG, "team": onboarding.pk, "kind": "http", "base_url": BIG},
        {"team": "x", "kind": "zzz", "timeout_seconds": "1e999"},
        {},
    ):
        response = client.post("/connections/new/", data)
        assert response.status_code == 200
        assert "errorlist" in response.content.decode()
    assert not Connection.objects.exists()
