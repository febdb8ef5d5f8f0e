"""Typed input and output fields of agents and workflows, and validation of values against them.

A field spec is a dict (stored in a version's definition):
``{"name": "amount", "type": "number", "required": true, "personal": false,
"choices": [...] (for type "choice"), "description": "..."}``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass

from agents.engine.taxonomy import DataMissing

FIELD_TYPES = ("text", "number", "boolean", "date", "choice", "json")
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
RESERVED_NAMES = {"decision", "rationale", "confidence", "input", "output", "steps"}
MAX_TEXT = 10_000


class FieldSpecError(ValueError):
    """A field definition is wrong; `path` names it (e.g. ``input_fields[2].choices``)."""

    def __init__(self, path: str, problem: str):
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    required: bool = True
    personal: bool = False
    choices: tuple[str, ...] = ()
    description: str = ""

    def as_dict(self) -> dict:
        data = {
            "name": self.name,
            "type": self.type,
            "required": self.required,
            "personal": self.personal,
            "description": self.description,
        }
        if self.type == "choice":
            data["choices"] = list(self.choices)
        return data


def parse_fields(specs, path: str, *, reserved: set[str] = RESERVED_NAMES) -> list[Field]:
    """Validate a list of field specs; raise FieldSpecError naming the first problem."""
    if not isinstance(specs, list):
        raise FieldSpecError(path, "must be a list of fields")
    fields, seen = [], set()
    for index, spec in enumerate(specs):
        where = f"{path}[{index}]"
        if not isinstance(spec, dict):
            raise FieldSpecError(where, "must be an object")
        name = spec.get("name")
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise FieldSpecError(
                f"{where}.name",
                "lower-case letters, digits and underscores, starting with a letter (max 63)",
            )
        if name in reserved:
            raise FieldSpecError(f"{where}.name", f"{name!r} is reserved")
        if name in seen:
            raise FieldSpecError(f"{where}.name", f"{name!r} appears twice")
        seen.add(name)
        kind = spec.get("type")
        if kind not in FIELD_TYPES:
            raise FieldSpecError(f"{where}.type", f"one of {', '.join(FIELD_TYPES)}")
        choices = spec.get("choices") or []
        if kind == "choice":
            if not isinstance(choices, list) or not choices:
                raise FieldSpecError(f"{where}.choices", "a choice field needs its choices")
            if not all(isinstance(c, str) and c.strip() for c in choices):
                raise FieldSpecError(f"{where}.choices", "each choice is a non-empty text")
            if len(set(choices)) != len(choices):
                raise FieldSpecError(f"{where}.choices", "choices must be distinct")
        description = spec.get("description", "") or ""
        if not isinstance(description, str) or len(description) > 1000:
            raise FieldSpecError(f"{where}.description", "text of at most 1000 characters")
        fields.append(
            Field(
                name=name,
                type=kind,
                required=bool(spec.get("required", True)),
                personal=bool(spec.get("personal", False)),
                choices=tuple(choices) if kind == "choice" else (),
                description=description,
            )
        )
    return fields


def coerce_value(field: Field, value):
    """The value converted to the field's type; ValueError with a readable reason otherwise."""
    if field.type == "text":
        if not isinstance(value, str):
            raise ValueError("expected text")
        if len(value) > MAX_TEXT:
            raise ValueError(f"at most {MAX_TEXT} characters")
        return value
    if field.type == "number":
        if isinstance(value, bool):
            raise ValueError("expected a number")
        if isinstance(value, (int, float)):
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError("expected a finite number")
            return value
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                raise ValueError(f"expected a number, got {value[:40]!r}") from None
            if not math.isfinite(number):  # "NaN", "inf": no database or ledger holds them
                raise ValueError(f"expected a finite number, got {value[:40]!r}")
            return int(number) if number.is_integer() and "." not in value else number
        raise ValueError("expected a number")
    if field.type == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false", "yes", "no", "1", "0"}:
            return value.lower() in {"true", "yes", "1"}
        raise ValueError("expected true or false")
    if field.type == "date":
        if isinstance(value, dt.date):
            return value.isoformat()
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value).isoformat()
            except ValueError:
                raise ValueError(f"expected a date as YYYY-MM-DD, got {value[:40]!r}") from None
        raise ValueError("expected a date as YYYY-MM-DD")
    if field.type == "choice":
        if value not in field.choices:
            raise ValueError(f"expected one of {', '.join(field.choices)}")
        return value
    if field.type == "json":
        if isinstance(value, (dict, list, str, int, float, bool)) or value is None:
            return value
        raise ValueError("expected JSON")
    raise ValueError(f"unknown field type {field.type!r}")


def validate_values(fields: list[Field], data, *, what: str = "input") -> dict:
    """Check `data` against `fields`: the cleaned values, or DataMissing naming every problem.

    Unknown keys are dropped (an agent sees only the fields it declares)."""
    if not isinstance(data, dict):
        raise DataMissing(
            f"{what} must be an object of named values",
            missing=[f.name for f in fields if f.required],
        )
    cleaned, missing, invalid = {}, [], {}
    for field in fields:
        value = data.get(field.name)
        if value is None or value == "":
            if field.required:
                missing.append(field.name)
            continue
        try:
            cleaned[field.name] = coerce_value(field, value)
        except ValueError as exc:
            invalid[field.name] = str(exc)
    if missing or invalid:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(missing))
        if invalid:
            parts.append("; ".join(f"{name}: {problem}" for name, problem in invalid.items()))
        raise DataMissing(f"{what}: " + "; ".join(parts), missing=missing, invalid=invalid)
    return cleaned


def split_personal(fields: list[Field], values: dict) -> tuple[dict, dict]:
    """(ordinary values, personal values): personal ones go to the ledger's encrypted part."""
    personal_names = {f.name for f in fields if f.personal}
    ordinary = {k: v for k, v in values.items() if k not in personal_names}
    personal = {k: v for k, v in values.items() if k in personal_names}
    return ordinary, personal
