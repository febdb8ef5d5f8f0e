"""The exception taxonomy of DESIGN.md: every way a step can fail, and what happens next.

Executors raise exactly these. Each carries the context a person needs to resolve the
escalation (`context()` is JSON-ready and goes into the ledger and the escalation).
"""

from __future__ import annotations


class StepFailure(Exception):
    """Base of the taxonomy. `kind` names the failure in records, escalations and metrics."""

    kind = "failure"
    retryable = False

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)

    def context(self) -> dict:
        return {"type": self.kind, "message": self.message}


class SystemUnavailable(StepFailure):
    """A timeout, a connection error or a 5xx: retried with backoff, then escalated."""

    kind = "system_unavailable"
    retryable = True

    def __init__(self, message: str, *, target: str = "", status: int | None = None):
        super().__init__(message)
        self.target = target
        self.status = status

    def context(self) -> dict:
        return {**super().context(), "target": self.target, "status": self.status}


class DataMissing(StepFailure):
    """The input fails the agent's input fields: escalated with the fields named."""

    kind = "data_missing"

    def __init__(self, message: str, *, missing: list[str] = (), invalid: dict | None = None):
        super().__init__(message)
        self.missing = list(missing)
        self.invalid = dict(invalid or {})

    def context(self) -> dict:
        return {**super().context(), "missing": self.missing, "invalid": self.invalid}


class HandoffError(DataMissing):
    """A step's output does not satisfy the next step's input fields."""

    kind = "handoff_error"

    def __init__(self, message: str, *, from_step: str = "", to_step: str = "", **kwargs):
        super().__init__(message, **kwargs)
        self.from_step = from_step
        self.to_step = to_step

    def context(self) -> dict:
        return {**super().context(), "from_step": self.from_step, "to_step": self.to_step}


class RuleConflict(StepFailure):
    """Two rows of a decision table matched under the unique hit policy."""

    kind = "rule_conflict"

    def __init__(self, message: str, *, rules: list[dict]):
        super().__init__(message)
        self.rules = rules  # each: {"row": n, "condition": "...", "outputs": {...}}

    def context(self) -> dict:
        return {**super().context(), "rules": self.rules}


class OutOfScope(StepFailure):
    """Nothing in the agent covers this input: escalated at once."""

    kind = "out_of_scope"

    def __init__(self, message: str, *, details: dict | None = None):
        super().__init__(message)
        self.details = dict(details or {})

    def context(self) -> dict:
        return {**super().context(), "details": self.details}


class LowConfidence(StepFailure):
    """The decision's confidence is under the agent's threshold: escalated with the options."""

    kind = "low_confidence"

    def __init__(
        self,
        message: str,
        *,
        confidence: float,
        threshold: float,
        options: list[dict],
        decision=None,
    ):
        super().__init__(message)
        self.confidence = confidence
        self.threshold = threshold
        self.options = options  # each: {"decision": ..., "confidence": ..., "output": {...}}
        self.decision = decision  # the Decision that was too unsure, when there is one

    def context(self) -> dict:
        return {
            **super().context(),
            "confidence": self.confidence,
            "threshold": self.threshold,
            "options": self.options,
        }


TAXONOMY = (SystemUnavailable, DataMissing, HandoffError, RuleConflict, OutOfScope, LowConfidence)


class AwaitingPerson(Exception):  # not a StepFailure: the step waits for a person
    """A human step: open a task for a team and wait for a person's answer."""

    kind = "human_task"

    def __init__(
        self, message: str, *, team_id: str, instructions: str, output_fields: list, inputs: dict
    ):
        super().__init__(message)
        self.message = message
        self.team_id = team_id
        self.instructions = instructions
        self.output_fields = output_fields
        self.inputs = inputs

    def context(self) -> dict:
        return {
            "type": self.kind,
            "message": self.message,
            "team_id": self.team_id,
            "instructions": self.instructions,
            "output_fields": self.output_fields,
            "inputs": self.inputs,
        }
