"""The agent editor: one form for a whole definition, with a section per kind.

Every input is named by the path of the definition value it edits (``input_fields[1].type``,
``config.rules[2].condition``), the same paths `DefinitionError` uses, so an error from the
validators lands next to the input it is about; an error about something without an input of
its own (``config.rules[2]``, ``config``) lands on the nearest row or section that has one.

Rows are added, removed and moved by submit buttons named ``op`` (``add:input_fields``,
``remove:config.rules:2``, ``up:config.rules:2``). With htmx the editor re-renders in place;
without it the same buttons submit the form and the page comes back with the change. Only
``op=save`` writes anything.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from agents.fields import FIELD_TYPES
from agents.forms.kinds import SECTIONS, KindSection
from agents.forms.rows import MAX_ROWS, rows_from_post

COMMON = ("description", "subject_field", "confidence_threshold", "retry_limit", "timeout_seconds")
FIELD_COLUMNS = ("name", "type", "choices", "description")
FIELD_FLAGS = ("required", "personal")
LISTS = ("input_fields", "output_fields")
OP = re.compile(r"^(add|remove|up|down):([a-z_.]+)(?::(\d{1,4}))?$")
SEGMENT = re.compile(r"\.?([^.\[\]]+)|\[(\d+)\]")


def dom_id(path: str) -> str:
    """An id for the input editing `path` (ids with brackets work but are awkward in CSS)."""
    return "f-" + re.sub(r"[^a-zA-Z0-9_-]+", "-", path).strip("-")


def blank_field_row() -> dict:
    return {
        "name": "",
        "type": "text",
        "required": True,
        "personal": False,
        "choices": "",
        "description": "",
    }


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else str(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


@dataclass
class EditorState:
    kind: str
    common: dict = field(default_factory=dict)
    input_fields: list = field(default_factory=list)
    output_fields: list = field(default_factory=list)
    config: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)  # name, team, kind when creating

    def rows(self, path: str) -> list:
        if path in LISTS:
            return getattr(self, path)
        if path.startswith("config."):
            return self.config.setdefault(path.removeprefix("config."), [])
        raise KeyError(path)


class DefinitionEditor:
    """Holds the editor's state, turns it into a definition and places errors."""

    def __init__(self, state: EditorState, *, context: dict):
        self.state = state
        self.context = context  # teams, connections...: what kind sections offer as choices
        self.section: KindSection = SECTIONS[state.kind]
        self.errors: dict[str, list[str]] = {}
        self.form_errors: list[str] = []

    # --- Building ------------------------------------------------------------------------------

    @classmethod
    def from_definition(cls, kind: str, definition: dict | None, *, context: dict, meta=None):
        definition = definition or {}
        common = {key: _text(definition.get(key)) for key in COMMON}
        state = EditorState(
            kind=kind,
            common=common,
            input_fields=[_field_row(f) for f in definition.get("input_fields") or []],
            output_fields=[_field_row(f) for f in definition.get("output_fields") or []],
            meta=dict(meta or {}),
        )
        if not definition:
            state.common.update(confidence_threshold="0", retry_limit="3", timeout_seconds="30")
        editor = cls(state, context=context)
        state.config = editor.section.state_from_config(
            definition.get("config") or {}, state, context
        )
        return editor

    @classmethod
    def from_post(cls, kind: str, data, *, context: dict, meta_fields=()):
        state = EditorState(
            kind=kind,
            common={key: data.get(key, "") for key in COMMON},
            input_fields=rows_from_post(data, "input_fields", FIELD_COLUMNS, FIELD_FLAGS),
            output_fields=rows_from_post(data, "output_fields", FIELD_COLUMNS, FIELD_FLAGS),
            meta={name: data.get(name, "") for name in meta_fields},
        )
        editor = cls(state, context=context)
        state.config = editor.section.state_from_post(data, state, context)
        return editor

    def starter_rows(self) -> None:
        """A new agent's editor starts with one empty row where rows are needed."""
        self.state.input_fields.append(blank_field_row())
        self.state.output_fields.append(blank_field_row())
        for path in self.section.lists[:1]:
            self.state.rows(path).append(self.section.blank_row(path))

    # --- Row operations ------------------------------------------------------------------------

    def apply(self, op: str) -> bool:
        """Add, remove or move a row; False when `op` is not one the editor knows."""
        match = OP.match(op or "")
        if not match:
            return False
        action, path, index = match.group(1), match.group(2), match.group(3)
        if path not in LISTS and path not in self.section.lists:
            return False
        rows = self.state.rows(path)
        if action == "add":
            if len(rows) >= MAX_ROWS:
                self.errors.setdefault(path, []).append(f"at most {MAX_ROWS} rows")
                return True
            rows.append(blank_field_row() if path in LISTS else self.section.blank_row(path))
            return True
        if index is None or not 0 <= int(index) < len(rows):
            return False
        i = int(index)
        if action == "remove":
            del rows[i]
        elif action == "up" and i > 0:
            rows[i - 1], rows[i] = rows[i], rows[i - 1]
        elif action == "down" and i < len(rows) - 1:
            rows[i + 1], rows[i] = rows[i], rows[i + 1]
        return True

    # --- Definition and errors -----------------------------------------------------------------

    def to_definition(self) -> dict:
        """The definition the editor holds; cell errors found while reading it (a JSON value
        that does not parse) are recorded in `errors`."""
        state = self.state
        definition = {
            "kind": state.kind,
            "description": state.common.get("description", ""),
            "input_fields": [_field_spec(row) for row in state.input_fields],
            "output_fields": [_field_spec(row) for row in state.output_fields],
            "subject_field": state.common.get("subject_field") or None,
            "confidence_threshold": state.common.get("confidence_threshold", ""),
            "retry_limit": state.common.get("retry_limit", ""),
            "timeout_seconds": state.common.get("timeout_seconds", ""),
        }
        definition["config"] = self.section.config_from_state(state, self.context, self.add_error)
        return definition

    def add_error(self, path: str, message: str) -> None:
        """Place `message` on the input editing `path`, or on the nearest row or section."""
        self.errors.setdefault(self.place(path), []).append(message)

    def place(self, path: str) -> str:
        path = self.section.translate(path, self.state)
        if path == "config.output_fields":
            return "output_fields"
        candidates = self.known_paths()
        current = path
        while current:
            if current in candidates:
                return current
            current = _parent(current)
        return ""

    def known_paths(self) -> set[str]:
        paths = set(COMMON) | set(LISTS) | {"config", "kind", "name", "team", "definition"}
        for list_name in LISTS:
            for index, _row in enumerate(getattr(self.state, list_name)):
                base = f"{list_name}[{index}]"
                paths.add(base)
                paths.update(f"{base}.{col}" for col in (*FIELD_COLUMNS, *FIELD_FLAGS))
        paths.update(self.section.paths(self.state))
        return paths

    @property
    def has_errors(self) -> bool:
        return bool(self.errors or self.form_errors)

    def error_list(self) -> list[tuple[str, str, str]]:
        """(where, message, input id) of every error, for the summary at the top of the form:
        each links to the input it is about."""
        return [
            (label_of(path), message, dom_id(path) if path else "")
            for path, msgs in self.errors.items()
            for message in msgs
        ]

    # --- Rendering helpers ---------------------------------------------------------------------

    def cell(self, path: str, value="") -> dict:
        errors = self.errors.get(path, [])
        return {"name": path, "id": dom_id(path), "value": value, "errors": errors}

    def field_rows(self, list_name: str) -> list[dict]:
        rows = []
        for index, row in enumerate(getattr(self.state, list_name)):
            base = f"{list_name}[{index}]"
            rows.append(
                {
                    "index": index,
                    "label": f"{LABELS[list_name].capitalize()} {index + 1}",
                    "base": base,
                    "marker": f"{base}._row",
                    "errors": self.errors.get(base, []),
                    "cells": {
                        col: self.cell(f"{base}.{col}", row.get(col, ""))
                        for col in (*FIELD_COLUMNS, *FIELD_FLAGS)
                    },
                    "is_choice": row.get("type") == "choice",
                }
            )
        return rows

    @property
    def input_rows(self) -> list[dict]:
        return self.field_rows("input_fields")

    @property
    def output_rows(self) -> list[dict]:
        return self.field_rows("output_fields")

    field_types = [(t, t) for t in FIELD_TYPES]

    def field_names(self, list_name: str) -> list[str]:
        rows = getattr(self.state, list_name)
        return [row["name"].strip() for row in rows if row["name"].strip()]

    def meta_cells(self) -> dict:
        """Name, team and kind: edited only when creating an agent."""
        meta = self.state.meta
        return {key: self.cell(key, meta.get(key, "")) for key in ("name", "team", "kind")}

    def common_cells(self) -> dict:
        return {key: self.cell(key, self.state.common.get(key, "")) for key in COMMON}

    def subject_choices(self) -> list[tuple[str, str]]:
        names = self.field_names("input_fields")
        current = self.state.common.get("subject_field", "")
        choices = [("", "None: no input names a person")] + [(n, n) for n in names]
        if current and current not in names:
            choices.append((current, f"{current} (no such input field)"))
        return choices

    def section_context(self) -> dict:
        return self.section.render_context(self)


