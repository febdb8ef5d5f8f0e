"""What the workflow editor holds: the rows as typed, read from a definition or from the
posted form, and the rows a new workflow starts with.

Inputs are named by the path of the definition value they edit (``steps[2].agent_id``,
``input_fields[0].name``, ``config.max_rounds``, ``triggers[1].every_minutes``); the input
mapping, a dict in the definition, is edited as rows (``steps[2].mapping[0].target`` /
``.source`` / ``.const``). Each row carries a ``<path>._row`` marker, so a row left empty still
counts. `agents.forms.workflow_editor` turns the state into a definition and places errors.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from agents.fields import FIELD_TYPES
from agents.workflow_spec import MAX_STEPS, PATTERNS, TRIGGER_TYPES

PATTERN_CHOICES = [
    ("sequential", "Sequential"),
    ("concurrent", "Concurrent (fan-out and join)"),
    ("router", "Router"),
    ("maker_checker", "Maker-checker"),
    ("supervisor", "Supervisor"),
    ("conversation", "Conversation"),
]
PATTERN_HELP = {
    "sequential": "Steps run one after another; each step can use the outputs of earlier ones.",
    "concurrent": "Steps run side by side (fan-out); a step that waits for several of them "
    "is a join.",
    "router": "A router step classifies the case; the route whose condition holds runs next, "
    "or the default route.",
    "maker_checker": "A maker drafts and a checker approves or sends it back with feedback, "
    "for a limited number of rounds, then it escalates.",
    "supervisor": "A manager chooses which specialists run, then decides from their results.",
    "conversation": "Participants take turns until a stop condition holds or the turn limit "
    "is reached, which escalates.",
}
ROLE_LABELS = {
    "step": "Step",
    "router": "Router (classifies)",
    "route": "Route (runs when its condition holds)",
    "default": "Default route (when no condition holds)",
    "maker": "Maker (drafts)",
    "checker": "Checker (approves or sends back)",
    "manager": "Manager (chooses and decides)",
    "specialist": "Specialist",
    "participant": "Participant",
}
# Per pattern: the role of the first step and of the others, when the editor picks one.
DEFAULT_ROLES = {
    "sequential": ("step", "step"),
    "concurrent": ("step", "step"),
    "router": ("router", "route"),
    "maker_checker": ("maker", "checker"),
    "supervisor": ("manager", "specialist"),
    "conversation": ("participant", "participant"),
}
ROLE_ORDER = (
    "step",
    "router",
    "route",
    "default",
    "maker",
    "checker",
    "manager",
    "specialist",
    "participant",
)
CONFIG_KEYS = {
    "maker_checker": ("max_rounds", "approve_decision"),
    "supervisor": ("selection_field",),
    "conversation": ("stop_condition", "max_turns"),
}
CONFIG_DEFAULTS = {
    "max_rounds": "3",
    "approve_decision": "approve",
    "selection_field": "specialists",
    "stop_condition": "",
    "max_turns": "6",
}
OUTCOME_LABELS = {
    "completed": "completes",
    "rejected": "ends rejected",
    "cancelled": "is cancelled",
    "any": "finishes, whatever the outcome",
}
STEP_COLUMNS = ("key", "was", "auto", "label", "agent_id", "agent_was", "role", "when")
FIELD_COLUMNS = ("name", "type", "choices", "description")
FIELD_FLAGS = ("required", "personal")
MAPPING_COLUMNS = ("target", "source", "const")
TRIGGER_COLUMNS = ("type", "every_minutes", "input", "workflow_id", "outcome", "run_as")
MAX_MAPPINGS = 100
MAX_TRIGGERS = 20
MAX_CELL = 20_000  # longer cells are cut before anything else reads them
ATTRIBUTES = (("decision", "decision"), ("confidence", "confidence"), ("rationale", "rationale"))


MAX_ROWS = 200


def row_indices(data, prefix: str) -> list[int]:
    """The row numbers posted under `prefix`: each row carries a ``<prefix>[i]._row`` marker,
    so a row whose inputs are all empty (or whose boxes are all unticked) still counts."""
    pattern = re.compile(rf"^{re.escape(prefix)}\[(\d{{1,4}})\]\._row$")
    found = sorted({int(m.group(1)) for key in data for m in [pattern.match(key)] if m})
    return found[:MAX_ROWS]


def rows_from_post(data, prefix: str, columns, flags=()) -> list[dict]:
    rows = []
    for index in row_indices(data, prefix):
        base = f"{prefix}[{index}]"
        row = {col: data.get(f"{base}.{col}", "") for col in columns}
        row.update({flag: f"{base}.{flag}" in data for flag in flags})
        rows.append(row)
    return rows


def dom_id(path: str) -> str:
    return "w-" + re.sub(r"[^a-zA-Z0-9_-]+", "-", path).strip("-")


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _cut(value: str) -> str:
    return value[:MAX_CELL]


def derive_key(text: str, taken: set[str], fallback: str = "step") -> str:
    """A step key from a label or agent name: ``KYC check`` -> ``kyc_check``; unique."""
    base = re.sub(r"[^a-z0-9]+", "_", (text or "").lower()).strip("_")[:36]
    if not base or not base[0].isalpha():
        base = f"{fallback}_{base}".strip("_") if base else fallback
    key, n = base, 1
    while key in taken:
        n += 1
        key = f"{base}_{n}"
    return key


# --- State -------------------------------------------------------------------------------------


@dataclass
class WorkflowState:
    """What the editor holds: text as typed, rows in order."""

    pattern: str = "sequential"
    description: str = ""
    subject_field: str = ""
    input_fields: list = field(default_factory=list)
    steps: list = field(default_factory=list)
    config: dict = field(default_factory=dict)
    triggers: list = field(default_factory=list)
    meta: dict = field(default_factory=dict)  # name (and team when creating)


def blank_field_row() -> dict:
    return {
        "name": "",
        "type": "text",
        "required": True,
        "personal": False,
        "choices": "",
        "description": "",
    }


def blank_step(role: str = "step", key: str = "") -> dict:
    return {
        "key": key,
        "was": key,
        "auto": "1",  # the editor chose the key: it follows the label until someone edits it
        "label": "",
        "agent_id": "",
        "agent_was": "",
        "role": role,
        "after": [],
        "when": "",
        "mapping": [],
    }


def blank_trigger(kind: str) -> dict:
    return {
        "type": kind,
        "every_minutes": "60" if kind == "schedule" else "",
        "input": "{}" if kind == "schedule" else "",
        "workflow_id": "",
        "outcome": "completed",
        "run_as": "",
    }


def starter_state(pattern: str, *, meta: dict) -> WorkflowState:
    """A new workflow's first rows, shaped like the chosen pattern."""
    keys = {
        "sequential": [("step", "step_1"), ("step", "step_2")],
        "concurrent": [("step", "step_1"), ("step", "step_2"), ("step", "join")],
        "router": [("router", "router"), ("route", "route_1"), ("default", "otherwise")],
        "maker_checker": [("maker", "maker"), ("checker", "checker")],
        "supervisor": [
            ("manager", "manager"),
            ("specialist", "specialist_1"),
            ("specialist", "specialist_2"),
        ],
        "conversation": [("participant", "participant_1"), ("participant", "participant_2")],
    }[pattern]
    steps = [blank_step(role, key) for role, key in keys]
    if pattern == "concurrent":
        steps[2]["after"] = ["step_1", "step_2"]
    config = {key: CONFIG_DEFAULTS[key] for key in CONFIG_KEYS.get(pattern, ())}
    return WorkflowState(
        pattern=pattern,
        input_fields=[blank_field_row()],
        steps=steps,
        config=config,
        meta=dict(meta),
    )


