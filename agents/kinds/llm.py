"""The llm kind: an OpenAI-compatible chat-completions endpoint answers, in JSON.

Config::

    {"connection_id": "3", "model": "gpt-4o-mini" (optional: the connection's default),
     "temperature": 0.2 (optional), "system_prompt": "You assess ...",
     "user_prompt_template": "Customer {{ name }} asks for {{ amount }} EUR.",
     "tools": [{"name": "lookup_customer", "description": "...", "connection_id": "9",
                "method": "GET", "path_template": "/customers/{{ customer_id }}",
                "parameters": {"type": "object", "properties": {"customer_id": {...}},
                               "required": ["customer_id"]}}],
     "max_tool_rounds": 3}

One execution: POST {base_url}/chat/completions with the system prompt (plus a generated
description of the JSON answer wanted: decision, rationale, confidence from 0 to 1 and the
output fields) and the user prompt rendered in the sandbox (agents.kinds.templating: the input
fields as values, no access to Python objects), ``response_format: {"type": "json_object"}``
and the tools as function definitions. While the model asks for tools (at most
``max_tool_rounds`` rounds), each call's arguments are checked against the tool's JSON schema
and the tool is called through agents.outbound on its own connection; its answer (scrubbed of
secrets) is fed back. Every call is recorded in Decision.tool_calls (name, arguments, status,
latency; never a header or secret).

What a failure becomes:

* timeout, connection refused, 5xx, 429 of the model endpoint or of a tool, the agent's time
  limit: SystemUnavailable (the engine retries with backoff). A tool that is down is not
  papered over: a decision made without the data it should have considered is worse than a
  late one.
* an answer that is not a JSON object, or lacks decision, rationale, confidence (0..1) or a
  required output field, or whose values do not fit the output fields: the model is told what
  was wrong and asked once more (one repair round, as models often fix a missing comma or key
  when told); if the second answer is unusable too, OutOfScope with reason "unusable_answer",
  the problems and an excerpt of the raw answer. Not DataMissing: that names the agent's own
  input, which was fine.
* a tool call with arguments that fail its schema, an unknown tool, a tool answering 4xx or
  refused by the outbound door: fed back to the model as the tool's result, so it can correct
  itself or answer without; recorded with that status.
* the model still asking for tools after ``max_tool_rounds`` rounds: OutOfScope.
* a 4xx of the model endpoint (wrong key, unknown model), an answer not in the
  chat-completions format, a refused destination: OutOfScope with the reason.
* an optional input the prompt needs left empty: DataMissing naming it.
* confidence under the agent's threshold: LowConfidence, applied by `base.run`.
"""

from __future__ import annotations

import json
import re
import time

from jsonschema import exceptions as schema_errors
from jsonschema import validators

from agents import outbound
from agents.engine.taxonomy import DataMissing, OutOfScope, StepFailure
from agents.fields import Field, validate_values
from agents.kinds import calls, templating
from agents.kinds.base import AgentSpec, Decision
from agents.kinds.config import ConfigError
from agents.kinds.http import METHODS, as_fields, connection_id, path_template, render

KEYS = (
    "connection_id",
    "model",
    "temperature",
    "system_prompt",
    "user_prompt_template",
    "tools",
    "max_tool_rounds",
)
TOOL_KEYS = ("name", "description", "connection_id", "method", "path_template", "parameters")
TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_TOOLS = 16
MAX_TOOL_ROUNDS = 10
DEFAULT_TOOL_ROUNDS = 3
MAX_PROMPT = templating.MAX_SOURCE
MAX_REPAIRS = 1
MAX_TOOL_RESULT = 20_000  # characters of a tool's answer fed back to the model
TOOL_MAX_BYTES = 512 * 1024
EXCERPT = 500
FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)
TYPE_WORDS = {
    "text": "text",
    "number": "number",
    "boolean": "true or false",
    "date": "date as YYYY-MM-DD",
    "json": "any JSON value",
}


# --- configuration ---------------------------------------------------------------------------


