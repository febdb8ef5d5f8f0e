"""Try it: a version run on sample input through the executor interface, recorded as
`agent.tried` with personal inputs sealed under the data subject."""

from __future__ import annotations

import json
import socket

import pytest
from django.core.exceptions import PermissionDenied

from agents import tryit, versions
from governance.models import DecisionRecord, Team
from tests.agent_factories import human_definition, make_agent, make_connection, rules_definition
from tests.support.http_service import Reply, http_service_fixture, make_service_fixture  # noqa: F401
from tests.support.openai_server import llm_server_fixture  # noqa: F401

pytestmark = pytest.mark.django_db

INPUT = {"customer_id": "c-42", "amount": 250, "country": "DE", "full_name": "Jane Doe"}


@pytest.fixture
def onboarding(demo_people):
    return Team.objects.get(name="Onboarding")


@pytest.fixture
def rules_agent(demo_people, onboarding):
    return make_agent(demo_people["builder"], onboarding)


def last_try() -> dict:
    return json.loads(DecisionRecord.objects.filter(event="agent.tried").last().canonical)


# --- Rules --------------------------------------------------------------------------------------


def test_a_rules_agent_decides_and_names_the_rule(demo_people, rules_agent):
    result = tryit.try_agent(rules_agent, actor=demo_people["builder"], inputs=INPUT)
    assert result.outcome == "decided"
    assert result.decision.decision == "approve"
    assert result.decision.output == {"limit": 1000}
    assert result.decision.rules_applied[0]["row"] == 1
    assert result.version.number == 1


def test_the_try_is_recorded_with_personal_inputs_sealed(demo_people, rules_agent):
    result = tryit.try_agent(rules_agent, actor=demo_people["builder"], inputs=INPUT)
    record = DecisionRecord.objects.get(seq=result.record_seq)
    document = json.loads(record.canonical)
    assert document["event"] == "agent.tried"
    assert document["body"]["inputs"] == {"customer_id": "c-42", "amount": 250, "country": "DE"}
    assert document["body"]["decision"] == "approve"
    assert document["refs"]["agent_version"]["name"] == "Credit limit v1"
    assert "Jane Doe" not in record.canonical
    assert record.subject_id == "c-42"
    assert document["personal"]["subject"] == "c-42"


def test_personal_inputs_need_the_subject(demo_people, onboarding):
    definition = rules_definition()
    definition["input_fields"][0]["required"] = False
    agent = make_agent(demo_people["builder"], onboarding, definition)
    with pytest.raises(tryit.TryError) as caught:
        tryit.try_agent(agent, actor=demo_people["builder"], inputs={**INPUT, "customer_id": ""})
    assert caught.value.field == "inputs.customer_id"


def test_missing_input_is_data_missing(demo_people, rules_agent):
    result = tryit.try_agent(rules_agent, actor=demo_people["builder"], inputs={"amount": "x"})
    assert result.outcome == "failed"
    assert result.error_type == "DataMissing"
    assert "customer_id" in result.context["missing"]
    assert last_try()["body"]["error"]["kind"] == "data_missing"


def test_two_matching_rows_are_a_rule_conflict(demo_people, onboarding):
    definition = rules_definition()
    definition["config"]["rules"][1]["condition"] = "input.amount > 100.0"
    agent = make_agent(demo_people["builder"], onboarding, definition)
    result = tryit.try_agent(agent, actor=demo_people["builder"], inputs=INPUT)
    assert result.error_type == "RuleConflict"
    assert [r["row"] for r in result.context["rules"]] == [1, 2]


def test_low_confidence_shows_the_decision_it_would_have_made(demo_people, onboarding):
    agent = make_agent(
        demo_people["builder"], onboarding, rules_definition(confidence_threshold=0.99)
    )
    result = tryit.try_agent(agent, actor=demo_people["builder"], inputs=INPUT)
    assert result.error_type == "LowConfidence"
    assert result.decision.decision == "approve"


