"""Inputs of a step from the workflow input, earlier outputs and the pattern's context."""

from __future__ import annotations

_MISSING = object()


class MappingProblem(ValueError):
    def __init__(self, target: str, source: str, problem: str):
        self.target = target
        self.source = source
        super().__init__(f"{target} <- {source}: {problem}")


def resolve_source(source, *, run_input: dict, outputs: dict, context: dict):
    """The value a mapping source names; _MISSING when the source produced nothing.

    `outputs` maps step keys to {"output", "decision", "confidence", "rationale"} of the
    latest finished activation."""
    if isinstance(source, dict) and "const" in source:
        return source["const"]
    if source.startswith("input."):
        return run_input.get(source[6:], _MISSING)
    if source.startswith("context."):
        return context.get(source[8:], _MISSING)
    _, key, rest = source.split(".", 2)
    result = outputs.get(key)
    if result is None:
        return _MISSING
    if rest.startswith("output."):
        return (result.get("output") or {}).get(rest[7:], _MISSING)
    return result.get(rest, _MISSING)


def step_input(
    step: dict, agent_fields: list[dict], *, run_input, outputs, context
) -> tuple[dict, list]:
    """(inputs for the agent, sources from earlier steps that produced nothing).

    Agent input fields not mapped take the workflow input of the same name."""
    values, empty_handoffs = {}, []
    mapping = step.get("input_mapping") or {}
    for field in agent_fields:
        name = field["name"]
        source = mapping.get(name, f"input.{name}")
        value = resolve_source(source, run_input=run_input, outputs=outputs, context=context)
        if value is _MISSING or value is None or value == "":
            if isinstance(source, str) and source.startswith("steps."):
                empty_handoffs.append({"field": name, "source": source})
            continue
        values[name] = value
    return values, empty_handoffs