def state_from_definition(definition: dict | None, *, meta: dict) -> WorkflowState:
    definition = definition if isinstance(definition, dict) else {}
    pattern = definition.get("pattern") if definition.get("pattern") in PATTERNS else "sequential"
    config = definition.get("config") if isinstance(definition.get("config"), dict) else {}
    steps = []
    for step in definition.get("steps") or []:
        if not isinstance(step, dict):
            continue
        mapping = step.get("input_mapping") if isinstance(step.get("input_mapping"), dict) else {}
        key = _text(step.get("key"))
        agent = _text(step.get("agent_id"))
        steps.append(
            {
                "key": key,
                "was": key,
                "auto": "",
                "label": _text(step.get("label")) if step.get("label") != key else "",
                "agent_id": agent,
                "agent_was": agent,
                "role": _text(step.get("role")),
                "after": [a for a in step.get("after") or [] if isinstance(a, str)],
                "when": _text(step.get("when")),
                "mapping": [_mapping_row(t, s) for t, s in mapping.items()],
            }
        )
    triggers = []
    for trigger in definition.get("triggers") or []:
        if not isinstance(trigger, dict) or trigger.get("type") not in TRIGGER_TYPES:
            continue
        row = blank_trigger(trigger["type"])
        row["run_as"] = _text(trigger.get("run_as"))
        if trigger["type"] == "schedule":
            row["every_minutes"] = _text(trigger.get("every_minutes"))
            row["input"] = json.dumps(trigger.get("input") or {}, ensure_ascii=False, indent=1)
        elif trigger["type"] == "workflow":
            row["workflow_id"] = _text(trigger.get("workflow_id"))
            row["outcome"] = _text(trigger.get("outcome") or "completed")
        triggers.append(row)
    return WorkflowState(
        pattern=pattern,
        description=_text(definition.get("description")),
        subject_field=_text(definition.get("subject_field")),
        input_fields=[_field_row(f) for f in definition.get("input_fields") or []],
        steps=steps,
        config={key: _text(config.get(key)) for key in CONFIG_KEYS.get(pattern, ())},
        triggers=triggers,
        meta=dict(meta),
    )


