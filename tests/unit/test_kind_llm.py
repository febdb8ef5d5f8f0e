"""The llm kind against a real OpenAI-compatible server on loopback (never a patched client):
happy paths, every taxonomy path, tool round trips, config validation, the template sandbox."""

from __future__ import annotations

import json
import time

import pytest

from agents.engine.taxonomy import DataMissing, LowConfidence, OutOfScope, SystemUnavailable
from agents.kinds import registry, templating
from agents.kinds.base import AgentSpec, ConnectionSpec, run
from agents.kinds.config import ConfigError
from tests.support.http_service import Reply, http_service_fixture, make_service_fixture  # noqa: F401
from tests.support.openai_server import MODEL, llm_server_fixture  # noqa: F401

API_KEY = "sk-test-3b8e51f0aa"
TOOL_SECRET = "crm-secret-99d1c2"

INPUTS = [
    {"name": "name", "type": "text"},
    {"name": "amount", "type": "number"},
    {"name": "note", "type": "text", "required": False},
]
OUTPUTS = [
    {"name": "risk_level", "type": "choice", "choices": ["low", "medium", "high"]},
    {"name": "limit", "type": "number", "required": False},
]
CONFIG = {
    "connection_id": "3",
    "temperature": 0.1,
    "system_prompt": "You assess credit requests.",
    "user_prompt_template": "{{ name }} asks for {{ amount }} EUR.",
}
GOOD = {
    "decision": "approve",
    "rationale": "small amount, known customer",
    "confidence": 0.91,
    "risk_level": "low",
    "limit": 5000,
}
LOOKUP = {
    "name": "lookup_customer",
    "description": "Look a customer up in the CRM by id.",
    "connection_id": "9",
    "method": "GET",
    "path_template": "/customers/{{ customer_id }}",
    "parameters": {
        "type": "object",
        "properties": {"customer_id": {"type": "string"}, "fields": {"type": "string"}},
        "required": ["customer_id"],
    },
}


def model_connection(server, **kwargs) -> ConnectionSpec:
    fields = {
        "id": "3",
        "name": "Loopback model",
        "kind": "model",
        "base_url": server.base_url,
        "auth_method": "bearer",
        "secret": API_KEY,
        "model": MODEL,
        "allow_internal": True,
        # Generous: a loopback answer took over 0.5 s once in a loaded CI run; the timeout
        # itself is tested with its own short value.
        "timeout_seconds": 5.0,
        **kwargs,
    }
    return ConnectionSpec(**fields)


def crm_connection(service, **kwargs) -> ConnectionSpec:
    fields = {
        "id": "9",
        "name": "CRM",
        "kind": "http",
        "base_url": service.url,
        "auth_method": "api_key_header",
        "header_name": "X-Api-Key",
        "secret": TOOL_SECRET,
        "allow_internal": True,
        "timeout_seconds": 5.0,
        **kwargs,
    }
    return ConnectionSpec(**fields)


def agent(server, config=None, *, threshold=0.0, crm=None, validated=True, **conn):
    config = config or CONFIG
    if validated:
        config = registry.validate_config("llm", config, input_fields=INPUTS, output_fields=OUTPUTS)
    connections = {"3": model_connection(server, **conn)}
    if crm is not None:
        connections["9"] = crm
    return AgentSpec.from_definition(
        {
            "kind": "llm",
            "input_fields": INPUTS,
            "output_fields": OUTPUTS,
            "confidence_threshold": threshold,
            "timeout_seconds": 2.0,
            "config": config,
        },
        agent_id="a2",
        name="Credit assessor",
        version=1,
        connections=connections,
    )


ASK = {"name": "Ada", "amount": 1200}


# --- happy paths -----------------------------------------------------------------------------


