"""Workflow definitions: the schema the editor writes and the engine runs.

A workflow definition::

    {"description": "...",
     "input_fields": [field...],
     "subject_field": the input field naming the data subject (needed with personal fields),
     "pattern": "sequential" | "concurrent" | "router" | "maker_checker" | "supervisor"
                | "conversation",
     "steps": [{"key": "kyc", "label": "KYC check", "agent_id": 12, "agent_version": 3,
                "role": <role of the pattern>, "after": ["other-key", ...],
                "when": CEL condition (router routes), "input_mapping": {field: source}}],
     "config": {pattern settings: max_rounds, approve_decision, selection_field,
                stop_condition, max_turns},
     "triggers": [{"type": "webhook"} | {"type": "schedule", "every_minutes": n,
                  "input": {...}} | {"type": "workflow", "workflow_id": n,
                  "outcome": "completed" | "rejected" | "cancelled" | "any"}],
     each trigger with an optional "run_as": the username whose `run` permission is checked
     every time it fires (the person who submitted the version when left out)}

Roles by pattern (every pattern may also be started by triggers: that is the event-driven
pattern of DESIGN.md):

- sequential: every step is a ``step``; ``after`` defaults to the previous step.
- concurrent: ``step`` s whose ``after`` may name several earlier steps: empty ``after`` fan
  out at the start, a step after several others is a join (counted in the database).
- router: one ``router`` step, then ``route`` steps, each with a ``when`` condition over
  ``input`` and ``router`` (its output, decision, confidence); at most one ``default`` route.
- maker_checker: one ``maker`` and one ``checker``; ``config.max_rounds``; the checker's
  decision equal to ``config.approve_decision`` ends the loop, anything else sends its
  rationale back to the maker as ``context.feedback``; past the rounds, an escalation.
- supervisor: one ``manager`` and ``specialist`` s; the manager's output field
  ``config.selection_field`` lists the specialist keys to run; their outputs come back to the
  manager as ``context.specialist_outputs`` for the final decision.
- conversation: ``participant`` s take turns in order on ``context.transcript`` until
  ``config.stop_condition`` (CEL over ``last``: the latest turn's decision and output, and
  ``turn``) holds or ``config.max_turns`` is reached, which escalates.

Input mapping sources: ``input.<field>``, ``steps.<key>.output.<field>``,
``steps.<key>.decision`` / ``.confidence`` / ``.rationale``, the pattern's ``context.<name>``,
or ``{"const": value}``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from agents.definitions import MAX_DEFINITION_BYTES, MAX_DESCRIPTION, DefinitionError
from agents.fields import MAX_TEXT, NAME_PATTERN, FieldSpecError, parse_fields

PATTERNS = ("sequential", "concurrent", "router", "maker_checker", "supervisor", "conversation")
ROLES = {
    "sequential": {"step"},
    "concurrent": {"step"},
    "router": {"router", "route", "default"},
    "maker_checker": {"maker", "checker"},
    "supervisor": {"manager", "specialist"},
    "conversation": {"participant"},
}
CONTEXT = {
    "sequential": set(),
    "concurrent": set(),
    "router": set(),
    "maker_checker": {"feedback", "round", "draft"},
    "supervisor": {"specialist_outputs", "phase"},
    "conversation": {"transcript", "turn"},
}
TRIGGER_TYPES = ("webhook", "schedule", "workflow")
OUTCOMES = ("completed", "rejected", "cancelled", "any")
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_STEPS = 50
STEP_SOURCE = re.compile(
    r"^steps\.(?P<key>[a-z][a-z0-9_]*)\.(?:(?P<attr>decision|confidence|rationale)"
    r"|output\.(?P<field>[a-z][a-z0-9_]*))$"
)


@dataclass(frozen=True)
class AgentInfo:
    """What validation needs to know of an agent (the editor and the engine load these)."""

    id: int
    name: str
    published_version: int | None
    input_fields: list  # field dicts of the version the workflow would use
    output_fields: list


def validate_workflow_definition(
    definition, *, agents: dict[int, AgentInfo] | None = None, for_submit: bool = False
) -> dict:
    """The normalised definition, or DefinitionError naming the first problem.

    `agents` maps agent ids to AgentInfo (loaded from the database when None). With
    `for_submit`, every agent must be published and each step is pinned to the published
    version it will run (``agent_version``)."""
    if not isinstance(definition, dict):
        raise DefinitionError("definition", "must be an object")
    size = len(json.dumps(definition, default=str))
    if size > MAX_DEFINITION_BYTES:
        raise DefinitionError(
            "definition", f"is {size} bytes; at most {MAX_DEFINITION_BYTES} are accepted"
        )
    description = definition.get("description", "") or ""
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise DefinitionError("description", f"text of at most {MAX_DESCRIPTION} characters")
    try:
        input_fields = parse_fields(definition.get("input_fields", []), "input_fields")
    except FieldSpecError as exc:
        raise DefinitionError(exc.path, exc.problem) from None
    subject_field = definition.get("subject_field") or None
    if subject_field is not None and not isinstance(subject_field, str):
        raise DefinitionError("subject_field", "the name of an input field")
    if subject_field is not None and subject_field not in {f.name for f in input_fields}:
        raise DefinitionError("subject_field", f"{subject_field!r} is not an input field")
    if subject_field is None and any(f.personal for f in input_fields):
        raise DefinitionError(
            "subject_field", "input fields marked personal need the field naming the data subject"
        )
    pattern = definition.get("pattern")
    if pattern not in PATTERNS:
        raise DefinitionError("pattern", f"one of {', '.join(PATTERNS)}")
    steps = definition.get("steps")
    if not isinstance(steps, list) or not steps:
        raise DefinitionError("steps", "a workflow needs at least one step")
    if len(steps) > MAX_STEPS:
        raise DefinitionError("steps", f"at most {MAX_STEPS} steps")
    if agents is None:
        agents = load_agent_info(
            {
                s.get("agent_id")
                for s in steps
                if isinstance(s, dict) and isinstance(s.get("agent_id"), (int, str))
            },
            for_submit=for_submit,
        )
    normalised_steps = [_step(i, s, pattern) for i, s in enumerate(steps)]
    keys = [s["key"] for s in normalised_steps]
    for index, key in enumerate(keys):
        if keys.index(key) != index:
            raise DefinitionError(f"steps[{index}].key", f"{key!r} is used by two steps")
    config = _pattern_rules(pattern, normalised_steps, definition.get("config") or {})
    _graph_rules(pattern, normalised_steps)
    _agent_rules(normalised_steps, agents, for_submit)
    _mapping_rules(pattern, normalised_steps, input_fields, agents)
    triggers = _triggers(definition.get("triggers") or [], input_fields)
    result = {
        "description": description.strip(),
        "input_fields": [f.as_dict() for f in input_fields],
        "subject_field": subject_field,
        "pattern": pattern,
        "steps": normalised_steps,
        "config": config,
        "triggers": triggers,
    }
    _refuse_long_text(result, "")
    return result


def _refuse_long_text(value, path: str) -> None:
    """Texts the rules above do not bound (constants, schedule inputs, choices) stay within
    what a field value may hold, and no text holds a NUL character."""
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise DefinitionError(path or "definition", f"text of at most {MAX_TEXT} characters")
        if "\x00" in value:  # PostgreSQL cannot store it
            raise DefinitionError(path or "definition", "text may not contain NUL characters")
    elif isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            _refuse_long_text(str(key), where)
            _refuse_long_text(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_long_text(item, f"{path}[{index}]")


def load_agent_info(ids, *, for_submit: bool = False) -> dict[int, AgentInfo]:
    """AgentInfo for the given ids: the published version's fields, or the latest draft's."""
    from agents.models import Agent, AgentVersion

    clean_ids = {i for i in ids if isinstance(i, int) and not isinstance(i, bool)}
    info = {}
    agents = Agent.objects.filter(pk__in=clean_ids).select_related("published_version")
    latest = {}
    for version in AgentVersion.objects.filter(agent_id__in=clean_ids).order_by("number"):
        latest[version.agent_id] = version
    for agent in agents:
        version = agent.published_version or latest.get(agent.pk)
        definition = version.definition if version else {}
        info[agent.pk] = AgentInfo(
            id=agent.pk,
            name=agent.name,
            published_version=agent.published_version.number if agent.published_version else None,
            input_fields=definition.get("input_fields", []),
            output_fields=definition.get("output_fields", []),
        )
    return info


def _step(index: int, step, pattern: str) -> dict:
    where = f"steps[{index}]"
    if not isinstance(step, dict):
        raise DefinitionError(where, "must be an object")
    key = step.get("key")
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        raise DefinitionError(
            f"{where}.key", "lower-case letters, digits and underscores, starting with a letter"
        )
    role = step.get("role") or ("step" if pattern in ("sequential", "concurrent") else None)
    if not isinstance(role, str) or role not in ROLES[pattern]:
        raise DefinitionError(
            f"{where}.role", f"in a {pattern} workflow: one of {', '.join(sorted(ROLES[pattern]))}"
        )
    agent_id = step.get("agent_id")
    if isinstance(agent_id, str) and agent_id.isdigit():
        agent_id = int(agent_id)
    if not isinstance(agent_id, int) or isinstance(agent_id, bool):
        raise DefinitionError(f"{where}.agent_id", "choose an agent")
    label = step.get("label") or key
    if not isinstance(label, str) or len(label) > 100:
        raise DefinitionError(f"{where}.label", "text of at most 100 characters")
    after = step.get("after")
    if after is None:
        after = []
    if not isinstance(after, list) or not all(isinstance(a, str) for a in after):
        raise DefinitionError(f"{where}.after", "a list of step keys")
    when = step.get("when") or ""
    if not isinstance(when, str) or len(when) > 2000:
        raise DefinitionError(f"{where}.when", "a condition of at most 2000 characters")
    mapping = step.get("input_mapping") or {}
    if not isinstance(mapping, dict):
        raise DefinitionError(f"{where}.input_mapping", "an object of field: source")
    return {
        "key": key,
        "label": label.strip(),
        "agent_id": agent_id,
        "agent_version": step.get("agent_version"),
        "role": role,
        "after": list(dict.fromkeys(after)),
        "when": when.strip(),
        "input_mapping": mapping,
    }


def _only(steps, role) -> list[dict]:
    return [s for s in steps if s["role"] == role]


def _int(config, key, default, low, high) -> int:
    value = config.get(key, default)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise DefinitionError(f"config.{key}", f"a whole number from {low} to {high}")
    return value


def _compile_condition(path: str, source: str, variables: set[str]) -> None:
    import cel

    try:
        program = cel.compile(source)
    except Exception as exc:  # the CEL library raises its own error types
        raise DefinitionError(path, f"not a valid condition: {exc}") from None
    unknown = set(program.references().get("variables", [])) - variables
    if unknown:
        raise DefinitionError(
            path,
            f"unknown name(s) {', '.join(sorted(unknown))}; use {', '.join(sorted(variables))}",
        )


def _pattern_rules(pattern: str, steps: list[dict], config: dict) -> dict:
    if not isinstance(config, dict):
        raise DefinitionError("config", "must be an object")
    if pattern == "sequential":
        for index, step in enumerate(steps):
            if index and not step["after"]:
                step["after"] = [steps[index - 1]["key"]]
        return {}
    if pattern == "concurrent":
        return {}
    if pattern == "router":
        routers = _only(steps, "router")
        if len(routers) != 1:
            raise DefinitionError("steps", "a router workflow has exactly one router step")
        if len(_only(steps, "default")) > 1:
            raise DefinitionError("steps", "at most one default route")
        if not _only(steps, "route") and not _only(steps, "default"):
            raise DefinitionError("steps", "add at least one route after the router")
        router_key = routers[0]["key"]
        for index, step in enumerate(steps):
            if step["role"] == "router":
                step["after"] = []
                continue
            step["after"] = [router_key]
            if step["role"] == "route":
                if not step["when"]:
                    raise DefinitionError(
                        f"steps[{index}].when",
                        "a route needs its condition, e.g. router.decision == 'billing'",
                    )
                _compile_condition(f"steps[{index}].when", step["when"], {"input", "router"})
        return {}
    if pattern == "maker_checker":
        if len(_only(steps, "maker")) != 1 or len(_only(steps, "checker")) != 1:
            raise DefinitionError("steps", "a maker-checker workflow has one maker and one checker")
        approve = config.get("approve_decision") or "approve"
        if not isinstance(approve, str) or len(approve) > 100:
            raise DefinitionError("config.approve_decision", "the checker's approving decision")
        maker, checker = _only(steps, "maker")[0], _only(steps, "checker")[0]
        maker["after"], checker["after"] = [], [maker["key"]]
        return {"max_rounds": _int(config, "max_rounds", 3, 1, 10), "approve_decision": approve}
    if pattern == "supervisor":
        if len(_only(steps, "manager")) != 1:
            raise DefinitionError("steps", "a supervisor workflow has exactly one manager")
        if not _only(steps, "specialist"):
            raise DefinitionError("steps", "add at least one specialist")
        selection = config.get("selection_field") or "specialists"
        if not isinstance(selection, str) or not NAME_PATTERN.match(selection):
            raise DefinitionError("config.selection_field", "the manager's output field name")
        manager = _only(steps, "manager")[0]
        for step in steps:
            step["after"] = [] if step is manager else [manager["key"]]
        return {"selection_field": selection}
    if pattern == "conversation":
        if len(_only(steps, "participant")) < 2:
            raise DefinitionError("steps", "a conversation needs at least two participants")
        stop = config.get("stop_condition") or ""
        if isinstance(stop, str) and len(stop) > 2000:
            raise DefinitionError("config.stop_condition", "a condition of at most 2000 characters")
        if not isinstance(stop, str) or not stop.strip():
            raise DefinitionError(
                "config.stop_condition",
                "when the conversation ends, e.g. last.decision == 'agreed'",
            )
        _compile_condition("config.stop_condition", stop, {"last", "turn", "input"})
        for index, step in enumerate(steps):
            step["after"] = [] if index == 0 else [steps[index - 1]["key"]]
        return {"stop_condition": stop.strip(), "max_turns": _int(config, "max_turns", 6, 2, 50)}
    raise AssertionError(pattern)


def _graph_rules(pattern: str, steps: list[dict]) -> None:
    keys = {s["key"]: i for i, s in enumerate(steps)}
    for index, step in enumerate(steps):
        for dependency in step["after"]:
            if dependency not in keys:
                raise DefinitionError(
                    f"steps[{index}].after", f"{dependency!r} is not a step: unreachable"
                )
            if dependency == step["key"]:
                raise DefinitionError(f"steps[{index}].after", "a step cannot wait for itself")
    # Cycles: the loops of maker-checker and conversation are the engine's, never the graph's.
    state: dict[str, int] = {}
    after = {s["key"]: s["after"] for s in steps}

    def visit(key: str, trail: list[str]) -> None:
        state[key] = 1
        for dependency in after[key]:
            if state.get(dependency) == 1:
                cycle = " -> ".join([*trail[trail.index(dependency) :], key, dependency])
                raise DefinitionError(
                    f"steps[{keys[key]}].after",
                    f"cycle {cycle}: loops are only possible in the maker-checker and "
                    "conversation patterns",
                )
            if state.get(dependency) is None:
                visit(dependency, [*trail, key])
        state[key] = 2

    for step in steps:
        if state.get(step["key"]) is None:
            visit(step["key"], [])
    if not any(not s["after"] for s in steps):
        raise DefinitionError("steps", "no step can start: every step waits for another")


def _agent_rules(steps: list[dict], agents: dict[int, AgentInfo], for_submit: bool) -> None:
    for index, step in enumerate(steps):
        info = agents.get(step["agent_id"])
        if info is None:
            raise DefinitionError(f"steps[{index}].agent_id", "no such agent (or not visible)")
        if for_submit:
            if info.published_version is None:
                raise DefinitionError(
                    f"steps[{index}].agent_id",
                    f"agent {info.name!r} is not published yet: publish it first",
                )
            step["agent_version"] = info.published_version
        else:
            step["agent_version"] = info.published_version


def _predecessors(steps: list[dict]) -> dict[str, set[str]]:
    after = {s["key"]: s["after"] for s in steps}
    result: dict[str, set[str]] = {}

    def collect(key: str) -> set[str]:
        if key not in result:
            found: set[str] = set()
            for dependency in after[key]:
                found |= {dependency, *collect(dependency)}
            result[key] = found
        return result[key]

    for key in after:
        collect(key)
    return result


def _mapping_rules(pattern, steps, input_fields, agents) -> None:
    workflow_inputs = {f.name for f in input_fields}
    outputs = {s["key"]: {f["name"] for f in agents[s["agent_id"]].output_fields} for s in steps}
    earlier = _predecessors(steps)
    loop_partners = (
        {s["key"] for s in steps} if pattern in ("maker_checker", "conversation") else set()
    )
    for index, step in enumerate(steps):
        info = agents[step["agent_id"]]
        agent_inputs = {f["name"]: f for f in info.input_fields}
        where = f"steps[{index}].input_mapping"
        for target, source in step["input_mapping"].items():
            if target not in agent_inputs:
                raise DefinitionError(
                    f"{where}.{target}", f"agent {info.name!r} has no input field {target!r}"
                )
            _check_source(
                f"{where}.{target}",
                source,
                workflow_inputs,
                outputs,
                earlier[step["key"]] | (loop_partners - {step["key"]}),
                CONTEXT[pattern],
            )
        unmapped = [
            name
            for name, field in agent_inputs.items()
            if field.get("required", True)
            and name not in step["input_mapping"]
            and name not in workflow_inputs
        ]
        if unmapped:
            raise DefinitionError(
                where, f"required input(s) of {info.name!r} not mapped: {', '.join(unmapped)}"
            )


def _check_source(path, source, workflow_inputs, outputs, visible_steps, context) -> None:
    if isinstance(source, dict) and set(source) == {"const"}:
        return
    if not isinstance(source, str):
        raise DefinitionError(path, "a source like input.amount or steps.kyc.output.risk")
    if source.startswith("input."):
        name = source.removeprefix("input.")
        if name not in workflow_inputs:
            raise DefinitionError(path, f"the workflow has no input field {name!r}")
        return
    if source.startswith("context."):
        name = source.removeprefix("context.")
        if name not in context:
            available = ", ".join(sorted(context)) or "none in this pattern"
            raise DefinitionError(path, f"no context value {name!r} (available: {available})")
        return
    match = STEP_SOURCE.match(source)
    if not match:
        raise DefinitionError(
            path,
            f"{source!r} is not a source; use input.<field>, steps.<key>.output.<field>, "
            "steps.<key>.decision or context.<name>",
        )
    key = match["key"]
    if key not in outputs:
        raise DefinitionError(path, f"there is no step {key!r}")
    if key not in visible_steps:
        raise DefinitionError(path, f"step {key!r} has not run yet when this step starts")
    field = match["field"]
    if field and field not in outputs[key]:
        raise DefinitionError(path, f"step {key!r} has no output field {field!r}")


def _triggers(triggers, input_fields) -> list[dict]:
    if not isinstance(triggers, list):
        raise DefinitionError("triggers", "a list of triggers")
    result = []
    for index, trigger in enumerate(triggers):
        where = f"triggers[{index}]"
        if not isinstance(trigger, dict) or trigger.get("type") not in TRIGGER_TYPES:
            raise DefinitionError(f"{where}.type", f"one of {', '.join(TRIGGER_TYPES)}")
        kind = trigger["type"]
        run_as = trigger.get("run_as") or ""
        if not isinstance(run_as, str) or len(run_as) > 150:
            raise DefinitionError(f"{where}.run_as", "the username the trigger runs as")
        owner = {"run_as": run_as.strip()} if run_as.strip() else {}
        if kind == "webhook":
            result.append({"type": "webhook", **owner})
        elif kind == "schedule":
            every = trigger.get("every_minutes")
            if isinstance(every, str) and every.isdigit():
                every = int(every)
            if not isinstance(every, int) or isinstance(every, bool) or not 1 <= every <= 10080:
                raise DefinitionError(f"{where}.every_minutes", "a whole number from 1 to 10080")
            data = trigger.get("input") or {}
            if not isinstance(data, dict):
                raise DefinitionError(f"{where}.input", "the input each scheduled run starts with")
            result.append({"type": "schedule", "every_minutes": every, "input": data, **owner})
        else:
            workflow_id = trigger.get("workflow_id")
            if isinstance(workflow_id, str) and workflow_id.isdigit():
                workflow_id = int(workflow_id)
            if not isinstance(workflow_id, int) or isinstance(workflow_id, bool):
                raise DefinitionError(f"{where}.workflow_id", "choose the workflow to follow")
            outcome = trigger.get("outcome") or "completed"
            if outcome not in OUTCOMES:
                raise DefinitionError(f"{where}.outcome", f"one of {', '.join(OUTCOMES)}")
            result.append(
                {"type": "workflow", "workflow_id": workflow_id, "outcome": outcome, **owner}
            )
    return result