def _mapping_row(target, source) -> dict:
    if isinstance(source, dict) and set(source) == {"const"}:
        value = source["const"]
        return {
            "target": _text(target),
            "source": "const",
            "const": value if isinstance(value, str) else json.dumps(value, ensure_ascii=False),
        }
    return {"target": _text(target), "source": _text(source), "const": ""}


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


def state_from_post(data, *, meta_fields=("name",)) -> WorkflowState:
    pattern = data.get("pattern", "")
    steps = []
    for index in row_indices(data, "steps")[:MAX_STEPS]:
        base = f"steps[{index}]"
        row = {col: _cut(data.get(f"{base}.{col}", "")) for col in STEP_COLUMNS}
        row["after"] = [_cut(a) for a in data.getlist(f"{base}.after")][:MAX_STEPS]
        row["mapping"] = [
            {col: _cut(value) for col, value in mapping.items()}
            for mapping in rows_from_post(data, f"{base}.mapping", MAPPING_COLUMNS)
        ][:MAX_MAPPINGS]
        steps.append(row)
    return WorkflowState(
        pattern=pattern,
        description=_cut(data.get("description", "")),
        subject_field=_cut(data.get("subject_field", "")),
        input_fields=[
            {k: _cut(v) if isinstance(v, str) else v for k, v in row.items()}
            for row in rows_from_post(data, "input_fields", FIELD_COLUMNS, FIELD_FLAGS)
        ],
        steps=steps,
        config={key: _cut(data.get(f"config.{key}", "")) for key in CONFIG_KEYS.get(pattern, ())},
        triggers=[
            {k: _cut(v) for k, v in row.items()}
            for row in rows_from_post(data, "triggers", TRIGGER_COLUMNS)
        ][:MAX_TRIGGERS],
        meta={name: _cut(data.get(name, "")) for name in meta_fields},
    )


@dataclass(frozen=True)
class AgentChoice:
    id: int
    name: str
    team: str
    published: int | None

    @property
    def label(self) -> str:
        state = f"v{self.published}" if self.published else "not published"
        return f"{self.name} · {self.team} · {state}"


def as_int(value) -> int | None:
    value = (value or "").strip() if isinstance(value, str) else value
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit() and len(value) < 12:
        return int(value)
    return None