def test_the_models_json_answer_becomes_the_decision(llm_server):
    llm_server.answer(GOOD, model="loopback-model-2024-01")
    decision = run(agent(llm_server), ASK)
    assert decision.decision == "approve"
    assert decision.rationale == "small amount, known customer"
    assert decision.confidence == 0.91
    assert decision.output == {"risk_level": "low", "limit": 5000}
    assert decision.model == "loopback-model-2024-01"
    assert decision.tool_calls == []
    (call,) = decision.data_considered
    assert call["url"] == f"{llm_server.base_url}/chat/completions"
    assert call["status"] == 200
    assert call["usage"]["total_tokens"] == 15
    assert API_KEY not in json.dumps(decision.as_body())


def test_the_request_speaks_the_chat_completions_protocol(llm_server):
    llm_server.answer(GOOD)
    run(agent(llm_server), ASK)
    (body,) = llm_server.chat_requests
    assert body["model"] == MODEL
    assert body["temperature"] == 0.1
    assert body["response_format"] == {"type": "json_object"}
    assert "tools" not in body
    system, user = body["messages"]
    assert system["role"] == "system"
    assert system["content"].startswith("You assess credit requests.")
    assert '"confidence" (number from 0 to 1)' in system["content"]
    assert '"risk_level" (one of: low, medium, high; required)' in system["content"]
    assert user == {"role": "user", "content": "Ada asks for 1200 EUR."}
    request = llm_server.service.requests[0]
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {API_KEY}"


def test_the_agents_model_overrides_the_connections_default(llm_server):
    llm_server.answer(GOOD)
    run(agent(llm_server, {**CONFIG, "model": "special-model"}), ASK)
    assert llm_server.chat_requests[0]["model"] == "special-model"


def test_an_answer_in_a_code_fence_or_with_outputs_nested_is_accepted(llm_server):
    llm_server.answer("```json\n" + json.dumps(GOOD) + "\n```")
    assert run(agent(llm_server), ASK).output["risk_level"] == "low"
    nested = {k: GOOD[k] for k in ("decision", "rationale", "confidence")}
    llm_server.answer({**nested, "output": {"risk_level": "high"}})
    assert run(agent(llm_server), ASK).output == {"risk_level": "high"}


# --- the taxonomy ----------------------------------------------------------------------------


def test_a_confidence_under_the_threshold_is_low_confidence(llm_server):
    llm_server.answer({**GOOD, "confidence": 0.35})
    with pytest.raises(LowConfidence) as low:
        run(agent(llm_server, threshold=0.7), ASK)
    assert low.value.confidence == 0.35
    assert low.value.threshold == 0.7
    assert low.value.options[0]["decision"] == "approve"
    assert low.value.decision.model == MODEL


def test_malformed_json_is_repaired_once(llm_server):
    llm_server.answer('{"decision": "approve", "confidence": 0.9')
    llm_server.answer(GOOD)
    decision = run(agent(llm_server), ASK)
    assert decision.decision == "approve"
    assert len(llm_server.chat_requests) == 2
    retry = llm_server.chat_requests[1]["messages"]
    assert retry[-2] == {
        "role": "assistant",
        "content": '{"decision": "approve", "confidence": 0.9',
    }
    assert retry[-1]["role"] == "user"
    assert "not JSON" in retry[-1]["content"]


def test_malformed_json_twice_is_out_of_scope_with_the_raw_answer(llm_server):
    llm_server.answer("I think we should approve this.")
    llm_server.answer("Definitely approve!")
    with pytest.raises(OutOfScope) as out:
        run(agent(llm_server), ASK)
    details = out.value.details
    assert details["reason"] == "unusable_answer"
    assert details["answer_excerpt"] == "Definitely approve!"
    assert "not JSON" in details["problems"][0]
    assert len(llm_server.chat_requests) == 2


