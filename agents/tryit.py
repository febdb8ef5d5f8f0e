"""Try it: run a version of an agent (the draft, by default) on sample input, and record it.

The run goes through the same executor interface as workflow steps (`agents.kinds.base.run`),
with the connections the definition names resolved for the person trying it, and only those
they may `use`. Whatever happens (a decision, a taxonomy exception, a human task that would be
opened) is returned for the page and appended to the ledger as `agent.tried`; input and output
fields marked personal go into the record's encrypted personal part, under the data subject
named by the agent's subject field.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied
from django.db import transaction

from agents import connections, versions
from agents.engine.taxonomy import AwaitingPerson, StepFailure
from agents.fields import MAX_TEXT, split_personal
from agents.kinds.base import AgentSpec, Decision, run
from agents.models import Agent, AgentVersion, VersionStatus
from agents.outbound import OutboundError
from governance import ledger
from governance.canonical import SECRET_KEY_PATTERN
from governance.permissions import allows

logger = logging.getLogger("steward.tryit")

MAX_SAFE_INTEGER = 2**53 - 1
MAX_RECORDED_ITEMS = 200


class TryError(ValueError):
    """The try cannot start (no such version, a subject missing); `field` names the problem."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


@dataclass
class TryResult:
    outcome: str  # "decided", "failed" or "awaiting_person"
    version: AgentVersion
    inputs: dict
    decision: Decision | None = None
    error_type: str = ""  # the exception class, e.g. "SystemUnavailable"
    error_kind: str = ""  # the taxonomy name, e.g. "system_unavailable"
    message: str = ""
    context: dict = field(default_factory=dict)
    latency_ms: float = 0.0
    record_seq: int | None = None

    def as_dict(self) -> dict:
        """JSON-ready, as the API answers."""
        data = {
            "outcome": self.outcome,
            "version": self.version.number,
            "version_status": self.version.status,
            "latency_ms": round(self.latency_ms, 3),
            "record": self.record_seq,
        }
        if self.decision is not None:
            data["decision"] = self.decision.as_body()
        if self.outcome != "decided":
            data["error"] = {
                "type": self.error_type,
                "kind": self.error_kind,
                "message": self.message,
                "context": self.context,
            }
        return data


def version_to_try(agent: Agent, number: int | None = None) -> AgentVersion:
    """The chosen version, or the draft, else the one waiting for review, else the published."""
    if number is not None:
        version = agent.versions.filter(number=number).first()
        if version is None:
            raise TryError("version", f"version {number} does not exist")
        return version
    version = versions.draft_of(agent) or versions.pending_of(agent) or agent.published_version
    if version is None:
        raise TryError("version", "this agent has no version to try")
    return version


