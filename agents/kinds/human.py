"""The human kind: a person on a team answers, through the escalation inbox.

Executing it never decides: it raises `AwaitingPerson` with the task to open, and the engine
turns that into a human task; the person's answer (validated against the output fields)
becomes the step's decision.
"""

from __future__ import annotations

from agents.engine.taxonomy import AwaitingPerson
from agents.kinds.base import AgentSpec, Decision
from agents.kinds.config import ConfigError

MAX_INSTRUCTIONS = 10_000


def validate_config(config: dict, *, input_fields, output_fields) -> dict:
    if not isinstance(config, dict):
        raise ConfigError("config", "must be an object")
    team_id = config.get("team_id")
    if team_id in (None, ""):
        raise ConfigError("team_id", "choose the team that answers")
    instructions = config.get("instructions", "")
    if not isinstance(instructions, str) or not instructions.strip():
        raise ConfigError("instructions", "tell the person what to decide and how")
    if len(instructions) > MAX_INSTRUCTIONS:
        raise ConfigError("instructions", f"at most {MAX_INSTRUCTIONS} characters")
    if not output_fields:
        raise ConfigError("output_fields", "a human step needs at least one field to fill in")
    return {"team_id": str(team_id), "instructions": instructions.strip()}


class HumanExecutor:
    def execute(self, spec: AgentSpec, inputs: dict) -> Decision:
        raise AwaitingPerson(
            f"waiting for a person of team {spec.config.get('team_id')} to answer",
            team_id=str(spec.config.get("team_id", "")),
            instructions=spec.config.get("instructions", ""),
            output_fields=[f.as_dict() for f in spec.output_fields],
            inputs=inputs,
        )


EXECUTOR = HumanExecutor()
