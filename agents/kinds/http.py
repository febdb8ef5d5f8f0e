"""The http kind: call a REST endpoint through a Connection and map its JSON answer.

Config::

    {"connection_id": "7", "method": "POST", "path_template": "/customers/{{ customer_id }}",
     "query": {"lang": "{{ language }}"},                      # optional
     "body_template": '{"amount": {{ amount }}, "name": "{{ name }}"}',   # optional
     "response_mapping": {"risk_level": "/risk/level"},        # output field -> JSON pointer
     "decision_pointer": "/decision", "confidence_pointer": "/score",
     "rationale_pointer": "/explanation",                      # all three optional
     "failure": {"status_codes": [404, 422], "pointer": "/status", "equals": "declined"}}

Templates are sandboxed (agents.kinds.templating) and may use the input fields (and ``input``,
all of them): values in the path are URL-encoded, values in the body JSON-encoded, so an input
cannot change the request's shape. The rendered body must be JSON.

What a failure becomes (DESIGN.md's taxonomy):

* timeout, connection error, 5xx, 429, 408, the agent's time limit: SystemUnavailable.
* an optional input the templates need left empty: DataMissing, the field named.
* a declared failure (a status code in ``failure.status_codes``, or the value at
  ``failure.pointer`` equal to ``failure.equals``): OutOfScope, reason "declined".
* any other non-2xx answer: OutOfScope, reason "unexpected_status".
* an answer that is not JSON, or lacks a mapped output, decision or confidence, or whose values
  do not fit the output fields: OutOfScope ("not_json", "response_does_not_fit"). DataMissing
  is kept for the agent's own input; a service whose answer does not cover the case is out of
  scope, and retrying would give the same answer.
* a destination the outbound door refuses, an oversized answer, unusable credentials:
  OutOfScope with the door's reason.
"""

from __future__ import annotations

import json

from agents.engine.taxonomy import DataMissing, OutOfScope
from agents.fields import Field, parse_fields, validate_values
from agents.kinds import calls, jsonpointer, templating
from agents.kinds.base import AgentSpec, Decision
from agents.kinds.config import ConfigError

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
KEYS = (
    "connection_id",
    "method",
    "path_template",
    "query",
    "body_template",
    "response_mapping",
    "decision_pointer",
    "confidence_pointer",
    "rationale_pointer",
    "failure",
)
MAX_QUERY_PARAMS = 50
EXCERPT = 500
SAMPLE_VALUES = {
    "text": "sample",
    "number": 1,
    "boolean": True,
    "date": "2024-01-31",
    "json": {},
}


def as_fields(fields, path: str) -> list[Field]:
    fields = list(fields or [])
    if all(isinstance(f, Field) for f in fields):
        return fields
    return parse_fields(fields, path)


def connection_id(value, path: str = "connection_id") -> str:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or str(value).strip() == "":
        raise ConfigError(path, "choose a connection")
    value = str(value).strip()
    if len(value) > 64:
        raise ConfigError(path, "at most 64 characters")
    return value


def pointer(value, path: str) -> str:
    if value is None or value == "":
        return ""
    try:
        jsonpointer.parse(value)
    except jsonpointer.PointerError as exc:
        raise ConfigError(path, f"not a JSON pointer (RFC 6901): {exc}") from None
    return value


def path_template(value, path: str, variables) -> str:
    value = value or ""
    if not isinstance(value, str):
        raise ConfigError(path, "must be text")
    if value and (not value.startswith("/") or value.startswith("//")):
        raise ConfigError(path, "must start with a single / (it is appended to the base URL)")
    if "#" in value or "://" in value:
        raise ConfigError(path, "a path only: no '#', no scheme or host")
    templating.compile_template(value, path=path, mode="url", variables=variables)
    return value


def sample_inputs(fields: list[Field]) -> dict:
    values = {}
    for field in fields:
        values[field.name] = (
            field.choices[0] if field.type == "choice" else SAMPLE_VALUES[field.type]
        )
    return {**values, "input": values}


def validate_config(config, *, input_fields, output_fields) -> dict:
    inputs = as_fields(input_fields, "input_fields")
    outputs = as_fields(output_fields, "output_fields")
    if not isinstance(config, dict):
        raise ConfigError("config", "must be an object")
    for key in config:
        if key not in KEYS:
            raise ConfigError(
                str(key)[:60], f"unknown setting; an http agent has {', '.join(KEYS)}"
            )
    variables = {f.name for f in inputs} | {"input"}
    method = str(config.get("method") or "GET").upper()
    if method not in METHODS:
        raise ConfigError("method", f"one of {', '.join(METHODS)}")
    normalised = {
        "connection_id": connection_id(config.get("connection_id")),
        "method": method,
        "path_template": path_template(config.get("path_template"), "path_template", variables),
        "query": _query(config.get("query"), variables),
        "body_template": _body(config.get("body_template"), method, variables, inputs),
        "response_mapping": _mapping(config.get("response_mapping"), outputs),
    }
    for key in ("decision_pointer", "confidence_pointer", "rationale_pointer"):
        normalised[key] = pointer(config.get(key), key)
    normalised["failure"] = _failure(config.get("failure"))
    return normalised