def test_missing_fields_twice_are_out_of_scope_naming_them(llm_server):
    partial = {"decision": "approve", "rationale": "fine"}
    llm_server.answer(partial)
    llm_server.answer(partial)
    with pytest.raises(OutOfScope) as out:
        run(agent(llm_server), ASK)
    problems = out.value.details["problems"]
    assert '"confidence" is missing' in problems
    assert 'missing "risk_level"' in problems
    assert "confidence" in llm_server.chat_requests[1]["messages"][-1]["content"]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"confidence": 1.7}, '"confidence" 1.7 is not from 0 to 1'),
        ({"confidence": "very"}, '"confidence" must be a number'),
        ({"confidence": True}, '"confidence" must be a number'),
        ({"risk_level": "extreme"}, '"risk_level": expected one of low, medium, high'),
        ({"limit": "a lot"}, '"limit": expected a number'),
        ({"decision": ["a", "b"]}, '"decision" must be text'),
        ({"rationale": ""}, '"rationale" is missing'),
    ],
)
def test_values_that_do_not_fit_are_out_of_scope_after_one_repair(llm_server, change, problem):
    llm_server.answer({**GOOD, **change})
    llm_server.answer({**GOOD, **change})
    with pytest.raises(OutOfScope) as out:
        run(agent(llm_server), ASK)
    assert problem in "; ".join(out.value.details["problems"])


def test_an_answer_that_is_not_an_object_is_unusable(llm_server):
    llm_server.answer("[1, 2]")
    llm_server.answer("")
    with pytest.raises(OutOfScope) as out:
        run(agent(llm_server), ASK)
    assert out.value.details["problems"] == ["the answer is empty"]


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_a_5xx_is_system_unavailable(llm_server, status):
    llm_server.fail(status)
    with pytest.raises(SystemUnavailable) as unavailable:
        run(agent(llm_server), ASK)
    assert unavailable.value.status == status
    assert unavailable.value.target == f"{llm_server.base_url}/chat/completions"


def test_a_slow_model_is_system_unavailable_at_the_timeout(llm_server):
    llm_server.stall(3.0)
    started = time.monotonic()
    with pytest.raises(SystemUnavailable, match="did not answer"):
        run(agent(llm_server, timeout_seconds=0.5), ASK)
    assert time.monotonic() - started < 1.5


def test_a_model_endpoint_that_is_down_is_system_unavailable(llm_server):
    llm_server.service.stop()
    with pytest.raises(SystemUnavailable, match="connection refused"):
        run(agent(llm_server), ASK)


def test_a_4xx_of_the_model_endpoint_is_out_of_scope(llm_server):
    llm_server.fail(401, {"error": {"message": "invalid api key"}})
    with pytest.raises(OutOfScope) as out:
        run(agent(llm_server), ASK)
    assert out.value.details["reason"] == "model_endpoint_error"
    assert out.value.details["status"] == 401
    assert "invalid api key" in out.value.details["excerpt"]


def test_an_answer_not_in_the_chat_completions_format_is_out_of_scope(llm_server):
    llm_server.raw(Reply(json={"result": "approve"}))
    with pytest.raises(OutOfScope) as out:
        run(agent(llm_server), ASK)
    assert out.value.details["reason"] == "not_chat_completion"


def test_a_model_endpoint_not_marked_internal_is_refused_and_never_reached(llm_server):
    llm_server.answer(GOOD)
    with pytest.raises(OutOfScope) as out:
        run(agent(llm_server, allow_internal=False), ASK)
    assert out.value.details["reason"] == "refused"
    assert "127.0.0.1 is a loopback address" in out.value.message
    assert llm_server.count == 0


def test_no_model_anywhere_is_out_of_scope(llm_server):
    with pytest.raises(OutOfScope) as out:
        run(agent(llm_server, model=""), ASK)
    assert out.value.details["reason"] == "no_model"
    assert llm_server.count == 0


def test_bad_input_is_data_missing(llm_server):
    with pytest.raises(DataMissing) as missing:
        run(agent(llm_server), {"amount": "much"})
    assert missing.value.missing == ["name"]
    assert llm_server.count == 0


def test_an_optional_input_the_prompt_needs_is_data_missing_naming_it(llm_server):
    config = {**CONFIG, "user_prompt_template": "{{ name }}: {{ note }}"}
    with pytest.raises(DataMissing) as missing:
        run(agent(llm_server, config), ASK)
    assert missing.value.missing == ["note"]
    assert llm_server.count == 0