def try_agent(agent: Agent, *, actor, inputs, number: int | None = None) -> TryResult:
    """Run one version on `inputs` (a dict of raw values) and record the try."""
    if not allows(actor, "change", agent):
        raise PermissionDenied(f"you may not try {agent}")
    if not isinstance(inputs, dict):
        raise TryError("inputs", "an object of named input values")
    version = version_to_try(agent, number)
    definition = version.definition
    wanted = connections.referenced_ids(definition)
    resolved = connections.specs_for(actor, wanted)
    refused = sorted(wanted - set(resolved))
    if refused:
        raise PermissionDenied(
            f"you may not use connection {', '.join('#' + i for i in refused)} that this "
            "version names (or it no longer exists)"
        )
    spec = AgentSpec.from_definition(
        definition,
        agent_id=agent.pk,
        name=agent.name,
        version=version.number,
        connections=resolved,
    )
    declared = {f.name for f in spec.input_fields}
    given = {k: v for k, v in inputs.items() if k in declared and v not in (None, "")}
    subject_field = definition.get("subject_field") or None
    ordinary, personal = split_personal(spec.input_fields, given)
    subject = None
    if personal:
        subject = str(given.get(subject_field, "") or "").strip()[:200]
        if not subject:
            raise TryError(
                f"inputs.{subject_field}" if subject_field else "inputs",
                "give the value that names the data subject: the personal input fields are "
                "recorded under it",
            )

    result = TryResult(outcome="failed", version=version, inputs=given)
    try:
        decision = run(spec, inputs)
    except AwaitingPerson as exc:
        result.outcome = "awaiting_person"
        result.error_type, result.error_kind = type(exc).__name__, exc.kind
        result.message = exc.message
        result.context = {k: v for k, v in exc.context().items() if k != "inputs"}
    except StepFailure as exc:
        result.error_type, result.error_kind = type(exc).__name__, exc.kind
        result.message = exc.message
        result.context = exc.context()
        low = getattr(exc, "decision", None)
        if isinstance(low, Decision):
            result.decision = low
            result.latency_ms = low.latency_ms
    except OutboundError as exc:
        result.error_type, result.error_kind = type(exc).__name__, exc.reason
        result.message = str(exc)
        result.context = {"type": exc.reason, "message": str(exc)}
    except Exception as exc:  # an executor's bug must show as a failed try, never a 500
        logger.exception("try of agent %s v%s failed unexpectedly", agent.pk, version.number)
        result.error_type, result.error_kind = type(exc).__name__, "internal_error"
        result.message = "the executor failed unexpectedly; the error was logged for the admins"
        result.context = {"type": "internal_error", "message": result.message}
    else:
        result.outcome = "decided"
        result.decision = decision
        result.latency_ms = decision.latency_ms
    result.record_seq = _record(agent, version, actor, spec, result, ordinary, personal, subject)
    return result


@transaction.atomic
def _record(agent, version, actor, spec, result, ordinary, personal, subject) -> int:
    body = {
        "version": version.number,
        "version_status": version.status,
        "outcome": result.outcome,
        "inputs": recordable(ordinary),
    }
    personal_part = {"inputs": recordable(personal)} if personal else {}
    if result.decision is not None:
        decided = result.decision.as_body()
        output, personal_output = split_personal(spec.output_fields, decided.get("output") or {})
        decided["output"] = output
        if personal_output and subject:
            personal_part["output"] = personal_output
        elif personal_output:
            decided["output"].update({name: "[personal]" for name in personal_output})
        body.update(recordable(decided))
    if result.outcome != "decided":
        body["error"] = recordable(
            {"type": result.error_type, "kind": result.error_kind, "message": result.message}
        )
        body["context"] = recordable(result.context)
    kwargs = {"personal": personal_part, "subject": subject} if personal_part else {}
    record = ledger.append(
        "agent.tried",
        actor=actor,
        body=body,
        team=agent.team,
        agent=agent,
        agent_version=(version.pk, f"{agent.name} v{version.number}"),
        **kwargs,
    )
    return record.seq


def recordable(value, depth: int = 0):
    """`value` made fit for a ledger record: long texts cut, integers beyond JSON's safe range
    and non-finite numbers written as text, deep or huge structures summarised."""
    if depth > 12:
        return "[nested too deeply]"
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + "[cut]"
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if abs(value) <= MAX_SAFE_INTEGER else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        kept, withheld = {}, []
        for key, item in list(value.items())[:MAX_RECORDED_ITEMS]:
            key = str(key)[:200]
            if SECRET_KEY_PATTERN.search(key):
                withheld.append(key)  # the ledger refuses credential-like keys outright
            else:
                kept[key] = recordable(item, depth + 1)
        if withheld:
            kept["withheld"] = withheld
        return kept
    if isinstance(value, (list, tuple)):
        return [recordable(v, depth + 1) for v in list(value)[:MAX_RECORDED_ITEMS]]
    return str(value)[:MAX_TEXT]


def status_label(version: AgentVersion) -> str:
    return {
        VersionStatus.DRAFT: "the draft",
        VersionStatus.SUBMITTED: "the version waiting for review",
        VersionStatus.PUBLISHED: "a published version",
        VersionStatus.REJECTED: "a rejected version",
    }.get(version.status, version.status)
