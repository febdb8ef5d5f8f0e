"""The workflow editor: one form for a whole workflow definition.

Like the agent editor (`agents.forms.definition`), every input is named by the path of the
definition value it edits, so a `DefinitionError` from the services lands next to its input;
``steps[2].input_mapping.risk`` lands on the mapping row whose target is ``risk``.

Rows are added, removed and moved by submit buttons named ``op`` (``add:steps``,
``remove:steps[2].mapping:0``, ``up:steps:1``, ``add:triggers:schedule``); ``op=refresh``
(sent by htmx when a step's agent, role or `after`, or the pattern changes) re-reads the form
and fills in the mapping rows of an agent just chosen. Only ``op=save`` writes anything, and
only through `agents.versions`. Agents and workflows offered are those the person may view,
and a posted id outside them is refused here, before the services see it.
"""

from __future__ import annotations

import json
import re

from agents.forms.workflow_render import EditorRendering
from agents.forms.workflow_state import (
    CONFIG_DEFAULTS,
    CONFIG_KEYS,
    DEFAULT_ROLES,
    FIELD_COLUMNS,
    FIELD_FLAGS,
    MAPPING_COLUMNS,
    MAX_MAPPINGS,
    MAX_ROWS,
    MAX_TRIGGERS,
    STEP_COLUMNS,
    TRIGGER_COLUMNS,
    AgentChoice,
    WorkflowState,
    as_int,
    blank_field_row,
    blank_step,
    blank_trigger,
    derive_key,
    dom_id,
)
from agents.models import Agent, Workflow
from agents.workflow_spec import (
    CONTEXT,
    KEY_PATTERN,
    MAX_STEPS,
    PATTERNS,
    ROLES,
    TRIGGER_TYPES,
    load_agent_info,
)

OP = re.compile(
    r"^(add|remove|up|down):(input_fields|steps|triggers|steps\[(\d{1,4})\]\.mapping)"
    r"(?::(\d{1,4}|webhook|schedule|workflow))?$"
)
SEGMENT = re.compile(r"\.?([^.\[\]]+)|\[(\d+)\]")
STEP_SOURCE = re.compile(r"^steps\.([a-z][a-z0-9_]*)\.")


# --- What the person may choose ----------------------------------------------------------------


class EditorChoices:
    """Agents and workflows the person may view (two queries), and the fields of the agents
    the steps use (loaded on demand, once)."""

    def __init__(self, user, *, workflow: Workflow | None = None):
        agents = (
            Agent.objects.restrict(user, "view")
            .select_related("team", "published_version")
            .only("id", "name", "team__name", "published_version__number")
            .order_by("name", "id")
        )
        self.agents = [
            AgentChoice(
                a.pk,
                a.name,
                a.team.name,
                a.published_version.number if a.published_version else None,
            )
            for a in agents
        ]
        self.agent_ids = {a.id for a in self.agents}
        workflows = Workflow.objects.restrict(user, "view").only("id", "name").order_by("name")
        if workflow is not None:
            workflows = workflows.exclude(pk=workflow.pk)
        self.workflows = [(w.pk, w.name) for w in workflows]
        self.workflow_ids = {pk for pk, _ in self.workflows}
        self._info: dict = {}

    def info(self, ids) -> dict:
        wanted = {i for i in ids if i in self.agent_ids and i not in self._info}
        if wanted:
            self._info.update(load_agent_info(wanted))
        return {i: self._info[i] for i in ids if i in self._info}


# --- The editor --------------------------------------------------------------------------------


