"""The kind sections of the agent editor: how each kind's config becomes inputs and back.

A section turns a kind's config into editor state (texts and rows of texts, as inputs hold
them), reads that state back from a POST, builds the config the kind's `validate_config`
checks, and lists the paths it has inputs for (so errors land on them). Templates:
``agents/editor/_<kind>.html``.
"""

from __future__ import annotations

import json
import re

from agents import jsonsafe
from agents.forms.rows import row_indices

JSON_TYPES = ("json",)


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _json_cell(text: str, path: str, add_error):
    try:
        return jsonsafe.loads(text)
    except json.JSONDecodeError as exc:
        add_error(path, f"not valid JSON: {exc.msg} at character {exc.pos + 1}")
    except ValueError as exc:
        add_error(path, f"not accepted: {exc}")
    return None


def _output_columns(state) -> list[dict]:
    columns, seen = [], set()
    for row in state.output_fields:
        name = row.get("name", "").strip()
        if name and name not in seen and re.match(r"^[a-z][a-z0-9_]{0,62}$", name):
            seen.add(name)
            choices = [c.strip() for c in row.get("choices", "").split(",") if c.strip()]
            kind = row.get("type", "text")
            options = None  # a select for choice and boolean outputs, a text input otherwise
            if kind == "choice":
                options = [("", "—"), *((c, c) for c in choices)]
            elif kind == "boolean":
                options = [("", "—"), ("true", "true"), ("false", "false")]
            columns.append({"name": name, "type": kind, "choices": choices, "options": options})
    return columns


class KindSection:
    kind = ""
    lists: tuple[str, ...] = ()  # row lists this section edits, e.g. "config.rules"
    template = ""

    def state_from_config(self, config: dict, state, context) -> dict:
        raise NotImplementedError

    def state_from_post(self, data, state, context) -> dict:
        raise NotImplementedError

    def config_from_state(self, state, context, add_error) -> dict:
        raise NotImplementedError

    def blank_row(self, path: str) -> dict:
        raise KeyError(path)

    def paths(self, state) -> set[str]:
        return set()

    def translate(self, path: str, state) -> str:
        """The editor path of a validator's path, where the two differ (dicts edited as rows)."""
        return path

    def render_context(self, editor) -> dict:
        return {}


# --- rules ------------------------------------------------------------------------------------

RULE_COLUMNS = ("condition", "decision", "confidence", "rationale", "description")
HIT_POLICIES = (
    ("unique", "Unique: exactly one row may match (two is a rule conflict)"),
    ("first", "First: the first matching row in table order"),
    ("collect", "Collect: every matching row"),
)


