"""Validation of agent definitions: the JSON a version stores.

An agent definition::

    {"kind": "rules" | "llm" | "http" | "human",
     "description": "what the agent is for",
     "input_fields": [field...], "output_fields": [field...],
     "subject_field": name of the input field naming the data subject, or null,
     "confidence_threshold": 0..1, "retry_limit": 0..10, "timeout_seconds": 1..600,
     "config": {the kind's own section, checked by the kind module}}

Every problem raises DefinitionError with a path (``config.rules[2].condition``) that forms
and the API turn into a message next to the right field.
"""

from __future__ import annotations

import hashlib
import json

from agents.fields import FieldSpecError, parse_fields
from agents.kinds import registry
from agents.kinds.base import KINDS
from agents.kinds.config import ConfigError

MAX_DESCRIPTION = 5000
MAX_DEFINITION_BYTES = 200_000


class DefinitionError(ValueError):
    def __init__(self, path: str, problem: str):
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def validate_agent_definition(definition) -> dict:
    """The normalised definition, or DefinitionError naming the first problem."""
    if not isinstance(definition, dict):
        raise DefinitionError("definition", "must be an object")
    size = len(json.dumps(definition, default=str))
    if size > MAX_DEFINITION_BYTES:
        raise DefinitionError(
            "definition", f"is {size} bytes; at most {MAX_DEFINITION_BYTES} are accepted"
        )
    kind = definition.get("kind")
    if kind not in KINDS:
        raise DefinitionError("kind", f"one of {', '.join(KINDS)}")
    description = definition.get("description", "") or ""
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise DefinitionError("description", f"text of at most {MAX_DESCRIPTION} characters")
    try:
        input_fields = parse_fields(definition.get("input_fields", []), "input_fields")
        output_fields = parse_fields(definition.get("output_fields", []), "output_fields")
    except FieldSpecError as exc:
        raise DefinitionError(exc.path, exc.problem) from None
    subject_field = definition.get("subject_field") or None
    personal = [f for f in input_fields if f.personal]
    if subject_field is not None:
        names = {f.name for f in input_fields}
        if subject_field not in names:
            raise DefinitionError("subject_field", f"{subject_field!r} is not an input field")
    elif personal:
        raise DefinitionError(
            "subject_field",
            "input fields marked personal need the field that names the data subject",
        )
    threshold = _number(definition, "confidence_threshold", 0.0, 0.0, 1.0)
    retry_limit = int(_number(definition, "retry_limit", 3, 0, 10, integer=True))
    timeout = _number(definition, "timeout_seconds", 30.0, 1.0, 600.0)
    config = definition.get("config", {})
    try:
        config = registry.validate_config(
            kind, config, input_fields=input_fields, output_fields=output_fields
        )
    except ConfigError as exc:
        raise DefinitionError(f"config.{exc.path}", exc.problem) from None
    return {
        "kind": kind,
        "description": description.strip(),
        "input_fields": [f.as_dict() for f in input_fields],
        "output_fields": [f.as_dict() for f in output_fields],
        "subject_field": subject_field,
        "confidence_threshold": threshold,
        "retry_limit": retry_limit,
        "timeout_seconds": timeout,
        "config": config,
    }


def _number(definition, key, default, low, high, *, integer=False):
    value = definition.get(key, default)
    if value is None or value == "":
        value = default
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise DefinitionError(key, "must be a number")
    try:
        number = float(value)
    except ValueError:
        raise DefinitionError(key, f"must be a number, got {str(value)[:40]!r}") from None
    if integer and not number.is_integer():
        raise DefinitionError(key, "must be a whole number")
    if not low <= number <= high:
        raise DefinitionError(key, f"must be between {low:g} and {high:g}")
    return int(number) if integer else number


def fingerprint(definition: dict) -> str:
    """SHA-256 of the definition's sorted JSON: names exactly what was reviewed."""
    text = json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def diff(old: dict | None, new: dict) -> list[dict]:
    """Field-by-field differences: [{"path", "before", "after"}], paths like input_fields[1].type.

    Lists of named items (fields, steps) are compared by name/key, so inserting one field does
    not show every following field as changed."""
    changes: list[dict] = []
    _diff(old if old is not None else {}, new, "", changes)
    return changes


def _keyed(items: list) -> dict | None:
    keys = []
    for item in items:
        if not isinstance(item, dict):
            return None
        key = item.get("name") or item.get("key")
        if not isinstance(key, str):
            return None
        keys.append(key)
    if len(set(keys)) != len(keys):
        return None
    return dict(zip(keys, items, strict=True))


def _diff(old, new, path: str, changes: list[dict]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            child = f"{path}.{key}" if path else str(key)
            if key not in old:
                changes.append({"path": child, "before": None, "after": new[key]})
            elif key not in new:
                changes.append({"path": child, "before": old[key], "after": None})
            else:
                _diff(old[key], new[key], child, changes)
        return
    if isinstance(old, list) and isinstance(new, list):
        old_keyed, new_keyed = _keyed(old), _keyed(new)
        if old_keyed is not None and new_keyed is not None:
            for key in list(old_keyed) + [k for k in new_keyed if k not in old_keyed]:
                child = f"{path}[{key}]"
                if key not in new_keyed:
                    changes.append({"path": child, "before": old_keyed[key], "after": None})
                elif key not in old_keyed:
                    changes.append({"path": child, "before": None, "after": new_keyed[key]})
                else:
                    _diff(old_keyed[key], new_keyed[key], child, changes)
            if list(old_keyed) != [k for k in new_keyed if k in old_keyed]:
                changes.append(
                    {"path": f"{path} (order)", "before": list(old_keyed), "after": list(new_keyed)}
                )
            return
        for index in range(max(len(old), len(new))):
            child = f"{path}[{index}]"
            if index >= len(old):
                changes.append({"path": child, "before": None, "after": new[index]})
            elif index >= len(new):
                changes.append({"path": child, "before": old[index], "after": None})
            else:
                _diff(old[index], new[index], child, changes)
        return
    if old != new:
        changes.append({"path": path, "before": old, "after": new})