class WorkflowEditor(EditorRendering):
    """Holds the editor's state, turns it into a definition and places errors."""

    def __init__(self, state: WorkflowState, *, choices: EditorChoices):
        self.state = state
        self.choices = choices
        self.errors: dict[str, list[str]] = {}
        self._row_of_field: list[int] = []  # definition index -> form row of input_fields
        self._row_of_mapping: dict[tuple[int, str], int] = {}
        self.fill_keys()

    # --- Normalising what was typed -------------------------------------------------------------

    @property
    def pattern(self) -> str:
        return self.state.pattern if self.state.pattern in PATTERNS else "sequential"

    def fill_keys(self) -> None:
        """Give key-less steps a key (from the label or agent; a key the editor chose follows
        the label until someone edits it), and follow renamed keys in the sources and
        `after` lists that named them."""
        names = {a.id: a.name for a in self.choices.agents}
        for step in self.state.steps:
            step["key"] = step["key"].strip()
            if step.get("auto") and step["key"] != step.get("was"):
                step["auto"] = ""  # edited by hand: keep it
        taken = {s["key"] for s in self.state.steps if s["key"] and not s.get("auto")}
        for index, step in enumerate(self.state.steps):
            if step["key"] and not step.get("auto"):
                continue
            agent = names.get(as_int(step["agent_id"]) or -1, "")
            text = step["label"].strip() or agent
            if step["key"] and not text:
                taken.add(step["key"])
                continue
            step["key"] = derive_key(text or f"step {index + 1}", taken)
            taken.add(step["key"])
        renamed = {
            s["was"]: s["key"]
            for s in self.state.steps
            if s.get("was") and s["was"] != s["key"] and KEY_PATTERN.match(s["key"])
        }
        if renamed:
            for step in self.state.steps:
                step["after"] = [renamed.get(a, a) for a in step["after"]]
                for row in step["mapping"]:
                    match = STEP_SOURCE.match(row["source"])
                    if match and match.group(1) in renamed:
                        new = renamed[match.group(1)]
                        row["source"] = f"steps.{new}." + row["source"][match.end() :]
        for step in self.state.steps:
            step["was"] = step["key"]

    def sync(self) -> None:
        """After an edit (not a save): roles that fit the pattern, and mapping rows for the
        input fields of every step whose agent changed."""
        pattern = self.pattern
        self.state.pattern = pattern
        first, other = DEFAULT_ROLES[pattern]
        for index, step in enumerate(self.state.steps):
            if step["role"] not in ROLES[pattern]:
                step["role"] = first if index == 0 else other
        for key in CONFIG_KEYS.get(pattern, ()):
            if key not in self.state.config:
                self.state.config[key] = CONFIG_DEFAULTS[key]
        ids = [as_int(s["agent_id"]) for s in self.state.steps]
        info = self.choices.info([i for i in ids if i is not None])
        for index, step in enumerate(self.state.steps):
            agent = info.get(as_int(step["agent_id"]) or -1)
            changed = step["agent_id"] != step["agent_was"]
            if agent is not None and changed:
                existing = {row["target"]: row for row in step["mapping"]}
                step["mapping"] = [
                    existing.get(f["name"])
                    or {"target": f["name"], "source": self.guess(index, f["name"]), "const": ""}
                    for f in agent.input_fields
                ]
            step["agent_was"] = step["agent_id"]

    def guess(self, index: int, target: str) -> str:
        """A likely source for a step's input `target`: the pattern's context, a workflow
        input of that name, or the latest earlier step with an output of that name."""
        if target in CONTEXT[self.pattern]:
            return f"context.{target}"
        if target in self.input_names():
            return f"input.{target}"
        visible = self.visible_steps().get(index, [])
        info = self.step_agents()
        for other in reversed(visible):
            agent = info.get(other)
            if agent and target in {f["name"] for f in agent.output_fields}:
                return f"steps.{self.state.steps[other]['key']}.output.{target}"
        return ""

    # --- Row operations --------------------------------------------------------------------------

    def apply(self, op: str) -> bool:
        """Add, remove or move a row; False when `op` is not one the editor knows."""
        match = OP.match(op or "")
        if not match:
            return False
        action, path, step_index, arg = match.groups()
        if step_index is not None:
            i = int(step_index)
            if not 0 <= i < len(self.state.steps):
                return False
            rows, limit = self.state.steps[i]["mapping"], MAX_MAPPINGS
            blank = {"target": "", "source": "", "const": ""}
        else:
            rows = getattr(self.state, path)
            limit = {"input_fields": MAX_ROWS, "steps": MAX_STEPS, "triggers": MAX_TRIGGERS}[path]
            if path == "steps":
                first, other = DEFAULT_ROLES[self.pattern]
                blank = blank_step(first if not rows else other)
            elif path == "triggers":
                if arg not in TRIGGER_TYPES:
                    return False
                blank = blank_trigger(arg)
            else:
                blank = blank_field_row()
        if action == "add":
            if len(rows) >= limit:
                self.add_error(path, f"at most {limit} rows")
                return True
            rows.append(blank)
            if path == "steps":
                self.fill_keys()
            return True
        if arg is None or not arg.isdigit() or not 0 <= int(arg) < len(rows):
            return False
        i = int(arg)
        if action == "remove":
            del rows[i]
        elif action == "up" and i > 0:
            rows[i - 1], rows[i] = rows[i], rows[i - 1]
        elif action == "down" and i < len(rows) - 1:
            rows[i + 1], rows[i] = rows[i], rows[i + 1]
        return True

    # --- Definition -----------------------------------------------------------------------------

    def to_definition(self) -> dict:
        """The definition the form holds. Problems found while reading it (an agent or
        workflow not offered, JSON that does not parse, a mapping row half filled) are
        recorded in `errors`; the services find the rest."""
        state, pattern = self.state, self.state.pattern
        if "\x00" in state.meta.get("name", ""):
            self.add_error("name", "a name may not contain NUL characters")
        fields = []
        self._row_of_field = []
        for index, row in enumerate(state.input_fields):
            if not any(str(row.get(col, "")).strip() for col in ("name", "choices", "description")):
                continue  # a row added and left empty
            self._row_of_field.append(index)
            fields.append(_field_spec(row))
        steps = [self._step(index, row) for index, row in enumerate(state.steps)]
        config = {}
        for key in CONFIG_KEYS.get(pattern, ()):
            value = state.config.get(key, "").strip()
            if value:
                config[key] = value
        return {
            "description": state.description,
            "input_fields": fields,
            "subject_field": state.subject_field.strip() or None,
            "pattern": pattern,
            "steps": steps,
            "config": config,
            "triggers": [self._trigger(i, row) for i, row in enumerate(state.triggers)],
        }

    def _step(self, index: int, row: dict) -> dict:
        base = f"steps[{index}]"
        agent_id = as_int(row["agent_id"])
        if agent_id is None:
            self.add_error(f"{base}.agent_id", "choose an agent")
        elif agent_id not in self.choices.agent_ids:
            self.add_error(f"{base}.agent_id", "choose one of the agents you may view")
        step = {
            "key": row["key"],
            "label": row["label"].strip(),
            "agent_id": agent_id if agent_id is not None else row["agent_id"],
            "role": row["role"],
        }
        if self.state.pattern in ("sequential", "concurrent"):
            step["role"] = "step"
            step["after"] = row["after"]
        if self.state.pattern == "router":
            step["when"] = row["when"].strip()
        inputs = {}
        info = self.choices.info([agent_id]).get(agent_id) if agent_id is not None else None
        if info is not None:
            inputs = {f["name"]: f for f in info.input_fields}
        mapping = {}
        for j, mrow in enumerate(row["mapping"]):
            where = f"{base}.mapping[{j}]"
            target, source = mrow["target"].strip(), mrow["source"].strip()
            if not target and not source:
                continue
            if not target:
                self.add_error(f"{where}.target", "choose the agent's input field")
                continue
            if target in mapping:
                self.add_error(f"{where}.target", f"{target!r} is mapped twice")
                continue
            if not source:
                self.add_error(f"{where}.source", "choose where the value comes from")
                continue
            self._row_of_mapping[(index, target)] = j
            if source == "const":
                value = _constant(mrow["const"], inputs.get(target, {}).get("type", "text"))
                if isinstance(value, ValueError):
                    self.add_error(f"{where}.const", str(value))
                    continue
                mapping[target] = {"const": value}
            else:
                mapping[target] = source
        step["input_mapping"] = mapping
        return step

    def _trigger(self, index: int, row: dict) -> dict:
        trigger = self._trigger_kind(index, row)
        if row.get("run_as", "").strip():
            trigger["run_as"] = row["run_as"].strip()
        return trigger

    def _trigger_kind(self, index: int, row: dict) -> dict:
        base = f"triggers[{index}]"
        kind = row["type"]
        if kind == "schedule":
            text = row["input"].strip() or "{}"
            try:
                data = json.loads(text)
            except ValueError as exc:
                self.add_error(f"{base}.input", f"not valid JSON: {exc}")
                data = {}
            if not isinstance(data, dict):
                self.add_error(f"{base}.input", 'a JSON object of input values, e.g. {"a": 1}')
                data = {}
            return {"type": kind, "every_minutes": row["every_minutes"].strip(), "input": data}
        if kind == "workflow":
            workflow_id = as_int(row["workflow_id"])
            if workflow_id not in self.choices.workflow_ids:
                self.add_error(f"{base}.workflow_id", "choose one of the workflows you may view")
            return {"type": kind, "workflow_id": workflow_id, "outcome": row["outcome"]}
        return {"type": kind}

    # --- Errors ---------------------------------------------------------------------------------

    def add_error(self, path: str, message: str) -> None:
        """Place `message` on the input editing `path`, or on the nearest row or section."""
        place = self.place(path)
        if message not in self.errors.get(place, []):
            self.errors.setdefault(place, []).append(message)

    def add_definition_error(self, path: str, problem: str) -> None:
        """A services' error path (definition paths) turned into the form's paths."""
        match = re.match(r"^steps\[(\d+)\]\.input_mapping(?:\.([^.\[]+)(.*))?$", path)
        if match:
            index, target, rest = int(match.group(1)), match.group(2), match.group(3) or ""
            j = self._row_of_mapping.get((index, target)) if target else None
            if j is None:
                path = f"steps[{index}].mapping"
            else:
                agent = (
                    as_int(self.state.steps[index]["agent_id"])
                    if index < len(self.state.steps)
                    else None
                )
                info = self.choices.info([agent]).get(agent) if agent is not None else None
                inputs = {f["name"] for f in info.input_fields} if info else set()
                column = "target" if target not in inputs else "source"
                if rest.startswith(".const"):
                    column = "const"
                path = f"steps[{index}].mapping[{j}].{column}"
        match = re.match(r"^input_fields\[(\d+)\](.*)$", path)
        if match and int(match.group(1)) < len(self._row_of_field):
            path = f"input_fields[{self._row_of_field[int(match.group(1))]}]{match.group(2)}"
        self.add_error(path, problem)

    def place(self, path: str) -> str:
        known = self.known_paths()
        current = path
        while current:
            if current in known:
                return current
            current = _parent(current)
        return ""

    def known_paths(self) -> set[str]:
        paths = {
            "name",
            "team",
            "description",
            "subject_field",
            "pattern",
            "input_fields",
            "steps",
            "config",
            "triggers",
        }
        paths.update(f"config.{key}" for key in CONFIG_KEYS.get(self.pattern, ()))
        for index, _row in enumerate(self.state.input_fields):
            base = f"input_fields[{index}]"
            paths.add(base)
            paths.update(f"{base}.{col}" for col in (*FIELD_COLUMNS, *FIELD_FLAGS))
        for index, step in enumerate(self.state.steps):
            base = f"steps[{index}]"
            paths.update({base, f"{base}.mapping", f"{base}.after"})
            paths.update(f"{base}.{col}" for col in STEP_COLUMNS)
            for j, _m in enumerate(step["mapping"]):
                paths.add(f"{base}.mapping[{j}]")
                paths.update(f"{base}.mapping[{j}].{col}" for col in MAPPING_COLUMNS)
        for index, _row in enumerate(self.state.triggers):
            base = f"triggers[{index}]"
            paths.add(base)
            paths.update(f"{base}.{col}" for col in TRIGGER_COLUMNS)
        return paths

    @property
    def has_errors(self) -> bool:
        return bool(self.errors)

    def error_list(self) -> list[dict]:
        """Every error with a reader's name for where it is, for the summary at the top."""
        return [
            {"where": self.label_of(path), "message": message, "anchor": dom_id(path or "form")}
            for path, messages in self.errors.items()
            for message in messages
        ]

    def label_of(self, path: str) -> str:
        if not path:
            return "Workflow"
        words: list[str] = []
        parts = SEGMENT.findall(path)
        for position, (name, index) in enumerate(parts):
            if index:
                n = int(index)
                if words and words[-1] == "Step" and n < len(self.state.steps):
                    step = self.state.steps[n]
                    title = step["label"].strip() or step["key"]
                    words[-1] = f"Step {n + 1} \u2018{title}\u2019" if title else f"Step {n + 1}"
                elif words and words[-1] == "mapping" and position >= 3:
                    step = self.state.steps[int(parts[1][1])]
                    target = step["mapping"][n]["target"] if n < len(step["mapping"]) else ""
                    words[-1] = f"input {target}" if target else f"mapping row {n + 1}"
                elif words:
                    words[-1] = f"{words[-1]} {n + 1}"
            else:
                words.append(PATH_LABELS.get(name, name.replace("_", " ")))
        return " · ".join(w for w in words if w) or "Workflow"

    # --- Rendering ------------------------------------------------------------------------------
    def input_names(self) -> list[str]:
        return [
            row["name"].strip()
            for row in self.state.input_fields
            if row["name"].strip() and re.match(r"^[a-z][a-z0-9_]*$", row["name"].strip())
        ]

    def step_agents(self) -> dict[int, object]:
        """Step index -> AgentInfo of its agent (when chosen and visible)."""
        ids = {i: as_int(s["agent_id"]) for i, s in enumerate(self.state.steps)}
        info = self.choices.info([a for a in ids.values() if a is not None])
        return {i: info[a] for i, a in ids.items() if a in info}

    def effective_after(self) -> list[list[str]]:
        """Each step's `after` as the services will normalise it, for the pattern."""
        steps, pattern = self.state.steps, self.pattern
        keys = [s["key"] for s in steps]
        result: list[list[str]] = []
        by_role = {}
        for s in steps:
            by_role.setdefault(s["role"], s["key"])
        for index, step in enumerate(steps):
            if pattern == "sequential":
                result.append(step["after"] or (keys[index - 1 : index] if index else []))
            elif pattern == "concurrent":
                result.append(list(step["after"]))
            elif pattern == "conversation":
                result.append(keys[index - 1 : index] if index else [])
            else:
                lead = {"router": "router", "maker_checker": "maker", "supervisor": "manager"}
                head = by_role.get(lead[pattern])
                result.append([] if step["key"] == head or head is None else [head])
        return result

    def visible_steps(self) -> dict[int, list[int]]:
        """Step index -> indices of the steps whose results it may use, in step order."""
        steps = self.state.steps
        index_of = {s["key"]: i for i, s in enumerate(steps)}
        if self.pattern in ("maker_checker", "conversation"):
            return {i: [j for j in range(len(steps)) if j != i] for i in range(len(steps))}
        after = self.effective_after()
        result = {}
        for i in range(len(steps)):
            seen, todo = set(), list(after[i])
            while todo:
                key = todo.pop()
                j = index_of.get(key)
                if j is None or j in seen or j == i:
                    continue
                seen.add(j)
                todo.extend(after[j])
            result[i] = sorted(seen)
        return result


