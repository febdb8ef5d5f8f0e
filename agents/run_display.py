"""Runs and escalations as people read them: the run page's step timeline, durations, tones,
and an escalation's context laid out by what a person needs to decide it.

Nothing here queries per row: the run page loads its steps and escalations in two queries,
and the inbox builds every card from rows already joined (run_queries)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone

from agents.models import ESCALATION_KINDS, Escalation, Run, StepRun

RUN_TONES = {
    Run.Status.QUEUED: "neutral",
    Run.Status.RUNNING: "info",
    Run.Status.WAITING: "warn",
}
OUTCOME_TONES = {
    Run.Outcome.COMPLETED: "ok",
    Run.Outcome.REJECTED: "bad",
    Run.Outcome.CANCELLED: "neutral",
}
STEP_TONES = {
    StepRun.Status.QUEUED: "neutral",
    StepRun.Status.RUNNING: "info",
    StepRun.Status.SUCCEEDED: "ok",
    StepRun.Status.RETRYING: "warn",
    StepRun.Status.ESCALATED: "bad",
    StepRun.Status.WAITING: "warn",
    StepRun.Status.RESOLVED: "ok",
    StepRun.Status.CANCELLED: "neutral",
}
ROLE_LABELS = {
    "router": "router",
    "route": "route",
    "default": "default route",
    "maker": "maker",
    "checker": "checker",
    "manager": "manager",
    "specialist": "specialist",
    "participant": "participant",
}


def run_state(run: Run) -> tuple[str, str]:
    """(label, tone) of where a run stands: its outcome once finished, else its status."""
    if run.status == Run.Status.FINISHED:
        return run.get_outcome_display(), OUTCOME_TONES.get(run.outcome, "neutral")
    return run.get_status_display(), RUN_TONES.get(run.status, "neutral")


def duration_seconds(start: datetime | None, end: datetime | None = None) -> float | None:
    if start is None:
        return None
    return max(((end or timezone.now()) - start).total_seconds(), 0.0)


def duration_label(seconds: float | None) -> str:
    """850 ms, 12.4 s, 4 min 10 s, 2 h 5 min, 3 d 4 h."""
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def trigger_label(run: Run) -> str:
    """Who or what started the run, in words."""
    if run.trigger in (Run.Trigger.MANUAL, Run.Trigger.API, Run.Trigger.DEMO):
        who = (
            run.started_by.get_full_name() or run.started_by.get_username()
            if run.started_by
            else ""
        )
        how = {
            Run.Trigger.MANUAL: "from the console",
            Run.Trigger.API: "through the API",
            Run.Trigger.DEMO: "as demo data",
        }[run.trigger]
        return f"{who} {how}".strip() if who else f"Started {how}"
    detail = run.trigger_detail if isinstance(run.trigger_detail, dict) else {}
    if run.trigger == Run.Trigger.WORKFLOW and detail.get("run"):
        outcome = f" {detail['outcome']}" if detail.get("outcome") else ""
        return (
            f"After run {str(detail['run'])[:8]} of {detail.get('workflow', 'a workflow')}{outcome}"
        )
    if run.trigger == Run.Trigger.WEBHOOK:
        return "A signed webhook"
    if run.trigger == Run.Trigger.SCHEDULE:
        return "The schedule"
    return run.get_trigger_display()


def ordered_input(run: Run) -> dict:
    """The run's input in the order of the workflow's input fields (jsonb keeps no order)."""
    values = run.input if isinstance(run.input, dict) else {}
    names = [
        f.get("name")
        for f in run.workflow_version.definition.get("input_fields", [])
        if isinstance(f, dict)
    ]
    ordered = {name: values[name] for name in names if name in values}
    ordered.update({k: v for k, v in values.items() if k not in ordered})
    return ordered


# --- The step timeline ---------------------------------------------------------------------------


@dataclass
class StepRow:
    step: StepRun
    role: str = ""
    activation_label: str = ""
    tone: str = "neutral"
    retry_delay: float | None = None
    retried: bool = False
    escalation: Escalation | None = None
    duration: float | None = None
    error: dict | None = None
    ledger: dict = field(default_factory=dict)  # escalation.raised / .resolved seq

    @property
    def delay_label(self) -> str:
        return duration_label(self.retry_delay) if self.retry_delay is not None else ""

    @property
    def status_label(self) -> str:
        if self.step.status == StepRun.Status.RETRYING and self.retried:
            return "Failed, retried"
        return self.step.get_status_display()

    @property
    def duration_text(self) -> str:
        return duration_label(self.duration)

    @property
    def error_label(self) -> str:
        return kind_label(str((self.error or {}).get("type") or "error"))


def activation_label(pattern: str, role: str, activation: int) -> str:
    if pattern == "maker_checker":
        return f"round {activation + 1}"
    if pattern == "conversation":
        return f"turn {activation + 1}"
    if pattern == "supervisor" and role == "manager":
        return "synthesis" if activation else "plan"
    return f"activation {activation + 1}" if activation else ""


def timeline(run: Run, steps: list[StepRun], escalations: list[Escalation]) -> list[StepRow]:
    """One row per step attempt, in the order they were created, with its retry delay (the
    next attempt's backoff) and its escalation."""
    definition = run.workflow_version.definition
    pattern = definition.get("pattern", "")
    roles = {s.get("key"): s.get("role", "") for s in definition.get("steps", [])}
    by_step = {e.step_run_id: e for e in escalations}
    attempts: dict[tuple[str, int, int], StepRun] = {
        (s.step_key, s.activation, s.attempt): s for s in steps
    }
    rows = []
    for step in steps:
        role = roles.get(step.step_key) or ""
        following = attempts.get((step.step_key, step.activation, step.attempt + 1))
        delay = None
        if following is not None and following.not_before is not None:
            delay = max((following.not_before - following.created_at).total_seconds(), 0.0)
        rows.append(
            StepRow(
                step=step,
                role=ROLE_LABELS.get(role, ""),
                activation_label=activation_label(pattern, role, step.activation),
                tone=STEP_TONES.get(step.status, "neutral"),
                retry_delay=delay,
                retried=following is not None,
                escalation=by_step.get(step.pk),
                duration=duration_seconds(step.started_at, step.finished_at)
                if step.started_at and step.finished_at
                else None,
                error=step.error if isinstance(step.error, dict) else None,
            )
        )
    return rows


# --- Escalations ---------------------------------------------------------------------------------


def kind_label(kind: str) -> str:
    return ESCALATION_KINDS.get(kind, kind.replace("_", " ").capitalize())


KIND_TONES = {
    "system_unavailable": "bad",
    "data_missing": "warn",
    "handoff_error": "warn",
    "rule_conflict": "warn",
    "out_of_scope": "warn",
    "low_confidence": "warn",
    "round_limit": "info",
    "turn_limit": "info",
    "human_task": "info",
}


@dataclass
class Option:
    index: int
    title: str
    decision: str = ""
    confidence: float | None = None
    output: dict | None = None
    condition: str = ""


@dataclass
class Context:
    """An escalation's context, sorted into what the card shows."""

    message: str = ""
    facts: list[tuple[str, object]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    invalid: dict = field(default_factory=dict)
    tried: list[dict] = field(default_factory=list)
    options: list[Option] = field(default_factory=list)
    rounds: list[dict] = field(default_factory=list)
    transcript: list[dict] = field(default_factory=list)
    instructions: str = ""
    output_fields: list[dict] = field(default_factory=list)
    details: dict = field(default_factory=dict)
    inputs: dict = field(default_factory=dict)


def choice_options(escalation: Escalation) -> list[Option]:
    """The options a person may approve by index: low-confidence alternatives, conflicting
    rules, routes and specialists. Round and turn limits list actions, not options."""
    result = []
    for index, raw in enumerate(escalation.context.get("options") or []):
        if not isinstance(raw, dict) or "action" in raw:
            continue
        if "route" in raw:
            title = f"Route to {raw.get('label') or raw['route']}"
            condition = str(raw.get("when") or "")
        elif "specialist" in raw:
            title = f"Run the specialist {raw['specialist']}"
            condition = ""
        elif raw.get("rule") is not None:
            title = f"Rule {raw['rule']}: {raw.get('decision') or 'no decision'}"
            condition = str(raw.get("condition") or "")
        else:
            title = str(raw.get("decision") or raw.get("label") or f"Option {index + 1}")
            condition = str(raw.get("condition") or "")
        confidence = raw.get("confidence")
        result.append(
            Option(
                index=index,
                title=title,
                decision=str(raw.get("decision") or ""),
                confidence=confidence if isinstance(confidence, (int, float)) else None,
                output=raw.get("output") if isinstance(raw.get("output"), dict) else None,
                condition=condition,
            )
        )
    return result


def context_of(escalation: Escalation) -> Context:
    ctx = escalation.context if isinstance(escalation.context, dict) else {}
    facts: list[tuple[str, object]] = []
    kind = escalation.kind
    if kind == "system_unavailable":
        if ctx.get("target"):
            facts.append(("System", ctx["target"]))
        if ctx.get("status"):
            facts.append(("HTTP status", ctx["status"]))
    if kind == "low_confidence":
        facts.append(("Confidence", ctx.get("confidence")))
        facts.append(("Threshold", ctx.get("threshold")))
    if kind == "handoff_error":
        facts.append(("From step", ctx.get("from_step") or "—"))
        facts.append(("To step", ctx.get("to_step") or "—"))
    if kind == "round_limit" and ctx.get("max_rounds"):
        facts.append(("Rounds allowed", ctx["max_rounds"]))
    if kind == "turn_limit" and ctx.get("max_turns"):
        facts.append(("Turns allowed", ctx["max_turns"]))
    tried = [_attempt(t) for t in ctx.get("tried") or [] if isinstance(t, dict)]
    if kind == "human_task" or (len(tried) < 2 and kind != "system_unavailable"):
        tried = []  # one attempt that failed as the message says: nothing more to show
    message = str(ctx.get("message") or "")
    return Context(
        # The title already says it unless the message was longer than the summary.
        message=message if message and message != escalation.summary else "",
        facts=facts,
        missing=[str(m) for m in ctx.get("missing") or []],
        invalid={str(k): str(v) for k, v in (ctx.get("invalid") or {}).items()},
        tried=tried,
        options=choice_options(escalation),
        rounds=[r for r in ctx.get("rounds") or [] if isinstance(r, dict)],
        transcript=[t for t in ctx.get("transcript") or [] if isinstance(t, dict)],
        instructions=str(ctx.get("instructions") or ""),
        output_fields=[f for f in ctx.get("output_fields") or [] if isinstance(f, dict)],
        details=ctx.get("details") if isinstance(ctx.get("details"), dict) else {},
        inputs=ctx.get("inputs") if isinstance(ctx.get("inputs"), dict) else {},
    )


def _attempt(raw: dict) -> dict:
    started = raw.get("started_at")
    try:
        started = datetime.fromisoformat(started) if isinstance(started, str) else None
    except ValueError:
        started = None
    error = raw.get("error")
    return {
        "attempt": raw.get("attempt"),
        "status": "Failed, retried"
        if raw.get("status") == StepRun.Status.RETRYING
        else STEP_STATUS_LABELS.get(raw.get("status"), raw.get("status") or "—"),
        "error": error.get("message") if isinstance(error, dict) else error,
        "started_at": started,
    }


STEP_STATUS_LABELS = dict(StepRun.Status.choices)


def headline(escalation: Escalation) -> str:
    """A card's title: the failure in a sentence, or what a human task asks of whom."""
    if escalation.kind == "human_task":
        return f"{escalation.step_run.agent.name}: a task for {escalation.team.name}"
    text = escalation.summary or kind_label(escalation.kind)
    if "://" in text.split(" ", 1)[0]:  # it starts with a URL: leave its case alone
        return text
    return text[:1].upper() + text[1:]


AGE_CHOICES = (
    ("", "Any age"),
    ("15m", "Waiting over 15 minutes"),
    ("1h", "Waiting over an hour"),
    ("1d", "Waiting over a day"),
    ("7d", "Waiting over a week"),
)
AGES = {
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
    "7d": timedelta(days=7),
}
