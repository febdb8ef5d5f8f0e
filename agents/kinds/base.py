"""The one interface every agent kind implements.

An executor gets a frozen agent version (`AgentSpec`, built from a version's definition) and
an input, and returns a `Decision` or raises one of the taxonomy exceptions of
`agents.engine.taxonomy`. Executors touch no database and no Django model: the engine and
"Try it" record what they return.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from agents.engine.taxonomy import LowConfidence
from agents.fields import Field, parse_fields, validate_values

KINDS = ("rules", "llm", "http", "human")


@dataclass(frozen=True)
class AgentSpec:
    """A frozen agent version as executors see it."""

    agent_id: str
    name: str
    version: int
    kind: str
    input_fields: list[Field]
    output_fields: list[Field]
    confidence_threshold: float = 0.0
    timeout_seconds: float = 30.0
    retry_limit: int = 3
    config: dict = field(default_factory=dict)  # the kind's own section of the definition
    connections: dict = field(default_factory=dict)  # id -> ConnectionSpec, resolved by caller

    @classmethod
    def from_definition(
        cls, definition: dict, *, agent_id="", name="", version=0, connections=None
    ) -> AgentSpec:
        return cls(
            agent_id=str(agent_id),
            name=name,
            version=version,
            kind=definition["kind"],
            input_fields=parse_fields(definition.get("input_fields", []), "input_fields"),
            output_fields=parse_fields(definition.get("output_fields", []), "output_fields"),
            confidence_threshold=float(definition.get("confidence_threshold", 0.0)),
            timeout_seconds=float(definition.get("timeout_seconds", 30.0)),
            retry_limit=int(definition.get("retry_limit", 3)),
            config=dict(definition.get("config", {})),
            connections=dict(connections or {}),
        )


@dataclass(frozen=True)
class ConnectionSpec:
    """What an executor needs of a Connection, with its secret decrypted for this call only."""

    id: str
    name: str
    kind: str  # "model" or "http"
    base_url: str
    auth_method: str = "none"  # none, bearer, api_key_header, basic, oauth2_client_credentials
    secret: str = ""
    username: str = ""  # basic auth user, or OAuth2 client id
    header_name: str = ""  # for api_key_header
    token_url: str = ""  # OAuth2 client credentials
    model: str = ""  # default model of a model endpoint
    allow_internal: bool = False
    timeout_seconds: float = 30.0

    def __repr__(self) -> str:  # never print the secret
        return f"ConnectionSpec(id={self.id!r}, name={self.name!r}, base_url={self.base_url!r})"


@dataclass
class Decision:
    output: dict
    decision: str | None = None
    rationale: str = ""
    confidence: float | None = None
    data_considered: list = field(default_factory=list)
    rules_applied: list = field(default_factory=list)
    tool_calls: list = field(default_factory=list)
    latency_ms: float = 0.0
    model: str = ""

    def as_body(self) -> dict:
        """JSON-ready, as recorded in the ledger's `agent.decided` body."""
        return {
            "output": self.output,
            "decision": self.decision,
            "rationale": self.rationale,
            "confidence": self.confidence,
            "data_considered": self.data_considered,
            "rules_applied": self.rules_applied,
            "tool_calls": self.tool_calls,
            "latency_ms": round(self.latency_ms, 3),
            "model": self.model,
        }


class Executor(Protocol):
    def execute(self, spec: AgentSpec, inputs: dict) -> Decision: ...


def run(spec: AgentSpec, inputs: dict) -> Decision:
    """Validate the input, run the kind's executor, time it and apply the confidence threshold."""
    from agents.kinds import registry

    cleaned = validate_values(spec.input_fields, inputs, what="input")
    started = time.perf_counter()
    decision = registry.executor_for(spec.kind).execute(spec, cleaned)
    decision.latency_ms = (time.perf_counter() - started) * 1000
    check_confidence(spec, decision)
    return decision


def check_confidence(spec: AgentSpec, decision: Decision) -> None:
    if decision.confidence is None or decision.confidence >= spec.confidence_threshold:
        return
    raise LowConfidence(
        f"confidence {decision.confidence:.2f} is under the agent's threshold "
        f"{spec.confidence_threshold:.2f}",
        confidence=decision.confidence,
        threshold=spec.confidence_threshold,
        options=[
            {
                "decision": decision.decision,
                "confidence": decision.confidence,
                "output": decision.output,
                "rationale": decision.rationale,
            }
        ],
        decision=decision,
    )