PATH_LABELS = {
    "input_fields": "Input field",
    "steps": "Step",
    "triggers": "Trigger",
    "config": "Pattern settings",
    "agent_id": "agent",
    "input_mapping": "mapping",
    "mapping": "mapping",
    "every_minutes": "every (minutes)",
    "workflow_id": "workflow",
    "max_rounds": "max rounds",
    "approve_decision": "approving decision",
    "selection_field": "selection field",
    "stop_condition": "stop condition",
    "max_turns": "max turns",
    "const": "constant",
    "subject_field": "data subject field",
    "run_as": "runs as",
}


def _parent(path: str) -> str:
    if path.endswith("]"):
        return path[: path.rindex("[")]
    if "." in path:
        return path[: path.rindex(".")]
    return ""


def _field_spec(row: dict) -> dict:
    spec = {
        "name": str(row.get("name", "")).strip(),
        "type": row.get("type", ""),
        "required": bool(row.get("required")),
        "personal": bool(row.get("personal")),
        "description": str(row.get("description", "")),
    }
    if spec["type"] == "choice":
        spec["choices"] = [c.strip() for c in str(row.get("choices", "")).split(",") if c.strip()]
    return spec


def _constant(text: str, kind: str):
    """A constant typed in the form, as the target field's type; ValueError if it is not."""
    text = text.strip() if kind != "text" else text
    if kind == "number":
        try:
            number = float(text)
        except ValueError:
            return ValueError(f"expected a number, got {text[:40]!r}")
        return int(number) if number.is_integer() and "." not in text else number
    if kind == "boolean":
        if text.lower() in {"true", "yes", "1"}:
            return True
        if text.lower() in {"false", "no", "0"}:
            return False
        return ValueError("expected true or false")
    if kind == "json":
        try:
            return json.loads(text)
        except ValueError as exc:
            return ValueError(f"not valid JSON: {exc}")
    return text