class RulesSection(KindSection):
    kind = "rules"
    lists = ("config.rules",)
    template = "agents/editor/_rules.html"

    def _outcome_state(self, data: dict) -> dict:
        data = data if isinstance(data, dict) else {}
        outputs = data.get("outputs") if isinstance(data.get("outputs"), dict) else {}
        row = {col: _text(data.get(col)) for col in RULE_COLUMNS}
        row["outputs"] = {str(k): _text(v) for k, v in outputs.items()}
        return row

    def state_from_config(self, config, state, context):
        rows = config.get("rules") if isinstance(config.get("rules"), list) else []
        default = config.get("default")
        return {
            "hit_policy": _text(config.get("hit_policy") or "unique"),
            "rules": [self._outcome_state(r) for r in rows],
            "default_enabled": bool(default),
            "default": self._outcome_state(default or {}),
        }

    def _outcome_from_post(self, data, base: str) -> dict:
        row = {col: data.get(f"{base}.{col}", "") for col in RULE_COLUMNS}
        prefix = f"{base}.outputs."
        row["outputs"] = {
            key[len(prefix) :]: value for key, value in data.items() if key.startswith(prefix)
        }
        return row

    def state_from_post(self, data, state, context):
        return {
            "hit_policy": data.get("config.hit_policy", "unique"),
            "rules": [
                self._outcome_from_post(data, f"config.rules[{i}]")
                for i in row_indices(data, "config.rules")
            ],
            "default_enabled": "config.default._enabled" in data,
            "default": self._outcome_from_post(data, "config.default"),
        }

    def blank_row(self, path):
        return {**{col: "" for col in RULE_COLUMNS}, "confidence": "1", "outputs": {}}

    def _outcome_config(self, row, base, columns, add_error) -> dict:
        outputs = {}
        for column in columns:
            text = str(row["outputs"].get(column["name"], "")).strip()
            if not text:
                continue
            if column["type"] in JSON_TYPES:
                value = _json_cell(text, f"{base}.outputs.{column['name']}", add_error)
                if value is not None:
                    outputs[column["name"]] = value
            else:
                outputs[column["name"]] = text
        return {
            "outputs": outputs,
            "decision": row.get("decision", ""),
            "confidence": row.get("confidence", ""),
            "rationale": row.get("rationale", ""),
            "description": row.get("description", ""),
        }

    def config_from_state(self, state, context, add_error):
        columns = _output_columns(state)
        config = state.config
        rules = []
        for index, row in enumerate(config["rules"]):
            base = f"config.rules[{index}]"
            outcome = self._outcome_config(row, base, columns, add_error)
            rules.append({"condition": row.get("condition", ""), **outcome})
        default = None
        if config.get("default_enabled"):
            default = self._outcome_config(config["default"], "config.default", columns, add_error)
        policy = config.get("hit_policy") or "unique"
        return {"hit_policy": policy, "rules": rules, "default": default}

    def paths(self, state):
        names = [c["name"] for c in _output_columns(state)]
        found = {"config.hit_policy", "config.rules", "config.default"}
        bases = [f"config.rules[{i}]" for i in range(len(state.config.get("rules", [])))]
        for base in [*bases, "config.default"]:
            found.add(base)
            found.update(f"{base}.{col}" for col in RULE_COLUMNS)
            found.update(f"{base}.outputs.{name}" for name in names)
        return found

    def _outcome_cells(self, editor, base: str, row: dict, columns) -> dict:
        return {
            "base": base,
            "errors": editor.errors.get(base, []),
            "cells": {col: editor.cell(f"{base}.{col}", row.get(col, "")) for col in RULE_COLUMNS},
            "outputs": [
                {
                    **column,
                    "cell": editor.cell(
                        f"{base}.outputs.{column['name']}", row["outputs"].get(column["name"], "")
                    ),
                }
                for column in columns
            ],
        }

    def render_context(self, editor):
        config = editor.state.config
        columns = _output_columns(editor.state)
        rows = []
        for index, row in enumerate(config["rules"]):
            base = f"config.rules[{index}]"
            rows.append(
                {
                    "index": index,
                    "label": f"Rule {index + 1}",
                    "marker": f"{base}._row",
                    **self._outcome_cells(editor, base, row, columns),
                }
            )
        return {
            "hit_policy": editor.cell("config.hit_policy", config.get("hit_policy", "unique")),
            "hit_policies": HIT_POLICIES,
            "rows": rows,
            "rows_errors": editor.errors.get("config.rules", []),
            "columns": columns,
            "input_names": editor.field_names("input_fields"),
            "default_enabled": config.get("default_enabled"),
            "default_toggle": editor.cell("config.default._enabled", ""),
            "default": self._outcome_cells(editor, "config.default", config["default"], columns),
        }


# --- human ------------------------------------------------------------------------------------


class HumanSection(KindSection):
    kind = "human"
    template = "agents/editor/_human.html"

    def state_from_config(self, config, state, context):
        return {
            "team_id": _text(config.get("team_id")),
            "instructions": _text(config.get("instructions")),
        }

    def state_from_post(self, data, state, context):
        return {
            "team_id": data.get("config.team_id", ""),
            "instructions": data.get("config.instructions", ""),
        }

    def config_from_state(self, state, context, add_error):
        return {"team_id": state.config["team_id"], "instructions": state.config["instructions"]}

    def paths(self, state):
        return {"config.team_id", "config.instructions"}

    def render_context(self, editor):
        teams = [(str(t.pk), t.name) for t in editor.context.get("all_teams", [])]
        current = editor.state.config["team_id"]
        if current and current not in {pk for pk, _ in teams}:
            teams.append((current, f"Team #{current} (no longer exists)"))
        return {
            "team": editor.cell("config.team_id", current),
            "teams": [("", "Choose the team that answers"), *teams],
            "instructions": editor.cell("config.instructions", editor.state.config["instructions"]),
        }


# --- llm and http: a connection, templates, rows -----------------------------------------------

METHOD_CHOICES = [(m, m) for m in ("GET", "POST", "PUT", "PATCH", "DELETE")]


