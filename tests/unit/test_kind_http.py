"""The http kind against a real loopback JSON service: happy paths, every taxonomy path,
config validation naming the path, the template sandbox."""

from __future__ import annotations

import time

import pytest

from agents.engine.taxonomy import DataMissing, LowConfidence, OutOfScope, SystemUnavailable
from agents.kinds import jsonpointer, registry
from agents.kinds.base import AgentSpec, ConnectionSpec, run
from agents.kinds.config import ConfigError
from tests.support.http_service import Reply, http_service_fixture, make_service_fixture  # noqa: F401

SECRET = "crm-token-5c1d9e7f"

INPUTS = [
    {"name": "customer_id", "type": "text"},
    {"name": "name", "type": "text", "required": False},
    {"name": "amount", "type": "number", "required": False},
    {"name": "language", "type": "text", "required": False},
]
OUTPUTS = [
    {"name": "risk_level", "type": "choice", "choices": ["low", "medium", "high"]},
    {"name": "limit", "type": "number", "required": False},
]
CONFIG = {
    "connection_id": "7",
    "method": "GET",
    "path_template": "/customers/{{ customer_id }}",
    "response_mapping": {"risk_level": "/risk/level", "limit": "/limits/0"},
    "decision_pointer": "/decision",
    "confidence_pointer": "/score",
    "rationale_pointer": "/why",
    "failure": {"status_codes": [404], "pointer": "/status", "equals": "declined"},
}
ANSWER = {
    "risk": {"level": "low"},
    "limits": [5000, 100],
    "decision": "approve",
    "score": 0.92,
    "why": "long-standing customer",
}


def connection(service, **kwargs) -> ConnectionSpec:
    fields = {
        "id": "7",
        "name": "CRM",
        "kind": "http",
        "base_url": f"{service.url}/api",
        "auth_method": "bearer",
        "secret": SECRET,
        "allow_internal": True,
        # Generous: a loopback answer can take over 0.5 s in a loaded CI run; the timeout
        # itself is tested with its own short value.
        "timeout_seconds": 5.0,
        **kwargs,
    }
    return ConnectionSpec(**fields)


def agent(service, config=None, *, threshold=0.0, timeout=5.0, outputs=OUTPUTS, **conn):
    config = registry.validate_config(
        "http", config or CONFIG, input_fields=INPUTS, output_fields=outputs
    )
    return AgentSpec.from_definition(
        {
            "kind": "http",
            "input_fields": INPUTS,
            "output_fields": outputs,
            "confidence_threshold": threshold,
            "timeout_seconds": timeout,
            "config": config,
        },
        agent_id="a1",
        name="CRM risk",
        version=1,
        connections={"7": connection(service, **conn)} if service else {},
    )


def validate(config, outputs=OUTPUTS):
    return registry.validate_config("http", config, input_fields=INPUTS, output_fields=outputs)


# --- happy paths -----------------------------------------------------------------------------


def test_a_get_maps_the_json_answer_to_the_decision(http_service):
    http_service.route("GET", "/api/customers/42", Reply(json=ANSWER))
    config = {**CONFIG, "query": {"lang": "{{ language }}"}}
    decision = run(agent(http_service, config), {"customer_id": "42", "language": "en"})
    assert decision.output == {"risk_level": "low", "limit": 5000}
    assert decision.decision == "approve"
    assert decision.confidence == 0.92
    assert decision.rationale == "long-standing customer"
    assert decision.latency_ms > 0
    (fetched,) = decision.data_considered
    assert fetched["method"] == "GET"
    assert fetched["status"] == 200
    assert fetched["url"] == f"{http_service.url}/api/customers/42"  # no query string
    request = http_service.requests[0]
    assert request.query == {"lang": "en"}
    assert request.headers["authorization"] == f"Bearer {SECRET}"
    assert SECRET not in str(decision.as_body())


def test_a_post_sends_the_rendered_body_with_inputs_json_encoded(http_service):
    http_service.route("POST", "/api/score", Reply(json=ANSWER))
    config = {
        **CONFIG,
        "method": "POST",
        "path_template": "/score",
        "body_template": '{"id": "{{ customer_id }}", "name": "{{ name }}", '
        '"amount": {{ amount }}, "all": {{ input | tojson }}}',
    }
    tricky = 'Bob "the" {builder}\n", "admin": true, "x": "'
    run(agent(http_service, config), {"customer_id": "42", "name": tricky, "amount": 12.5})
    body = http_service.requests[0].json()
    assert body["name"] == tricky
    assert body["amount"] == 12.5
    assert "admin" not in body
    assert body["all"]["customer_id"] == "42"
    assert http_service.requests[0].headers["content-type"] == "application/json"