# --- the template sandbox --------------------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ name.__init__.__globals__ }}",
        "{{ input['__class__'] }}",
        "{{ cycler.__init__.__globals__.os }}",
    ],
)
def test_access_to_python_objects_is_refused_on_save(template):
    with pytest.raises(ConfigError) as error:
        registry.validate_config(
            "llm",
            {**CONFIG, "user_prompt_template": template},
            input_fields=INPUTS,
            output_fields=OUTPUTS,
        )
    assert error.value.path == "user_prompt_template"
    assert "is not allowed" in error.value.problem


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ name.__init__.__globals__ }}",
        "{{ lipsum.__globals__['os'].popen('id').read() }}",
        "{{ name|attr('__class__') }}",
        "{{ (name|attr('__cla' ~ 'ss__')).__mro__ }}",
        "{{ 'x' * 10000000 }}",
        "{{ 9 ** 9999 }}",
    ],
)
def test_access_to_python_objects_is_refused_at_render(template):
    compiled = templating.compile_template(template, path="t", static_checks=False)
    with pytest.raises(templating.TemplateRefused):
        templating.render(compiled, {"name": "Ada"})


def test_an_unsafe_prompt_that_slipped_past_validation_never_reaches_the_model(llm_server):
    for template in ("{{ ''.__class__ }}", "{{ name|attr('__class__') }}"):
        config = {**CONFIG, "user_prompt_template": template}
        with pytest.raises(OutOfScope) as out:
            run(agent(llm_server, config, validated=False), ASK)
        assert out.value.details["reason"] in {"config_invalid", "template_refused"}
    assert llm_server.count == 0


# --- tools -----------------------------------------------------------------------------------


def with_tools(*tools, rounds=3):
    return {**CONFIG, "tools": list(tools), "max_tool_rounds": rounds}


def test_a_tool_call_round_trip(llm_server, http_service):
    http_service.route("GET", "/customers/42", Reply(json={"id": "42", "since": 2011}))
    llm_server.tool_call("lookup_customer", {"customer_id": "42", "fields": "since"}, call_id="c1")
    llm_server.answer(GOOD)
    spec = agent(llm_server, with_tools(LOOKUP), crm=crm_connection(http_service))
    decision = run(spec, ASK)

    first, second = llm_server.chat_requests
    assert first["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "lookup_customer",
                "description": LOOKUP["description"],
                "parameters": LOOKUP["parameters"],
            },
        }
    ]
    assistant, tool = second["messages"][-2:]
    assert assistant["tool_calls"][0]["id"] == "c1"
    assert tool["role"] == "tool"
    assert tool["tool_call_id"] == "c1"
    assert json.loads(tool["content"]) == {"id": "42", "since": 2011}

    (request,) = http_service.requests
    assert request.path == "/customers/42"
    assert request.query == {"fields": "since"}
    assert request.headers["x-api-key"] == TOOL_SECRET

    (call,) = decision.tool_calls
    assert call["name"] == "lookup_customer"
    assert call["arguments"] == {"customer_id": "42", "fields": "since"}
    assert call["status"] == 200
    assert call["url"] == f"{http_service.url}/customers/42"
    assert call["latency_ms"] > 0
    body = json.dumps(decision.as_body())
    assert TOOL_SECRET not in body
    assert API_KEY not in body


def test_a_post_tool_sends_its_other_arguments_as_json(llm_server, http_service):
    http_service.route("POST", "/scores/42", Reply(json={"score": 700}))
    score = {
        **LOOKUP,
        "name": "score",
        "method": "POST",
        "path_template": "/scores/{{ customer_id }}",
        "parameters": {
            "type": "object",
            "properties": {"customer_id": {"type": "string"}, "amount": {"type": "number"}},
        },
    }
    llm_server.tool_call("score", {"customer_id": "42", "amount": 1200})
    llm_server.answer(GOOD)
    run(agent(llm_server, with_tools(score), crm=crm_connection(http_service)), ASK)
    assert http_service.requests[0].json() == {"amount": 1200}


