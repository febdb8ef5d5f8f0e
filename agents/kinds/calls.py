"""How executors call a connection: through agents.outbound, within the agent's time limit,
with the door's own refusals turned into taxonomy exceptions.

A refused destination, an oversized response or unusable credentials cannot be cured by
retrying, so they are OutOfScope (escalated at once, the reason in the details); timeouts,
connection errors and 5xx stay SystemUnavailable (retried with backoff by the engine).
"""

from __future__ import annotations

import time

from agents import outbound
from agents.engine.taxonomy import OutOfScope, SystemUnavailable
from agents.kinds.base import AgentSpec, ConnectionSpec


class Budget:
    """The agent's time limit (timeout_seconds), shared by every request of one execution."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds

    def left(self, target: str = "") -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise SystemUnavailable(
                f"the agent's time limit of {self.seconds:g} s ran out", target=target
            )
        return left


def connection_for(spec: AgentSpec, connection_id, *, what: str = "connection") -> ConnectionSpec:
    connection = spec.connections.get(str(connection_id))
    if connection is None:
        raise OutOfScope(
            f"{what} #{connection_id} is not available to this agent",
            details={"reason": "connection_missing", "connection_id": str(connection_id)},
        )
    return connection


def request(
    connection: ConnectionSpec,
    method: str,
    path: str,
    *,
    budget: Budget,
    query: dict | None = None,
    json=None,
    max_bytes: int = outbound.DEFAULT_MAX_BYTES,
) -> outbound.Response:
    """One request, or SystemUnavailable / OutOfScope."""
    timeout = min(connection.timeout_seconds, budget.left(connection.base_url))
    try:
        return outbound.call(
            connection, method, path, query=query, json=json, timeout=timeout, max_bytes=max_bytes
        )
    except outbound.OutboundError as exc:
        raise OutOfScope(
            str(exc), details={"reason": exc.reason, "connection_id": connection.id}
        ) from None


def considered(connection: ConnectionSpec, method: str, response, **extra) -> dict:
    """What a request fetched, for Decision.data_considered (no query string, no secret)."""
    return {
        "source": "http",
        "connection_id": connection.id,
        "connection": connection.name,
        "method": method,
        "url": response.url,
        "status": response.status,
        "latency_ms": round(response.elapsed_ms, 3),
        **extra,
    }