def test_path_values_are_url_encoded_and_cannot_add_segments_or_a_query(http_service):
    http_service.route("GET", "/api/customers/a%2Fadmin%3Fx%3D1%23y", Reply(json=ANSWER))
    run(agent(http_service), {"customer_id": "a/admin?x=1#y"})
    assert http_service.requests[0].path == "/api/customers/a%2Fadmin%3Fx%3D1%23y"
    assert http_service.requests[0].query == {}


@pytest.mark.parametrize("value", ["..", ".", "a/../../admin"])
def test_a_dot_segment_value_in_the_path_is_refused_before_sending(http_service, value):
    with pytest.raises(OutOfScope) as out:
        run(agent(http_service), {"customer_id": value})
    assert out.value.details["reason"] == "refused"
    assert http_service.count == 0


def test_an_optional_input_guarded_in_the_template_may_be_left_out(http_service):
    http_service.route("GET", "/api/customers/42", Reply(json=ANSWER))
    config = {
        **CONFIG,
        "query": {"lang": "{% if language is defined %}{{ language }}{% else %}en{% endif %}"},
    }
    run(agent(http_service, config), {"customer_id": "42"})
    assert http_service.requests[0].query == {"lang": "en"}


def test_without_decision_and_confidence_pointers_the_decision_is_just_the_mapping(
    http_service,
):
    http_service.route("GET", "/api/customers/42", Reply(json={"risk": {"level": "high"}}))
    config = {"connection_id": 7, "path_template": "/customers/{{ customer_id }}"}
    config["response_mapping"] = {"risk_level": "/risk/level"}
    decision = run(agent(http_service, config, threshold=0.9), {"customer_id": "42"})
    assert decision.output == {"risk_level": "high"}
    assert (decision.decision, decision.confidence) == (None, None)
    assert "CRM" in decision.rationale


# --- the taxonomy ----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 503, 429])
def test_5xx_and_rate_limits_are_system_unavailable(http_service, status):
    http_service.route("GET", "/api/customers/42", Reply(status=status, json={}))
    with pytest.raises(SystemUnavailable) as unavailable:
        run(agent(http_service), {"customer_id": "42"})
    assert unavailable.value.status == status
    assert unavailable.value.retryable


def test_a_slow_service_is_system_unavailable_within_the_agents_time_limit(http_service):
    http_service.route("GET", "/api/customers/42", Reply(delay=3, json=ANSWER))
    started = time.monotonic()
    with pytest.raises(SystemUnavailable, match="did not answer"):
        run(agent(http_service, timeout=0.5, timeout_seconds=30), {"customer_id": "42"})
    assert time.monotonic() - started < 1.5


def test_a_closed_port_is_system_unavailable(make_service):
    service = make_service()
    service.stop()
    with pytest.raises(SystemUnavailable, match="connection refused"):
        run(agent(service), {"customer_id": "42"})


def test_a_declared_failure_status_is_out_of_scope(http_service):
    http_service.route("GET", "/api/customers/42", Reply(status=404, json={"error": "unknown"}))
    with pytest.raises(OutOfScope) as out:
        run(agent(http_service), {"customer_id": "42"})
    assert out.value.details["reason"] == "declined"
    assert out.value.details["status"] == 404
    assert "unknown" in out.value.details["excerpt"]


def test_a_declared_failure_value_is_out_of_scope(http_service):
    http_service.route("GET", "/api/customers/42", Reply(json={**ANSWER, "status": "declined"}))
    with pytest.raises(OutOfScope) as out:
        run(agent(http_service), {"customer_id": "42"})
    assert out.value.details["reason"] == "declined"
    assert out.value.details["pointer"] == "/status"


def test_an_undeclared_4xx_is_out_of_scope(http_service):
    http_service.route("GET", "/api/customers/42", Reply(status=401, json={"error": "token"}))
    with pytest.raises(OutOfScope) as out:
        run(agent(http_service), {"customer_id": "42"})
    assert out.value.details["reason"] == "unexpected_status"


def test_an_answer_that_is_not_json_is_out_of_scope(http_service):
    http_service.route("GET", "/api/customers/42", Reply(body="<html>maintenance</html>"))
    with pytest.raises(OutOfScope) as out:
        run(agent(http_service), {"customer_id": "42"})
    assert out.value.details["reason"] == "not_json"
    assert "maintenance" in out.value.details["excerpt"]


