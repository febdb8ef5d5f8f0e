"""What the workflow editor's template shows: cells with their errors, the rows of each list,
the sources a mapping may choose from. A mixin of `WorkflowEditor`, which holds the state."""

from __future__ import annotations

from agents.fields import FIELD_TYPES
from agents.forms.workflow_state import (
    ATTRIBUTES,
    CONFIG_KEYS,
    FIELD_COLUMNS,
    FIELD_FLAGS,
    OUTCOME_LABELS,
    PATTERN_CHOICES,
    PATTERN_HELP,
    ROLE_LABELS,
    ROLE_ORDER,
    TRIGGER_COLUMNS,
    AgentChoice,
    as_int,
    dom_id,
)
from agents.workflow_spec import CONTEXT, OUTCOMES, ROLES


class EditorRendering:
    def cell(self, path: str, value="") -> dict:
        return {"name": path, "id": dom_id(path), "value": value, "errors": self.errors.get(path)}

    def source_groups(self, index: int, current: str) -> list[tuple[str, list]]:
        groups = []
        inputs = [(f"input.{n}", f"Workflow input · {n}") for n in self.input_names()]
        if inputs:
            groups.append(("Workflow input", inputs))
        info = self.step_agents()
        for j in self.visible_steps().get(index, []):
            step = self.state.steps[j]
            title = step["label"].strip() or step["key"]
            options = []
            agent = info.get(j)
            if agent is not None:
                options += [
                    (f"steps.{step['key']}.output.{f['name']}", f"{title} · {f['name']}")
                    for f in agent.output_fields
                ]
            options += [
                (f"steps.{step['key']}.{attr}", f"{title} · its {label}")
                for attr, label in ATTRIBUTES
            ]
            groups.append((f"Step \u2018{title}\u2019 ({step['key']})", options))
        context = [(f"context.{n}", f"Context · {n}") for n in sorted(CONTEXT[self.pattern])]
        if context:
            groups.append(("Context of the pattern", context))
        groups.append(("Other", [("const", "A constant value")]))
        offered = {value for _, options in groups for value, _ in options}
        if current and current not in offered:
            groups.append(("Not available here", [(current, f"{current}")]))
        return groups

    def step_rows(self) -> list[dict]:
        info = self.step_agents()
        pattern = self.pattern
        keys = [s["key"] for s in self.state.steps]
        agents_by_id = {a.id: a for a in self.choices.agents}
        rows = []
        for index, step in enumerate(self.state.steps):
            base = f"steps[{index}]"
            agent = info.get(index)
            agent_id = as_int(step["agent_id"])
            targets = [(f["name"], _target_label(f)) for f in agent.input_fields] if agent else []
            mapping_rows = []
            for j, mrow in enumerate(step["mapping"]):
                mbase = f"{base}.mapping[{j}]"
                options = list(targets)
                if mrow["target"] and mrow["target"] not in {t for t, _ in targets}:
                    options.append((mrow["target"], f"{mrow['target']} (not an input here)"))
                mapping_rows.append(
                    {
                        "index": j,
                        "base": mbase,
                        "marker": f"{mbase}._row",
                        "errors": self.errors.get(mbase),
                        "target": self.cell(f"{mbase}.target", mrow["target"]),
                        "source": self.cell(f"{mbase}.source", mrow["source"]),
                        "const": self.cell(f"{mbase}.const", mrow["const"]),
                        "targets": options,
                        "groups": self.source_groups(index, mrow["source"]),
                        "remove_op": f"remove:{base}.mapping:{j}",
                    }
                )
            agent_options = list(self.choices.agents)
            if agent_id is not None and agent_id not in agents_by_id:
                agent_options.append(AgentChoice(agent_id, f"Agent #{agent_id}", "?", None))
            rows.append(
                {
                    "index": index,
                    "number": index + 1,
                    "base": base,
                    "dom_id": dom_id(base),
                    "marker": f"{base}._row",
                    "errors": self.errors.get(base),
                    "key": self.cell(f"{base}.key", step["key"]),
                    "was": self.cell(f"{base}.was", step["was"]),
                    "auto": self.cell(f"{base}.auto", step.get("auto", "")),
                    "label": self.cell(f"{base}.label", step["label"]),
                    "agent_id": self.cell(f"{base}.agent_id", step["agent_id"]),
                    "agent_was": self.cell(f"{base}.agent_was", step["agent_was"]),
                    "role": self.cell(f"{base}.role", step["role"]),
                    "when": self.cell(f"{base}.when", step["when"]),
                    "after": self.cell(f"{base}.after", step["after"]),
                    "after_choices": [
                        k
                        for k in (keys[:index] if pattern == "sequential" else keys)
                        if k != step["key"]
                    ],
                    "mapping_errors": self.errors.get(f"{base}.mapping"),
                    "mapping_id": dom_id(f"{base}.mapping"),
                    "mappings": mapping_rows,
                    "agent": agents_by_id.get(agent_id) if agent_id is not None else None,
                    "agent_options": agent_options,
                    "agent_has_inputs": bool(targets),
                    "roles": [(r, ROLE_LABELS[r]) for r in ROLE_ORDER if r in ROLES[pattern]],
                    "add_mapping_op": f"add:{base}.mapping",
                    "remove_op": f"remove:steps:{index}",
                    "up_op": f"up:steps:{index}" if index else "",
                    "down_op": f"down:steps:{index}" if index < len(keys) - 1 else "",
                }
            )
        return rows

    def field_rows(self) -> list[dict]:
        rows = []
        for index, row in enumerate(self.state.input_fields):
            base = f"input_fields[{index}]"
            rows.append(
                {
                    "index": index,
                    "base": base,
                    "dom_id": dom_id(base),
                    "marker": f"{base}._row",
                    "errors": self.errors.get(base),
                    "cells": {
                        col: self.cell(f"{base}.{col}", row.get(col, ""))
                        for col in (*FIELD_COLUMNS, *FIELD_FLAGS)
                    },
                    "remove_op": f"remove:input_fields:{index}",
                }
            )
        return rows

    def trigger_rows(self) -> list[dict]:
        rows = []
        for index, row in enumerate(self.state.triggers):
            base = f"triggers[{index}]"
            rows.append(
                {
                    "index": index,
                    "base": base,
                    "dom_id": dom_id(base),
                    "type": row["type"],
                    "marker": f"{base}._row",
                    "errors": self.errors.get(base),
                    "cells": {col: self.cell(f"{base}.{col}", row[col]) for col in TRIGGER_COLUMNS},
                    "remove_op": f"remove:triggers:{index}",
                }
            )
        return rows

    def subject_choices(self) -> list[tuple[str, str]]:
        names = self.input_names()
        current = self.state.subject_field
        choices = [("", "None: no input names a person")] + [(n, n) for n in names]
        if current and current not in names:
            choices.append((current, f"{current} (no such input field)"))
        return choices

    def config_cells(self) -> dict:
        return {
            key: self.cell(f"config.{key}", self.state.config.get(key, ""))
            for key in CONFIG_KEYS.get(self.pattern, ())
        }

    def selection_suggestions(self) -> list[str]:
        """The manager's output fields, offered for the supervisor's selection field."""
        info = self.step_agents()
        for index, step in enumerate(self.state.steps):
            if step["role"] == "manager" and index in info:
                return [f["name"] for f in info[index].output_fields]
        return []

    def render_context(self) -> dict:
        return {
            "editor": self,
            "pattern": self.pattern,
            "pattern_help": PATTERN_HELP[self.pattern],
            "pattern_choices": PATTERN_CHOICES,
            "pattern_cell": self.cell("pattern", self.pattern),
            "description": self.cell("description", self.state.description),
            "subject": self.cell("subject_field", self.state.subject_field),
            "subject_choices": self.subject_choices(),
            "field_rows": self.field_rows(),
            "field_types": FIELD_TYPES,
            "step_rows": self.step_rows(),
            "trigger_rows": self.trigger_rows(),
            "config": self.config_cells(),
            "selection_suggestions": self.selection_suggestions(),
            "context_names": sorted(CONTEXT[self.pattern]),
            "workflow_choices": self.choices.workflows,
            "outcomes": [(o, OUTCOME_LABELS.get(o, o)) for o in OUTCOMES],
            "uses_after": self.pattern in ("sequential", "concurrent"),
            "uses_when": self.pattern == "router",
            "uses_roles": self.pattern not in ("sequential", "concurrent"),
            "error_list": self.error_list(),
            "section_errors": {
                name: self.errors.get(name)
                for name in ("steps", "input_fields", "triggers", "config", "")
            },
            "general_errors": self.errors.get(""),
        }


def _target_label(spec: dict) -> str:
    required = "" if spec.get("required", True) is False else " *"
    return f"{spec['name']} ({spec.get('type', 'text')}){required}"
