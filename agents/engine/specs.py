"""Build what executors need from the database: the frozen agent spec and its connections."""

from __future__ import annotations

from agents.connections import spec_for
from agents.kinds.base import AgentSpec
from agents.models import AgentVersion, Connection


def connection_ids(config: dict) -> set[int]:
    """Every connection a kind's config names (the agent's own and its tools')."""
    found = set()
    candidates = [config.get("connection_id")]
    candidates += [
        tool.get("connection_id") for tool in config.get("tools") or [] if isinstance(tool, dict)
    ]
    for value in candidates:
        if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
            found.add(int(value))
    return found


def agent_spec(version: AgentVersion) -> AgentSpec:
    definition = version.definition
    ids = connection_ids(definition.get("config") or {})
    connections = (
        {str(c.pk): spec_for(c) for c in Connection.objects.filter(pk__in=ids)} if ids else {}
    )
    return AgentSpec.from_definition(
        definition,
        agent_id=version.agent_id,
        name=version.agent.name,
        version=version.number,
        connections=connections,
    )