@pytest.mark.parametrize(
    ("name", "arguments", "status", "fed_back"),
    [
        ("lookup_customer", {"fields": "x"}, "invalid_arguments", "'customer_id' is a required"),
        ("lookup_customer", {"customer_id": 42}, "invalid_arguments", "is not of type 'string'"),
        ("lookup_customer", "{not json", "invalid_arguments", "not JSON"),
        ("delete_everything", {}, "unknown_tool", "no tool named 'delete_everything'"),
        ("lookup_customer", {"customer_id": ".."}, "refused", "'..' segment"),
    ],
)
def test_a_bad_tool_call_is_fed_back_to_the_model_and_sends_nothing(
    llm_server, http_service, name, arguments, status, fed_back
):
    llm_server.tool_call(name, arguments)
    llm_server.answer(GOOD)
    spec = agent(llm_server, with_tools(LOOKUP), crm=crm_connection(http_service))
    decision = run(spec, ASK)
    assert decision.tool_calls[0]["status"] == status
    tool_message = llm_server.chat_requests[1]["messages"][-1]
    assert fed_back in json.loads(tool_message["content"])["error"]
    assert http_service.count == 0


def test_a_tool_on_a_connection_not_marked_internal_is_refused(llm_server, http_service):
    llm_server.tool_call("lookup_customer", {"customer_id": "42"})
    llm_server.answer(GOOD)
    crm = crm_connection(http_service, allow_internal=False)
    decision = run(agent(llm_server, with_tools(LOOKUP), crm=crm), ASK)
    assert decision.tool_calls[0]["status"] == "refused"
    assert "loopback" in llm_server.chat_requests[1]["messages"][-1]["content"]
    assert http_service.count == 0


def test_a_tools_4xx_is_fed_back_and_secrets_echoed_by_it_are_scrubbed(llm_server, http_service):
    def echo(request):
        return Reply(status=404, json={"no customer; you sent": request.headers})

    http_service.route("GET", "/customers/7", echo)
    llm_server.tool_call("lookup_customer", {"customer_id": "7"})
    llm_server.answer(GOOD)
    decision = run(agent(llm_server, with_tools(LOOKUP), crm=crm_connection(http_service)), ASK)
    assert decision.tool_calls[0]["status"] == 404
    fed = llm_server.chat_requests[1]["messages"][-1]["content"]
    assert "HTTP 404" in fed
    assert "[redacted]" in fed
    assert TOOL_SECRET not in json.dumps(llm_server.chat_requests)


def test_a_tool_that_is_down_is_system_unavailable(llm_server, http_service):
    http_service.route("GET", "/customers/42", Reply(status=503, json={}))
    llm_server.tool_call("lookup_customer", {"customer_id": "42"})
    llm_server.answer(GOOD)
    with pytest.raises(SystemUnavailable) as unavailable:
        run(agent(llm_server, with_tools(LOOKUP), crm=crm_connection(http_service)), ASK)
    assert unavailable.value.status == 503


def test_tool_rounds_are_bounded(llm_server, http_service):
    http_service.route("GET", "/customers/42", Reply(json={"id": "42"}))
    llm_server.tool_call("lookup_customer", {"customer_id": "42"})
    llm_server.tool_call("lookup_customer", {"customer_id": "42"})
    llm_server.answer(GOOD)
    spec = agent(llm_server, with_tools(LOOKUP, rounds=1), crm=crm_connection(http_service))
    with pytest.raises(OutOfScope) as out:
        run(spec, ASK)
    assert out.value.details["reason"] == "tool_rounds_exhausted"
    assert len(out.value.details["tool_calls"]) == 1
    assert http_service.count == 1


