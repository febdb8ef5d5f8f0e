"""Build what executors need from the database: the frozen agent spec and its connections."""

from __future__ import annotations

from agents.kinds.base import AgentSpec, ConnectionSpec
from agents.models import AgentVersion, Connection
from governance import keys


def connection_spec(connection: Connection) -> ConnectionSpec:
    secret = ""
    if connection.encrypted_secret:
        secret = keys.fernet().decrypt(bytes(connection.encrypted_secret)).decode()
    return ConnectionSpec(
        id=str(connection.pk),
        name=connection.name,
        kind=connection.kind,
        base_url=connection.base_url,
        auth_method=connection.auth_method,
        secret=secret,
        username=connection.username,
        header_name=connection.header_name,
        token_url=connection.token_url,
        model=connection.model,
        allow_internal=connection.allow_internal,
        timeout_seconds=connection.timeout_seconds,
    )


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
    connections = {str(c.pk): connection_spec(c) for c in Connection.objects.filter(pk__in=ids)}
    return AgentSpec.from_definition(
        definition,
        agent_id=version.agent_id,
        name=version.agent.name,
        version=version.number,
        connections=connections,
    )