def label_of(path: str) -> str:
    """A reader's name for a path: ``config.rules[2].condition`` -> "Rule 3 · condition"."""
    if not path:
        return "Definition"
    words = []
    for name, index in SEGMENT.findall(path):
        if index:
            words[-1] = f"{words[-1]} {int(index) + 1}" if words else f"Row {int(index) + 1}"
        elif name not in ("config", "outputs"):
            words.append(LABELS.get(name, name.replace("_", " ")))
    text = " · ".join(words) or "Settings"
    return text[:1].upper() + text[1:]


LABELS = {
    "input_fields": "input field",
    "output_fields": "output field",
    "rules": "rule",
    "tools": "tool",
    "response_mapping": "mapping",
    "subject_field": "data subject field",
    "confidence_threshold": "confidence threshold",
    "retry_limit": "retry limit",
    "timeout_seconds": "timeout",
    "team_id": "answering team",
    "connection_id": "connection",
}


def _parent(path: str) -> str:
    if path.endswith("]"):
        return path[: path.rindex("[")]
    if "." in path:
        return path[: path.rindex(".")]
    return ""


def _field_row(spec) -> dict:
    spec = spec if isinstance(spec, dict) else {}
    return {
        "name": _text(spec.get("name")),
        "type": spec.get("type") if spec.get("type") in FIELD_TYPES else "text",
        "required": bool(spec.get("required", True)),
        "personal": bool(spec.get("personal", False)),
        "choices": ", ".join(str(c) for c in spec.get("choices") or []),
        "description": _text(spec.get("description")),
    }


def _field_spec(row: dict) -> dict:
    spec = {
        "name": row.get("name", "").strip(),
        "type": row.get("type", ""),
        "required": bool(row.get("required")),
        "personal": bool(row.get("personal")),
        "description": row.get("description", ""),
    }
    if spec["type"] == "choice":
        spec["choices"] = [c.strip() for c in row.get("choices", "").split(",") if c.strip()]
    return spec