def test_several_tool_calls_in_one_round_are_all_answered(llm_server, http_service):
    http_service.route("GET", "/customers/1", Reply(json={"id": "1"}))
    http_service.route("GET", "/customers/2", Reply(json={"id": "2"}))
    llm_server.tool_calls(
        [
            ("lookup_customer", {"customer_id": "1"}, "a"),
            ("lookup_customer", {"customer_id": "2"}, "b"),
        ]
    )
    llm_server.answer(GOOD)
    decision = run(agent(llm_server, with_tools(LOOKUP), crm=crm_connection(http_service)), ASK)
    assert [c["status"] for c in decision.tool_calls] == [200, 200]
    fed = [m for m in llm_server.chat_requests[1]["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in fed] == ["a", "b"]


def test_a_tools_connection_the_caller_did_not_resolve_is_out_of_scope(llm_server):
    llm_server.tool_call("lookup_customer", {"customer_id": "42"})
    with pytest.raises(OutOfScope) as out:
        run(agent(llm_server, with_tools(LOOKUP)), ASK)
    assert out.value.details["reason"] == "connection_missing"


# --- config validation -----------------------------------------------------------------------


def validate(config):
    return registry.validate_config("llm", config, input_fields=INPUTS, output_fields=OUTPUTS)


def test_validation_returns_the_normalised_config():
    config = validate(with_tools({**LOOKUP, "method": "get", "connection_id": 9}))
    assert config["max_tool_rounds"] == 3
    assert config["temperature"] == 0.1
    assert config["tools"][0]["method"] == "GET"
    assert config["tools"][0]["connection_id"] == "9"
    assert validate(CONFIG)["tools"] == []


@pytest.mark.parametrize(
    ("change", "path", "problem"),
    [
        ({"connection_id": None}, "connection_id", "choose a connection"),
        ({"temperature": 3}, "temperature", "from 0 to 2"),
        ({"temperature": "hot"}, "temperature", "from 0 to 2"),
        ({"user_prompt_template": " "}, "user_prompt_template", "write the prompt"),
        ({"user_prompt_template": "Hi\n{% if name %}"}, "user_prompt_template", "line 2"),
        ({"user_prompt_template": "{{ salary }}"}, "user_prompt_template", "'salary'"),
        ({"system_prompt": 5}, "system_prompt", "text"),
        ({"max_tool_rounds": 50}, "max_tool_rounds", "from 0 to 10"),
        ({"tools": {"a": 1}}, "tools", "a list"),
        ({"tools": [{**LOOKUP, "name": "look up"}]}, "tools[0].name", "letters"),
        ({"tools": [LOOKUP, LOOKUP]}, "tools[1].name", "appears twice"),
        ({"tools": [{**LOOKUP, "description": ""}]}, "tools[0].description", "what the tool"),
        ({"tools": [{**LOOKUP, "method": "TRACE"}]}, "tools[0].method", "one of"),
        ({"tools": [{**LOOKUP, "connection_id": ""}]}, "tools[0].connection_id", "choose"),
        (
            {"tools": [{**LOOKUP, "parameters": {"type": "string"}}]},
            "tools[0].parameters",
            "object",
        ),
        (
            {"tools": [{**LOOKUP, "parameters": {"type": "object", "required": "id"}}]},
            "tools[0].parameters",
            "not a valid JSON schema",
        ),
        (
            {"tools": [{**LOOKUP, "path_template": "/c/{{ account }}"}]},
            "tools[0].path_template",
            "unknown variable 'account'",
        ),
        ({"tools": [{**LOOKUP, "path_template": "http://x/"}]}, "tools[0].path_template", "/"),
        ({"tools": [{**LOOKUP, "headers": {}}]}, "tools[0].headers", "unknown setting"),
        ({"stream": True}, "stream", "unknown setting"),
    ],
)
def test_a_config_error_names_its_path(change, path, problem):
    with pytest.raises(ConfigError) as error:
        validate({**CONFIG, **change})
    assert error.value.path == path
    assert problem in error.value.problem