def test_a_missing_required_output_is_out_of_scope_naming_it(http_service):
    answer = {k: v for k, v in ANSWER.items() if k != "risk"}
    http_service.route("GET", "/api/customers/42", Reply(json=answer))
    with pytest.raises(OutOfScope) as out:
        run(agent(http_service), {"customer_id": "42"})
    assert out.value.details["reason"] == "response_does_not_fit"
    assert out.value.details["missing"] == ["risk_level"]
    assert out.value.details["pointers_not_found"] == ["/risk/level"]


def test_a_value_that_does_not_fit_its_output_field_is_out_of_scope(http_service):
    http_service.route(
        "GET", "/api/customers/42", Reply(json={**ANSWER, "risk": {"level": "extreme"}})
    )
    with pytest.raises(OutOfScope) as out:
        run(agent(http_service), {"customer_id": "42"})
    assert "risk_level" in out.value.details["invalid"]


@pytest.mark.parametrize("score", [1.5, -0.1, "high", True, None])
def test_a_confidence_outside_0_to_1_is_out_of_scope(http_service, score):
    http_service.route("GET", "/api/customers/42", Reply(json={**ANSWER, "score": score}))
    with pytest.raises(OutOfScope) as out:
        run(agent(http_service), {"customer_id": "42"})
    assert "confidence" in out.value.details["invalid"]


def test_a_missing_decision_is_out_of_scope(http_service):
    answer = {k: v for k, v in ANSWER.items() if k != "decision"}
    http_service.route("GET", "/api/customers/42", Reply(json=answer))
    with pytest.raises(OutOfScope) as out:
        run(agent(http_service), {"customer_id": "42"})
    assert out.value.details["missing"] == ["decision"]


def test_a_confidence_under_the_threshold_is_low_confidence(http_service):
    http_service.route("GET", "/api/customers/42", Reply(json={**ANSWER, "score": 0.4}))
    with pytest.raises(LowConfidence) as low:
        run(agent(http_service, threshold=0.8), {"customer_id": "42"})
    assert low.value.confidence == 0.4
    assert low.value.options[0]["decision"] == "approve"


def test_bad_input_is_data_missing(http_service):
    with pytest.raises(DataMissing) as missing:
        run(agent(http_service), {"amount": "lots"})
    assert missing.value.missing == ["customer_id"]
    assert "amount" in missing.value.invalid
    assert http_service.count == 0


def test_an_optional_input_the_template_needs_is_data_missing_naming_it(http_service):
    config = {**CONFIG, "query": {"lang": "{{ language }}"}}
    with pytest.raises(DataMissing) as missing:
        run(agent(http_service, config), {"customer_id": "42"})
    assert missing.value.missing == ["language"]
    assert http_service.count == 0


def test_a_connection_not_marked_internal_is_refused_and_nothing_is_sent(http_service):
    http_service.route("GET", "/api/customers/42", Reply(json=ANSWER))
    with pytest.raises(OutOfScope) as out:
        run(agent(http_service, allow_internal=False), {"customer_id": "42"})
    assert out.value.details["reason"] == "refused"
    assert "loopback" in out.value.message
    assert http_service.count == 0


def test_a_connection_the_caller_did_not_resolve_is_out_of_scope():
    with pytest.raises(OutOfScope) as out:
        run(agent(None), {"customer_id": "42"})
    assert out.value.details == {"reason": "connection_missing", "connection_id": "7"}


def test_an_oversized_answer_is_out_of_scope_naming_the_cap(http_service):
    http_service.route("GET", "/api/customers/42", Reply(body=b"[" + b"1," * 1_100_000 + b"1]"))
    with pytest.raises(OutOfScope) as out:
        run(agent(http_service), {"customer_id": "42"})
    assert out.value.details["reason"] == "response_too_large"
    assert "2 MiB" in out.value.message


def test_the_secret_is_never_in_an_escalations_context(http_service):
    def echo(request):
        return Reply(status=400, json={"you_sent": request.headers})

    http_service.route("GET", "/api/customers/42", echo)
    with pytest.raises(OutOfScope) as out:
        run(agent(http_service), {"customer_id": "42"})
    assert "[redacted]" in out.value.details["excerpt"]
    assert SECRET not in str(out.value.context())