def test_an_earlier_version_can_be_tried(demo_people, rules_agent):
    builder = demo_people["builder"]
    versions.submit(rules_agent, actor=builder)
    versions.approve(rules_agent, actor=demo_people["approver"], number=1)
    definition = rules_definition()
    definition["config"]["rules"][0]["decision"] = "approve_fast"
    versions.save_draft(rules_agent, definition, actor=builder)
    assert tryit.try_agent(rules_agent, actor=builder, inputs=INPUT).decision.decision == (
        "approve_fast"
    )
    older = tryit.try_agent(rules_agent, actor=builder, inputs=INPUT, number=1)
    assert older.decision.decision == "approve"
    with pytest.raises(tryit.TryError):
        tryit.try_agent(rules_agent, actor=builder, inputs=INPUT, number=7)


def test_only_people_who_may_change_it_try_it(demo_people, rules_agent):
    with pytest.raises(PermissionDenied):
        tryit.try_agent(rules_agent, actor=demo_people["approver"], inputs=INPUT)


def test_credential_like_input_names_are_withheld_from_the_record(demo_people, onboarding):
    definition = rules_definition()
    definition["input_fields"].append({"name": "api_token", "type": "text", "required": False})
    agent = make_agent(demo_people["builder"], onboarding, definition)
    tryit.try_agent(agent, actor=demo_people["builder"], inputs={**INPUT, "api_token": "zzz9"})
    body = last_try()["body"]
    assert body["inputs"]["withheld"] == ["api_token"]
    assert "zzz9" not in json.dumps(body)


# --- Human --------------------------------------------------------------------------------------


def test_a_human_agent_shows_the_task_it_would_open(demo_people, onboarding):
    agent = make_agent(demo_people["builder"], onboarding, human_definition(onboarding))
    result = tryit.try_agent(agent, actor=demo_people["builder"], inputs={"customer_id": "c-1"})
    assert result.outcome == "awaiting_person"
    assert result.context["team_id"] == str(onboarding.pk)
    assert result.context["instructions"] == "Check the passport against the file."
    assert result.context["output_fields"][0]["name"] == "verdict"
    assert last_try()["body"]["outcome"] == "awaiting_person"


# --- llm and http -------------------------------------------------------------------------------


def llm_definition(connection_id) -> dict:
    return {
        "kind": "llm",
        "description": "Assesses a request",
        "input_fields": [{"name": "amount", "type": "number"}],
        "output_fields": [],
        "config": {
            "connection_id": str(connection_id),
            "model": "",
            "system_prompt": "You assess credit requests.",
            "user_prompt_template": "The customer asks for {{ amount }} EUR.",
        },
    }


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_llm_agent_without_a_reachable_model_is_system_unavailable(demo_people, onboarding):
    model = make_connection(
        demo_people["admin"],
        onboarding,
        name="No model",
        kind="model",
        base_url=f"http://127.0.0.1:{_closed_port()}/v1",
        model="llama3.1",
        auth_method="none",
        secret="",
        allow_internal=True,
    )
    agent = make_agent(demo_people["builder"], onboarding, llm_definition(model.pk), name="LLM")
    result = tryit.try_agent(agent, actor=demo_people["builder"], inputs={"amount": 10})
    assert result.outcome == "failed"
    assert result.error_type == "SystemUnavailable", result.message


def test_an_llm_agent_answers_through_a_loopback_model(demo_people, onboarding, llm_server):
    model = make_connection(
        demo_people["admin"],
        onboarding,
        name="Loopback model",
        kind="model",
        base_url=llm_server.base_url,
        auth_method="bearer",
        model="loopback-model",
        allow_internal=True,
    )
    llm_server.answer({"decision": "approve", "rationale": "small amount", "confidence": 0.9})
    agent = make_agent(demo_people["builder"], onboarding, llm_definition(model.pk), name="LLM")
    result = tryit.try_agent(agent, actor=demo_people["builder"], inputs={"amount": 10})
    assert result.outcome == "decided", result.message
    assert result.decision.decision == "approve"
    assert "s3cr3t" not in json.dumps(last_try())