def validate_config(config, *, input_fields, output_fields) -> dict:
    inputs = as_fields(input_fields, "input_fields")
    as_fields(output_fields, "output_fields")
    if not isinstance(config, dict):
        raise ConfigError("config", "must be an object")
    for key in config:
        if key not in KEYS:
            raise ConfigError(str(key)[:60], f"unknown setting; an llm agent has {', '.join(KEYS)}")
    model = config.get("model") or ""
    if not isinstance(model, str) or len(model) > 200:
        raise ConfigError("model", "a model name of at most 200 characters")
    system_prompt = config.get("system_prompt") or ""
    if not isinstance(system_prompt, str) or len(system_prompt) > MAX_PROMPT:
        raise ConfigError("system_prompt", f"text of at most {MAX_PROMPT} characters")
    user_prompt = config.get("user_prompt_template") or ""
    if not isinstance(user_prompt, str) or not user_prompt.strip():
        raise ConfigError("user_prompt_template", "write the prompt, with the inputs it needs")
    variables = {f.name for f in inputs} | {"input"}
    templating.compile_template(user_prompt, path="user_prompt_template", variables=variables)
    tools = _tools(config.get("tools"))
    rounds = config.get("max_tool_rounds")
    if rounds in (None, ""):
        rounds = DEFAULT_TOOL_ROUNDS
    if (
        isinstance(rounds, bool)
        or not isinstance(rounds, int)
        or not 0 <= rounds <= MAX_TOOL_ROUNDS
    ):
        raise ConfigError("max_tool_rounds", f"a whole number from 0 to {MAX_TOOL_ROUNDS}")
    return {
        "connection_id": connection_id(config.get("connection_id")),
        "model": model.strip(),
        "temperature": _temperature(config.get("temperature")),
        "system_prompt": system_prompt,
        "user_prompt_template": user_prompt,
        "tools": tools,
        "max_tool_rounds": rounds,
    }


def _temperature(value):
    if value in (None, ""):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 2:
        raise ConfigError("temperature", "a number from 0 to 2")
    return float(value)


def _tools(tools) -> list[dict]:
    if tools in (None, ""):
        return []
    if not isinstance(tools, list):
        raise ConfigError("tools", "a list of tools")
    if len(tools) > MAX_TOOLS:
        raise ConfigError("tools", f"at most {MAX_TOOLS} tools")
    normalised, names = [], set()
    for index, tool in enumerate(tools):
        where = f"tools[{index}]"
        if not isinstance(tool, dict):
            raise ConfigError(where, "an object: name, description, connection, method, path")
        for key in tool:
            if key not in TOOL_KEYS:
                raise ConfigError(f"{where}.{str(key)[:40]}", "unknown setting")
        name = tool.get("name")
        if not isinstance(name, str) or not TOOL_NAME.match(name):
            raise ConfigError(f"{where}.name", "letters, digits, _ and -, at most 64")
        if name in names:
            raise ConfigError(f"{where}.name", f"{name!r} appears twice")
        names.add(name)
        description = tool.get("description")
        if not isinstance(description, str) or not description.strip() or len(description) > 1024:
            raise ConfigError(
                f"{where}.description", "tell the model what the tool does (at most 1024 chars)"
            )
        method = str(tool.get("method") or "GET").upper()
        if method not in METHODS:
            raise ConfigError(f"{where}.method", f"one of {', '.join(METHODS)}")
        parameters = _parameters(tool.get("parameters"), f"{where}.parameters")
        normalised.append(
            {
                "name": name,
                "description": description.strip(),
                "connection_id": connection_id(tool.get("connection_id"), f"{where}.connection_id"),
                "method": method,
                "path_template": path_template(
                    tool.get("path_template"),
                    f"{where}.path_template",
                    set(parameters.get("properties", {})),
                ),
                "parameters": parameters,
            }
        )
    return normalised


def _parameters(schema, path: str) -> dict:
    if schema in (None, ""):
        schema = {"type": "object", "properties": {}}
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise ConfigError(path, 'a JSON schema of type "object"')
    if not isinstance(schema.get("properties", {}), dict):
        raise ConfigError(f"{path}.properties", "an object of parameter name -> schema")
    try:
        validators.validator_for(schema).check_schema(schema)
    except schema_errors.SchemaError as exc:
        where = "/".join(str(p) for p in exc.path)
        raise ConfigError(
            path, f"not a valid JSON schema ({where or 'top'}: {exc.message})"
        ) from None
    return schema


# --- execution -------------------------------------------------------------------------------


def answer_instructions(output_fields: list[Field]) -> str:
    lines = [
        "Answer with a single JSON object and nothing else, with these keys:",
        '- "decision" (text): your decision',
        '- "rationale" (text): why, in a few sentences',
        '- "confidence" (number from 0 to 1): how sure you are of the decision',
    ]
    for field in output_fields:
        kind = (
            "one of: " + ", ".join(field.choices)
            if field.type == "choice"
            else TYPE_WORDS[field.type]
        )
        need = "required" if field.required else "optional"
        description = f": {field.description}" if field.description else ""
        lines.append(f'- "{field.name}" ({kind}; {need}){description}')
    return "\n".join(lines)