def test_a_sandbox_escape_in_a_template_is_refused_at_render(http_service):
    config = {**CONFIG, "query": {"x": "{{ customer_id|attr('__class__') }}"}}
    with pytest.raises(OutOfScope) as out:
        run(agent(http_service, config), {"customer_id": "42"})
    assert out.value.details["reason"] == "template_refused"
    assert "unsafe" in out.value.message
    assert http_service.count == 0


# --- config validation -----------------------------------------------------------------------


def test_validation_returns_the_normalised_config():
    config = validate({**CONFIG, "method": "get", "connection_id": 7})
    assert config["method"] == "GET"
    assert config["connection_id"] == "7"
    assert config["failure"] == {"status_codes": [404], "pointer": "/status", "equals": "declined"}
    assert config["body_template"] == ""
    assert config["query"] == {}


@pytest.mark.parametrize(
    ("change", "path", "problem"),
    [
        ({"connection_id": ""}, "connection_id", "choose a connection"),
        ({"method": "TRACE"}, "method", "one of GET"),
        ({"path_template": "customers"}, "path_template", "single /"),
        ({"path_template": "//evil.example/x"}, "path_template", "single /"),
        ({"path_template": "/x#frag"}, "path_template", "a path only"),
        ({"path_template": "/c/{{ customer_id "}, "path_template", "line 1"),
        ({"path_template": "/c/{{ nobody }}"}, "path_template", "unknown variable 'nobody'"),
        ({"path_template": "/c/{{ ''.__class__ }}"}, "path_template", "'__class__' is not"),
        ({"path_template": "/c/{{ input['__init__'] }}"}, "path_template", "not allowed"),
        ({"query": {"q": "{% for %}"}}, "query.q", "line 1"),
        ({"query": ["q"]}, "query", "an object"),
        ({"body_template": '{"a": 1}'}, "body_template", "a GET request has no body"),
        ({"method": "POST", "body_template": '{\n"a": 1,\n{{ x'}, "body_template", "line 3"),
        ({"method": "POST", "body_template": '{"a": {{ name }}}'}, "body_template", "not JSON"),
        ({"response_mapping": {"score": "/s"}}, "response_mapping.score", "not an output field"),
        ({"response_mapping": {"limit": "/l"}}, "response_mapping", "'risk_level' has no"),
        ({"response_mapping": {"risk_level": "risk"}}, "response_mapping.risk_level", "RFC 6901"),
        ({"response_mapping": {"risk_level": "/a~2"}}, "response_mapping.risk_level", "~"),
        ({"decision_pointer": "decision"}, "decision_pointer", "RFC 6901"),
        ({"failure": {"status_codes": [503]}}, "failure.status_codes", "5xx is always"),
        ({"failure": {"status_codes": ["404"]}}, "failure.status_codes", "a number"),
        ({"failure": {"pointer": "/status"}}, "failure.equals", "declined"),
        ({"failure": {"when": 1}}, "failure.when", "unknown setting"),
        ({"headers": {"X": "1"}}, "headers", "unknown setting"),
    ],
)
def test_a_config_error_names_its_path(change, path, problem):
    with pytest.raises(ConfigError) as error:
        validate({**CONFIG, **change})
    assert error.value.path == path
    assert problem in error.value.problem


def test_a_body_that_depends_on_a_json_inputs_shape_is_checked_when_it_runs():
    inputs = [{"name": "customer", "type": "json"}]
    config = {**CONFIG, "method": "POST", "path_template": "/customers"}
    config["body_template"] = '{"id": {{ customer.id }}}'
    assert registry.validate_config("http", config, input_fields=inputs, output_fields=OUTPUTS)


# --- JSON pointers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pointer", "expected"),
    [
        ("", {"a/b": 1, "m~n": 2, "list": [10, 20], "": 3}),
        ("/a~1b", 1),
        ("/m~0n", 2),
        ("/list/1", 20),
        ("/", 3),
    ],
)
def test_json_pointers_resolve_as_rfc_6901_says(pointer, expected):
    document = {"a/b": 1, "m~n": 2, "list": [10, 20], "": 3}
    assert jsonpointer.resolve(document, pointer) == expected


@pytest.mark.parametrize("pointer", ["/list/01", "/list/-", "/list/2", "/nope", "/a~1b/x"])
def test_json_pointers_to_nothing_are_missing(pointer):
    with pytest.raises(jsonpointer.Missing):
        jsonpointer.resolve({"a/b": 1, "list": [10, 20]}, pointer)