def test_a_connection_the_person_may_not_use_is_refused(demo_people, onboarding):
    model = make_connection(
        demo_people["admin"], onboarding, name="Model", kind="model", auth_method="none", secret=""
    )
    agent = make_agent(demo_people["admin"], onboarding, llm_definition(model.pk), name="LLM")
    # builder2 gets change on the agent, but not use on the connection.
    from guardian.shortcuts import assign_perm

    assign_perm("change_agent", demo_people["builder2"], agent)
    with pytest.raises(PermissionDenied):
        tryit.try_agent(agent, actor=demo_people["builder2"], inputs={"amount": 1})


def test_an_http_agent_maps_the_answer(demo_people, onboarding, http_service):
    http_service.route("GET", "/api/risk/c-1", Reply(json={"risk": "low", "decision": "ok"}))
    crm = make_connection(
        demo_people["admin"],
        onboarding,
        name="Local CRM",
        base_url=f"{http_service.url}/api",
        allow_internal=True,
    )
    definition = {
        "kind": "http",
        "input_fields": [{"name": "customer_id", "type": "text"}],
        "output_fields": [{"name": "risk", "type": "text"}],
        "config": {
            "connection_id": str(crm.pk),
            "method": "GET",
            "path_template": "/risk/{{ customer_id }}",
            "response_mapping": {"risk": "/risk"},
            "decision_pointer": "/decision",
        },
    }
    agent = make_agent(demo_people["builder"], onboarding, definition, name="Risk")
    result = tryit.try_agent(agent, actor=demo_people["builder"], inputs={"customer_id": "c-1"})
    assert result.outcome == "decided", result.message
    assert result.decision.output == {"risk": "low"}


# --- The page -----------------------------------------------------------------------------------


def test_the_try_page_runs_the_draft_and_shows_the_decision(client, demo_people, rules_agent):
    client.force_login(demo_people["builder"])
    page = client.get(f"/agents/{rules_agent.pk}/try/").content.decode()
    assert 'name="input-amount"' in page
    response = client.post(
        f"/agents/{rules_agent.pk}/try/",
        {
            "version": "1",
            "input-customer_id": "c-9",
            "input-amount": "20",
            "input-country": "DE",
        },
        HTTP_HX_REQUEST="true",
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "Decided" in html
    assert "approve" in html
    assert "input.amount &lt; 1000.0" in html  # the rule that fired
    assert "Log record #" in html


def test_the_try_page_shows_the_exception_class(client, demo_people, rules_agent):
    client.force_login(demo_people["builder"])
    html = client.post(
        f"/agents/{rules_agent.pk}/try/", {"version": "1", "input-amount": "abc"}
    ).content.decode()
    assert "DataMissing" in html
    assert "Data missing" in html


def test_the_try_page_of_a_human_agent_shows_the_task(client, demo_people, onboarding):
    agent = make_agent(demo_people["builder"], onboarding, human_definition(onboarding))
    client.force_login(demo_people["builder"])
    html = client.post(
        f"/agents/{agent.pk}/try/", {"version": "1", "input-customer_id": "c-1"}
    ).content.decode()
    assert "Would open a task for a person" in html
    assert "Onboarding" in html
    assert "Check the passport against the file." in html


def test_the_try_page_names_a_missing_subject_on_its_field(client, demo_people, onboarding):
    definition = rules_definition()
    definition["input_fields"][0]["required"] = False
    agent = make_agent(demo_people["builder"], onboarding, definition)
    client.force_login(demo_people["builder"])
    html = client.post(
        f"/agents/{agent.pk}/try/",
        {"version": "1", "input-full_name": "Jane", "input-amount": "1"},
    ).content.decode()
    assert "give the value that names the data subject" in html


def test_a_json_input_that_does_not_parse_is_a_form_error(client, demo_people, onboarding):
    definition = rules_definition()
    definition["input_fields"].append({"name": "extra", "type": "json", "required": False})
    agent = make_agent(demo_people["builder"], onboarding, definition)
    client.force_login(demo_people["builder"])
    count = DecisionRecord.objects.filter(event="agent.tried").count()
    html = client.post(
        f"/agents/{agent.pk}/try/", {"version": "1", "input-extra": "{nope"}
    ).content.decode()
    assert "not valid JSON" in html
    assert DecisionRecord.objects.filter(event="agent.tried").count() == count