def _query(query, variables) -> dict:
    if query in (None, ""):
        return {}
    if not isinstance(query, dict):
        raise ConfigError("query", "an object of parameter name -> template")
    if len(query) > MAX_QUERY_PARAMS:
        raise ConfigError("query", f"at most {MAX_QUERY_PARAMS} parameters")
    for name, template in query.items():
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise ConfigError("query", "parameter names are non-empty text of at most 100 chars")
        templating.compile_template(template, path=f"query.{name}", variables=variables)
    return dict(query)


def _body(body, method, variables, inputs) -> str:
    if body in (None, ""):
        return ""
    if method == "GET":
        raise ConfigError("body_template", "a GET request has no body: use query instead")
    template = templating.compile_template(
        body, path="body_template", mode="json", variables=variables
    )
    # Rendered with sample inputs, the body must already be JSON: a missing quote or comma
    # is shown on save, not at the first run.
    try:
        text = templating.render(template, sample_inputs(inputs))
    except (templating.TemplateMissing, templating.TemplateRefused):
        return body  # depends on the shape of a JSON input: checked when it runs
    try:
        json.loads(text)
    except ValueError as exc:
        raise ConfigError(
            "body_template", f"renders text that is not JSON ({exc.msg} at line {exc.lineno})"
        ) from None
    return body


def _mapping(mapping, outputs: list[Field]) -> dict:
    if mapping in (None, ""):
        mapping = {}
    if not isinstance(mapping, dict):
        raise ConfigError("response_mapping", "an object of output field -> JSON pointer")
    names = {f.name for f in outputs}
    for name, value in mapping.items():
        if name not in names:
            raise ConfigError(f"response_mapping.{name}"[:80], "not an output field of this agent")
        pointer(value, f"response_mapping.{name}")
        if not isinstance(value, str):
            raise ConfigError(f"response_mapping.{name}", "a JSON pointer such as /data/risk")
    for field in outputs:
        if field.required and field.name not in mapping:
            raise ConfigError(
                "response_mapping", f"the required output field {field.name!r} has no pointer"
            )
    return dict(mapping)


def _failure(failure) -> dict:
    if failure in (None, ""):
        return {"status_codes": []}
    if not isinstance(failure, dict):
        raise ConfigError("failure", "an object: status_codes, pointer and equals")
    for key in failure:
        if key not in ("status_codes", "pointer", "equals"):
            raise ConfigError(f"failure.{str(key)[:40]}", "unknown setting")
    codes = failure.get("status_codes") or []
    if not isinstance(codes, list):
        raise ConfigError("failure.status_codes", "a list of HTTP status codes")
    for code in codes:
        if isinstance(code, bool) or not isinstance(code, int):
            raise ConfigError("failure.status_codes", "each status code is a number")
        if not (200 <= code < 300 or 400 <= code < 500):
            raise ConfigError(
                "failure.status_codes",
                f"{code}: only 2xx and 4xx (5xx is always 'system unavailable', "
                "and redirects are never followed)",
            )
    normalised = {"status_codes": sorted(set(codes))}
    path = pointer(failure.get("pointer"), "failure.pointer")
    if path:
        if "equals" not in failure:
            raise ConfigError("failure.equals", "the value that means the service declined")
        normalised["pointer"] = path
        normalised["equals"] = failure["equals"]
    return normalised


# --- execution -------------------------------------------------------------------------------


def render(source: str, mode: str, values: dict, path: str) -> str:
    """A template of the config rendered over the inputs, as taxonomy exceptions if not."""
    try:
        template = templating.compile_template(source, path=path, mode=mode)
        return templating.render(template, values)
    except ConfigError as exc:
        raise OutOfScope(
            f"the agent's {exc.path} is invalid: {exc.problem}",
            details={"reason": "config_invalid", "path": exc.path},
        ) from None
    except templating.TemplateMissing as exc:
        raise DataMissing(f"{path}: {exc}", missing=exc.names) from None
    except templating.TemplateRefused as exc:
        raise OutOfScope(
            f"{path}: {exc}", details={"reason": "template_refused", "path": path}
        ) from None