class _Chat:
    """One execution's conversation with the model, and what it recorded."""

    def __init__(self, spec: AgentSpec, inputs: dict):
        config = spec.config
        self.spec = spec
        self.budget = calls.Budget(spec.timeout_seconds)
        self.connection = calls.connection_for(spec, config.get("connection_id"))
        self.model = config.get("model") or self.connection.model
        if not self.model:
            raise OutOfScope(
                "no model is named, by the agent or by its connection",
                details={"reason": "no_model", "connection_id": self.connection.id},
            )
        prompt = render(
            config.get("user_prompt_template") or "",
            "text",
            {**inputs, "input": inputs},
            "user_prompt_template",
        )
        system = "\n\n".join(
            p for p in (config.get("system_prompt"), answer_instructions(spec.output_fields)) if p
        )
        self.messages = [
            {"role": "system", "content": system},
            {"role": "user", "content": prompt},
        ]
        self.tools = {tool["name"]: tool for tool in config.get("tools") or []}
        self.max_rounds = config.get("max_tool_rounds", DEFAULT_TOOL_ROUNDS)
        self.tool_calls: list[dict] = []
        self.considered: list[dict] = []
        self.used_model = self.model

    def payload(self) -> dict:
        payload = {
            "model": self.model,
            "messages": self.messages,
            "response_format": {"type": "json_object"},
        }
        temperature = self.spec.config.get("temperature")
        if temperature is not None:
            payload["temperature"] = temperature
        if self.tools:
            payload["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": tool["name"],
                        "description": tool["description"],
                        "parameters": tool["parameters"],
                    },
                }
                for tool in self.tools.values()
            ]
        return payload

    def complete(self) -> dict:
        """One chat completion: the assistant's message."""
        response = calls.request(
            self.connection, "POST", "/chat/completions", budget=self.budget, json=self.payload()
        )
        if not 200 <= response.status < 300:
            raise OutOfScope(
                f"the model endpoint {response.url} answered {response.status}",
                details={
                    "reason": "model_endpoint_error",
                    "status": response.status,
                    "excerpt": response.text(EXCERPT),
                },
            )
        try:
            data = response.json()
            message = data["choices"][0]["message"]
            if not isinstance(message, dict):
                raise TypeError
        except (ValueError, KeyError, IndexError, TypeError):
            raise OutOfScope(
                f"{response.url} did not answer in the chat-completions format",
                details={"reason": "not_chat_completion", "excerpt": response.text(EXCERPT)},
            ) from None
        if isinstance(data.get("model"), str) and data["model"]:
            self.used_model = data["model"][:200]
        extra = {"model": self.used_model}
        if isinstance(data.get("usage"), dict):
            extra["usage"] = {
                k: v
                for k, v in data["usage"].items()
                if isinstance(v, int) and k.endswith("tokens")
            }
        self.considered.append(calls.considered(self.connection, "POST", response, **extra))
        return message

    def run(self) -> Decision:
        rounds = repairs = 0
        while True:
            message = self.complete()
            requested = message.get("tool_calls") or []
            if requested:
                if not self.tools or rounds >= self.max_rounds:
                    raise OutOfScope(
                        f"the model still asked for tools after {rounds} round(s) "
                        f"(at most {self.max_rounds})",
                        details={"reason": "tool_rounds_exhausted", "tool_calls": self.tool_calls},
                    )
                rounds += 1
                self.messages.append(
                    {
                        "role": "assistant",
                        "content": message.get("content"),
                        "tool_calls": requested,
                    }
                )
                for call in requested:
                    self.messages.append(self.call_tool(call))
                continue
            content = message.get("content")
            answer, problems = parse_answer(content, self.spec.output_fields)
            if not problems:
                return Decision(
                    output=answer["output"],
                    decision=answer["decision"],
                    rationale=answer["rationale"],
                    confidence=answer["confidence"],
                    data_considered=self.considered,
                    tool_calls=self.tool_calls,
                    model=self.used_model,
                )
            if repairs >= MAX_REPAIRS:
                raise OutOfScope(
                    "the model's answer could not be used: " + "; ".join(problems),
                    details={
                        "reason": "unusable_answer",
                        "problems": problems,
                        "answer_excerpt": str(content or "")[:EXCERPT],
                        "model": self.used_model,
                        "tool_calls": self.tool_calls,
                    },
                )
            repairs += 1
            self.messages.append({"role": "assistant", "content": str(content or "")})
            self.messages.append(
                {
                    "role": "user",
                    "content": "Your answer could not be used: "
                    + "; ".join(problems)
                    + ". Answer again with only the JSON object described in the system message.",
                }
            )

    def call_tool(self, call) -> dict:
        """Run one tool call; the message that feeds its result back."""
        started = time.perf_counter()
        call = call if isinstance(call, dict) else {}
        function = call.get("function") if isinstance(call.get("function"), dict) else {}
        name = str(function.get("name") or "")[:64]
        raw = function.get("arguments")
        record = {"name": name, "arguments": raw[:2000] if isinstance(raw, str) else None}
        try:
            result, status, url = self._tool_result(name, raw, record)
        except StepFailure as exc:  # a tool that is down stops the step (see the docstring)
            record["status"] = exc.kind
            raise
        finally:
            record["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)
            self.tool_calls.append(record)
        record["status"] = status
        if url:
            record["url"] = url
        return {"role": "tool", "tool_call_id": str(call.get("id") or ""), "content": result}

    def _tool_result(self, name: str, raw, record: dict) -> tuple[str, object, str]:
        tool = self.tools.get(name)
        if tool is None:
            return _error(f"there is no tool named {name!r}"), "unknown_tool", ""
        try:
            arguments = json.loads(raw) if isinstance(raw, str) and raw.strip() else {}
        except ValueError as exc:
            return _error(f"the arguments are not JSON ({exc.msg})"), "invalid_arguments", ""
        if isinstance(raw, str) and len(raw) > 2000:
            record["arguments"] = raw[:2000] + "..."
        else:
            record["arguments"] = arguments
        problem = _schema_problem(tool["parameters"], arguments)
        if problem:
            return _error(f"the arguments do not fit the tool: {problem}"), "invalid_arguments", ""
        connection = calls.connection_for(
            self.spec, tool["connection_id"], what=f"the connection of tool {name!r}"
        )
        try:
            template = templating.compile_template(
                tool["path_template"], path="path_template", mode="url"
            )
            path = templating.render(template, arguments)
        except (ConfigError, templating.TemplateMissing, templating.TemplateRefused) as exc:
            return _error(f"the tool's path could not be built: {exc}"), "invalid_arguments", ""
        in_path = templating.variables_of(tool["path_template"], "url")
        rest = {k: v for k, v in arguments.items() if k not in in_path}
        body = query = None
        if tool["method"] in ("GET", "DELETE"):
            query = {k: v if isinstance(v, str) else json.dumps(v) for k, v in rest.items()}
        else:
            body = rest
        timeout = min(connection.timeout_seconds, self.budget.left(connection.base_url))
        try:
            response = outbound.call(
                connection,
                tool["method"],
                path,
                query=query or None,
                json=body,
                timeout=timeout,
                max_bytes=TOOL_MAX_BYTES,
            )
        except outbound.OutboundError as exc:
            return _error(str(exc)), exc.reason, ""
        text = response.text(MAX_TOOL_RESULT)
        if not 200 <= response.status < 300:
            text = _error(f"the tool answered HTTP {response.status}", body=text)
        return text, response.status, response.url


def _error(message: str, **extra) -> str:
    return json.dumps({"error": message, **extra}, ensure_ascii=False)


def _schema_problem(schema: dict, arguments) -> str:
    validator = validators.validator_for(schema)(schema)
    error = schema_errors.best_match(validator.iter_errors(arguments))
    if error is None:
        return ""
    where = "/".join(str(p) for p in error.path)
    return f"{where}: {error.message}" if where else error.message


def parse_answer(content, output_fields: list[Field]) -> tuple[dict, list[str]]:
    """(the usable answer, []) or ({}, the problems, in words the model can act on)."""
    if not isinstance(content, str) or not content.strip():
        return {}, ["the answer is empty"]
    fenced = FENCE.match(content)
    text = fenced.group(1) if fenced else content
    try:
        data = json.loads(text)
    except ValueError as exc:
        return {}, [f"the answer is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"]
    if not isinstance(data, dict):
        return {}, ["the answer is not a JSON object"]
    problems = []
    decision = data.get("decision")
    if decision is None or decision == "":
        problems.append('"decision" is missing')
    elif isinstance(decision, (dict, list)):
        problems.append('"decision" must be text')
    elif isinstance(decision, bool):
        decision = "true" if decision else "false"
    rationale = data.get("rationale")
    if not isinstance(rationale, str) or not rationale.strip():
        problems.append('"rationale" is missing or not text')
    confidence = data.get("confidence")
    if confidence is None:
        problems.append('"confidence" is missing')
    else:
        try:
            if isinstance(confidence, bool):
                raise ValueError
            confidence = float(confidence)
        except (TypeError, ValueError):
            problems.append('"confidence" must be a number from 0 to 1')
        else:
            if not 0.0 <= confidence <= 1.0:
                problems.append(f'"confidence" {confidence:g} is not from 0 to 1')
    source = data.get("output") if isinstance(data.get("output"), dict) else data
    try:
        output = validate_values(output_fields, source, what="answer")
    except DataMissing as exc:
        output = {}
        if exc.missing:
            problems.append("missing " + ", ".join(f'"{name}"' for name in exc.missing))
        problems += [f'"{name}": {problem}' for name, problem in exc.invalid.items()]
    if problems:
        return {}, problems
    return {
        "decision": str(decision)[:1000],
        "rationale": rationale.strip()[:10_000],
        "confidence": confidence,
        "output": output,
    }, []


class LlmExecutor:
    def execute(self, spec: AgentSpec, inputs: dict) -> Decision:
        return _Chat(spec, inputs).run()


EXECUTOR = LlmExecutor()
