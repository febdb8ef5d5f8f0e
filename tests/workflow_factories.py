"""Agents for workflow tests, built through the real services, and the editor's form data.

Human agents need nothing outside (a person answers), so they are the simplest to publish:
`builder` writes them, `approver` publishes them (four-eyes).
"""

from __future__ import annotations

from agents import versions
from agents.models import Agent, Workflow
from governance.models import Team


def field(name: str, type: str = "text", *, required: bool = True, **extra) -> dict:
    return {"name": name, "type": type, "required": required, **extra}


def human_definition(team: Team, inputs, outputs, instructions="Decide.") -> dict:
    return {
        "kind": "human",
        "description": "A person decides",
        "input_fields": [field(n) if isinstance(n, str) else n for n in inputs],
        "output_fields": [field(n) if isinstance(n, str) else n for n in outputs],
        "config": {"team_id": team.pk, "instructions": instructions},
    }


def human_agent(people, team: Team, name: str, inputs, outputs, *, publish=True) -> Agent:
    agent = versions.create(
        versions.AGENT,
        actor=people["builder"],
        name=name,
        team=team,
        definition=human_definition(team, inputs, outputs),
    )
    if publish:
        versions.submit(agent, actor=people["builder"])
        versions.approve(agent, actor=people["approver"], number=1)
        agent.refresh_from_db()
    return agent


def workflow(people, team: Team, name: str, definition: dict) -> Workflow:
    return versions.create(
        versions.WORKFLOW, actor=people["builder"], name=name, team=team, definition=definition
    )


def editor_data(
    *,
    pattern: str,
    steps: list[dict],
    input_fields=(),
    config=None,
    triggers=(),
    name="",
    team=None,
    description="",
    subject_field="",
    op="save",
) -> dict:
    """The POST data of the workflow editor (names are definition paths, rows carry markers).

    A step: {"key", "label", "agent_id", "role", "after": [...], "when",
    "mapping": [(target, source) or (target, "const", value)]}."""
    data: dict = {"op": op, "pattern": pattern, "description": description}
    if name:
        data["name"] = name
    if team is not None:
        data["team"] = str(team.pk)
    data["subject_field"] = subject_field
    for i, spec in enumerate(input_fields):
        base = f"input_fields[{i}]"
        data[f"{base}._row"] = "1"
        data[f"{base}.name"] = spec["name"]
        data[f"{base}.type"] = spec.get("type", "text")
        data[f"{base}.choices"] = ", ".join(spec.get("choices", []))
        data[f"{base}.description"] = spec.get("description", "")
        if spec.get("required", True):
            data[f"{base}.required"] = "on"
        if spec.get("personal"):
            data[f"{base}.personal"] = "on"
    for i, step in enumerate(steps):
        base = f"steps[{i}]"
        data[f"{base}._row"] = "1"
        data[f"{base}.key"] = step.get("key", "")
        data[f"{base}.was"] = step.get("key", "")
        data[f"{base}.label"] = step.get("label", "")
        data[f"{base}.agent_id"] = str(step.get("agent_id", ""))
        data[f"{base}.agent_was"] = str(step.get("agent_id", ""))
        data[f"{base}.role"] = step.get("role", "step")
        data[f"{base}.when"] = step.get("when", "")
        if step.get("after"):
            data[f"{base}.after"] = list(step["after"])
        for j, mapping in enumerate(step.get("mapping", [])):
            mbase = f"{base}.mapping[{j}]"
            data[f"{mbase}._row"] = "1"
            data[f"{mbase}.target"] = mapping[0]
            data[f"{mbase}.source"] = mapping[1]
            data[f"{mbase}.const"] = mapping[2] if len(mapping) > 2 else ""
    for key, value in (config or {}).items():
        data[f"config.{key}"] = str(value)
    for i, trigger in enumerate(triggers):
        base = f"triggers[{i}]"
        data[f"{base}._row"] = "1"
        for key, value in trigger.items():
            data[f"{base}.{key}"] = str(value)
    return data


AGENTS = {
    "kyc": ("KYC check", ["customer_id", "country"], ["risk"]),
    "credit": ("Credit decision", ["customer_id", "risk"], ["limit"]),
    "classifier": ("Ticket classifier", ["message"], ["category"]),
    "answer": ("Answer writer", ["message"], ["answer"]),
    "writer": (
        "Letter writer",
        ["topic", field("feedback", required=False), field("max_words", "number")],
        ["text"],
    ),
    "reviewer": ("Compliance reviewer", ["text"], ["comment"]),
    "manager": (
        "Case manager",
        ["case", field("specialist_outputs", "json", required=False)],
        [field("specialists", "json"), "summary"],
    ),
    "fraud": ("Fraud screen", ["case"], [field("flag", "boolean")]),
    "speaker": ("Negotiator", ["offer", field("transcript", "json", required=False)], ["offer"]),
    "unpublished": ("Draft helper", ["customer_id"], ["note"]),
}


class LazyAgents(dict):
    """Human agents of a team, published (all but "unpublished"), made on first use."""

    def __init__(self, people, team):
        super().__init__()
        self.people, self.team = people, team

    def __missing__(self, key):
        name, inputs, outputs = AGENTS[key]
        self[key] = human_agent(
            self.people, self.team, name, inputs, outputs, publish=key != "unpublished"
        )
        return self[key]