class HttpExecutor:
    def execute(self, spec: AgentSpec, inputs: dict) -> Decision:
        config = spec.config
        budget = calls.Budget(spec.timeout_seconds)
        connection = calls.connection_for(spec, config.get("connection_id"))
        method = config.get("method", "GET")
        values = {**inputs, "input": inputs}
        path = render(config.get("path_template") or "", "url", values, "path_template")
        query = {
            name: render(source, "text", values, f"query.{name}")
            for name, source in (config.get("query") or {}).items()
        }
        body = None
        if config.get("body_template"):
            text = render(config["body_template"], "json", values, "body_template")
            try:
                body = json.loads(text)
            except ValueError as exc:
                raise OutOfScope(
                    f"the rendered body is not JSON ({exc.msg})",
                    details={"reason": "body_not_json", "excerpt": text[:EXCERPT]},
                ) from None
        response = calls.request(
            connection, method, path, budget=budget, query=query or None, json=body
        )
        fetched = calls.considered(connection, method, response)
        document = _document(response, config, fetched)
        return _decision(spec, config, document, fetched, connection.name)


def _details(reason: str, response, **extra) -> dict:
    return {
        "reason": reason,
        "url": response.url,
        "status": response.status,
        "excerpt": response.text(EXCERPT),
        **extra,
    }


def _document(response, config: dict, fetched: dict):
    failure = config.get("failure") or {}
    status = response.status
    if status in failure.get("status_codes", []):
        raise OutOfScope(
            f"{response.url} answered {status}, which this agent treats as declined",
            details=_details("declined", response),
        )
    if not 200 <= status < 300:
        raise OutOfScope(
            f"{response.url} answered {status}", details=_details("unexpected_status", response)
        )
    try:
        document = response.json()
    except ValueError:
        raise OutOfScope(
            f"the answer of {response.url} is not JSON", details=_details("not_json", response)
        ) from None
    if failure.get("pointer"):
        try:
            value = jsonpointer.resolve(document, failure["pointer"])
        except jsonpointer.Missing:
            pass
        else:
            if _same(value, failure.get("equals")):
                raise OutOfScope(
                    f"the service declined: {failure['pointer']} is {json.dumps(value)[:100]}",
                    details=_details("declined", response, pointer=failure["pointer"]),
                )
    return document


def _same(a, b) -> bool:
    """JSON equality: true is not 1, 1 is 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def _decision(spec: AgentSpec, config: dict, document, fetched: dict, source: str) -> Decision:
    mapped, unmapped = {}, []
    for name, path in (config.get("response_mapping") or {}).items():
        try:
            mapped[name] = jsonpointer.resolve(document, path)
        except jsonpointer.Missing:
            unmapped.append(path)
    problems = {"missing": [], "invalid": {}}
    try:
        output = validate_values(spec.output_fields, mapped, what="response")
    except DataMissing as exc:
        output = {}
        problems = {"missing": exc.missing, "invalid": exc.invalid}
    decision = rationale = confidence = None
    if config.get("decision_pointer"):
        decision = _scalar(document, config["decision_pointer"], "decision", problems)
    if config.get("rationale_pointer"):
        rationale = _scalar(document, config["rationale_pointer"], "rationale", problems)
    if config.get("confidence_pointer"):
        confidence = _confidence(document, config["confidence_pointer"], problems)
    if problems["missing"] or problems["invalid"]:
        parts = []
        if problems["missing"]:
            parts.append("missing " + ", ".join(problems["missing"]))
        parts += [f"{name}: {problem}" for name, problem in problems["invalid"].items()]
        raise OutOfScope(
            f"the answer of {fetched['url']} does not fit the agent: " + "; ".join(parts),
            details={
                "reason": "response_does_not_fit",
                "url": fetched["url"],
                "status": fetched["status"],
                "missing": problems["missing"],
                "invalid": problems["invalid"],
                "pointers_not_found": unmapped,
            },
        )
    return Decision(
        output=output,
        decision=decision,
        rationale=rationale or f"answer of {source} ({fetched['method']} {fetched['url']})",
        confidence=confidence,
        data_considered=[fetched],
    )


def _scalar(document, path: str, name: str, problems: dict):
    try:
        value = jsonpointer.resolve(document, path)
    except jsonpointer.Missing:
        problems["missing"].append(name)
        return None
    if value is None or isinstance(value, (dict, list)):
        problems["invalid"][name] = f"expected text at {path}"
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _confidence(document, path: str, problems: dict):
    try:
        value = jsonpointer.resolve(document, path)
    except jsonpointer.Missing:
        problems["missing"].append("confidence")
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
    except (TypeError, ValueError):
        problems["invalid"]["confidence"] = f"expected a number from 0 to 1 at {path}"
        return None
    if not 0.0 <= number <= 1.0:
        problems["invalid"]["confidence"] = f"{number:g} at {path} is not from 0 to 1"
        return None
    return number


EXECUTOR = HttpExecutor()