def _number(text: str, path: str, add_error, *, integer: bool = False):
    """A number typed into a text input, or None when blank (errors are placed on `path`)."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        add_error(path, f"a number, not {text[:40]!r}")
        return None
    if integer:
        if not value.is_integer():
            add_error(path, "a whole number")
            return None
        return int(value)
    return value


def _connection_choices(editor, kind: str, current: str) -> list[tuple[str, str]]:
    usable = [c for c in editor.context.get("connections", []) if c.kind == kind]
    choices = [("", "Choose a connection")]
    choices += [(str(c.pk), f"{c.name}" + (f" · {c.model}" if c.model else "")) for c in usable]
    if current and current not in {value for value, _ in choices}:
        choices.append((current, f"#{current} (not one you may use)"))
    return choices


def _rows_by_name(rows, key="name") -> dict[str, int]:
    return {row.get(key, "").strip(): i for i, row in enumerate(rows) if row.get(key, "").strip()}


TOOL_COLUMNS = ("name", "description", "connection_id", "method", "path_template", "parameters")
LLM_TEXTS = ("connection_id", "model", "temperature", "system_prompt", "user_prompt_template")


class LlmSection(KindSection):
    kind = "llm"
    lists = ("config.tools",)
    template = "agents/editor/_llm.html"

    def state_from_config(self, config, state, context):
        tools = config.get("tools") if isinstance(config.get("tools"), list) else []
        return {
            **{key: _text(config.get(key)) for key in LLM_TEXTS},
            "max_tool_rounds": _text(config.get("max_tool_rounds", 3)),
            "tools": [
                {
                    **{col: _text(tool.get(col)) for col in TOOL_COLUMNS},
                    "parameters": json.dumps(tool.get("parameters") or {}, indent=2)
                    if tool.get("parameters")
                    else "",
                }
                for tool in tools
                if isinstance(tool, dict)
            ],
        }

    def state_from_post(self, data, state, context):
        return {
            **{key: data.get(f"config.{key}", "") for key in LLM_TEXTS},
            "max_tool_rounds": data.get("config.max_tool_rounds", ""),
            "tools": [
                {col: data.get(f"config.tools[{i}].{col}", "") for col in TOOL_COLUMNS}
                for i in row_indices(data, "config.tools")
            ],
        }

    def blank_row(self, path):
        return {**{col: "" for col in TOOL_COLUMNS}, "method": "GET"}

    def config_from_state(self, state, context, add_error):
        c = state.config
        config = {
            "connection_id": c["connection_id"],
            "model": c["model"],
            "system_prompt": c["system_prompt"],
            "user_prompt_template": c["user_prompt_template"],
            "tools": [],
        }
        temperature = _number(c["temperature"], "config.temperature", add_error)
        if temperature is not None:
            config["temperature"] = temperature
        rounds = _number(c["max_tool_rounds"], "config.max_tool_rounds", add_error, integer=True)
        if rounds is not None:
            config["max_tool_rounds"] = rounds
        for index, tool in enumerate(c["tools"]):
            base = f"config.tools[{index}]"
            parameters = None
            if tool.get("parameters", "").strip():
                parameters = _json_cell(tool["parameters"], f"{base}.parameters", add_error)
            config["tools"].append(
                {
                    "name": tool.get("name", "").strip(),
                    "description": tool.get("description", ""),
                    "connection_id": tool.get("connection_id", ""),
                    "method": tool.get("method", "GET"),
                    "path_template": tool.get("path_template", ""),
                    "parameters": parameters,
                }
            )
        return config

    def paths(self, state):
        found = {f"config.{key}" for key in (*LLM_TEXTS, "max_tool_rounds", "tools")}
        for index in range(len(state.config.get("tools", []))):
            base = f"config.tools[{index}]"
            found.add(base)
            found.update(f"{base}.{col}" for col in TOOL_COLUMNS)
        return found

    def render_context(self, editor):
        c = editor.state.config
        tools = []
        for index, tool in enumerate(c["tools"]):
            base = f"config.tools[{index}]"
            cells = {col: editor.cell(f"{base}.{col}", tool.get(col, "")) for col in TOOL_COLUMNS}
            tools.append(
                {
                    "index": index,
                    "label": f"Tool {index + 1}",
                    "marker": f"{base}._row",
                    "errors": editor.errors.get(base, []),
                    "cells": cells,
                    "connections": _connection_choices(editor, "http", tool.get("connection_id")),
                }
            )
        return {
            "cells": {key: editor.cell(f"config.{key}", c[key]) for key in LLM_TEXTS}
            | {"max_tool_rounds": editor.cell("config.max_tool_rounds", c["max_tool_rounds"])},
            "connections": _connection_choices(editor, "model", c["connection_id"]),
            "tools": tools,
            "tools_errors": editor.errors.get("config.tools", []),
            "methods": METHOD_CHOICES,
            "input_names": editor.field_names("input_fields"),
        }


HTTP_TEXTS = (
    "connection_id",
    "method",
    "path_template",
    "body_template",
    "decision_pointer",
    "confidence_pointer",
    "rationale_pointer",
)


class HttpSection(KindSection):
    kind = "http"
    lists = ("config.query",)
    template = "agents/editor/_http.html"

    def state_from_config(self, config, state, context):
        failure = config.get("failure") if isinstance(config.get("failure"), dict) else {}
        query = config.get("query") if isinstance(config.get("query"), dict) else {}
        mapping = config.get("response_mapping")
        mapping = mapping if isinstance(mapping, dict) else {}
        return {
            **{key: _text(config.get(key)) for key in HTTP_TEXTS},
            "method": _text(config.get("method") or "GET"),
            "query": [{"name": k, "value": _text(v)} for k, v in query.items()],
            "response_mapping": {str(k): _text(v) for k, v in mapping.items()},
            "failure": {
                "status_codes": ", ".join(str(c) for c in failure.get("status_codes") or []),
                "pointer": _text(failure.get("pointer")),
                "equals": json.dumps(failure["equals"], ensure_ascii=False)
                if "equals" in failure
                else "",
            },
        }

    def state_from_post(self, data, state, context):
        prefix = "config.response_mapping."
        return {
            **{key: data.get(f"config.{key}", "") for key in HTTP_TEXTS},
            "query": [
                {
                    "name": data.get(f"config.query[{i}].name", ""),
                    "value": data.get(f"config.query[{i}].value", ""),
                }
                for i in row_indices(data, "config.query")
            ],
            "response_mapping": {
                key[len(prefix) :]: value for key, value in data.items() if key.startswith(prefix)
            },
            "failure": {
                key: data.get(f"config.failure.{key}", "")
                for key in ("status_codes", "pointer", "equals")
            },
        }

    def blank_row(self, path):
        return {"name": "", "value": ""}

    def config_from_state(self, state, context, add_error):
        c = state.config
        config = {key: c[key] for key in HTTP_TEXTS}
        config["query"] = {}
        for index, row in enumerate(c["query"]):
            name = row.get("name", "").strip()
            if not name:
                add_error(f"config.query[{index}].name", "name the query parameter")
            elif name in config["query"]:
                add_error(f"config.query[{index}].name", f"{name!r} appears twice")
            else:
                config["query"][name] = row.get("value", "")
        outputs = [col["name"] for col in _output_columns(state)]
        config["response_mapping"] = {
            name: c["response_mapping"].get(name, "").strip()
            for name in outputs
            if c["response_mapping"].get(name, "").strip()
        }
        failure = c["failure"]
        codes = []
        for part in failure.get("status_codes", "").replace(";", ",").split(","):
            if part.strip():
                code = _number(part, "config.failure.status_codes", add_error, integer=True)
                if code is not None:
                    codes.append(code)
        config["failure"] = {"status_codes": codes}
        if failure.get("pointer", "").strip():
            config["failure"]["pointer"] = failure["pointer"].strip()
            equals = failure.get("equals", "").strip()
            if equals:
                try:
                    config["failure"]["equals"] = jsonsafe.loads(equals)
                except ValueError:  # plain text is meant as text
                    config["failure"]["equals"] = equals
        return config

    def translate(self, path, state):
        prefix = "config.query."
        if path.startswith(prefix):
            index = _rows_by_name(state.config["query"]).get(path[len(prefix) :])
            if index is not None:
                return f"config.query[{index}].value"
        return path

    def paths(self, state):
        found = {f"config.{key}" for key in (*HTTP_TEXTS, "query", "response_mapping")}
        found.update({"config.failure", "config.failure.status_codes", "config.failure.pointer"})
        found.add("config.failure.equals")
        for index in range(len(state.config.get("query", []))):
            found.update({f"config.query[{index}]", f"config.query[{index}].name"})
            found.add(f"config.query[{index}].value")
        found.update(f"config.response_mapping.{c['name']}" for c in _output_columns(state))
        return found

    def render_context(self, editor):
        c = editor.state.config
        query = []
        for index, row in enumerate(c["query"]):
            base = f"config.query[{index}]"
            query.append(
                {
                    "index": index,
                    "label": f"Query parameter {index + 1}",
                    "marker": f"{base}._row",
                    "name": editor.cell(f"{base}.name", row.get("name", "")),
                    "value": editor.cell(f"{base}.value", row.get("value", "")),
                }
            )
        mapping = [
            {
                **column,
                "cell": editor.cell(
                    f"config.response_mapping.{column['name']}",
                    c["response_mapping"].get(column["name"], ""),
                ),
            }
            for column in _output_columns(editor.state)
        ]
        return {
            "cells": {key: editor.cell(f"config.{key}", c[key]) for key in HTTP_TEXTS},
            "failure": {
                key: editor.cell(f"config.failure.{key}", c["failure"].get(key, ""))
                for key in ("status_codes", "pointer", "equals")
            },
            "connections": _connection_choices(editor, "http", c["connection_id"]),
            "methods": METHOD_CHOICES,
            "query": query,
            "query_errors": editor.errors.get("config.query", []),
            "mapping": mapping,
            "mapping_errors": editor.errors.get("config.response_mapping", []),
            "input_names": editor.field_names("input_fields"),
        }


SECTIONS: dict[str, KindSection] = {
    "rules": RulesSection(),
    "llm": LlmSection(),
    "http": HttpSection(),
    "human": HumanSection(),
}
