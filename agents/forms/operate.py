"""Forms of the operator pages: run and inbox filters, cancelling a run, and resolving an
escalation (one small form per way of resolving it)."""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.core.exceptions import PermissionDenied

from agents.engine import escalations
from agents.engine.escalations import ResolutionError
from agents.fields import FieldSpecError, parse_fields
from agents.forms.typed import TypedFieldsForm
from agents.models import ESCALATION_KINDS, Escalation, Run
from agents.run_display import AGE_CHOICES, choice_options
from governance.canonical import CanonicalError
from governance.ledger import LedgerError

# --- Filters -----------------------------------------------------------------------------------


class RunFilterForm(forms.Form):
    workflow = forms.TypedChoiceField(
        label="Workflow", required=False, coerce=int, empty_value=None
    )
    status = forms.ChoiceField(
        label="Status", required=False, choices=[("", "Any status"), *Run.Status.choices]
    )
    outcome = forms.ChoiceField(
        label="Outcome", required=False, choices=[("", "Any outcome"), *Run.Outcome.choices]
    )

    def __init__(self, *args, workflows=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["workflow"].choices = [
            ("", "All workflows"),
            *((w.pk, w.name) for w in workflows),
        ]

    def apply(self, runs):
        data = self.cleaned_data
        if data.get("workflow"):
            runs = runs.filter(workflow_id=data["workflow"])
        if data.get("status"):
            runs = runs.filter(status=data["status"])
        if data.get("outcome"):
            runs = runs.filter(outcome=data["outcome"])
        return runs


class InboxFilterForm(forms.Form):
    kind = forms.ChoiceField(
        label="Type", required=False, choices=[("", "All types"), *ESCALATION_KINDS.items()]
    )
    age = forms.ChoiceField(label="Age", required=False, choices=AGE_CHOICES)
    workflow = forms.TypedChoiceField(
        label="Workflow", required=False, coerce=int, empty_value=None
    )

    def __init__(self, *args, workflows=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["workflow"].choices = [
            ("", "All workflows"),
            *((w.pk, w.name) for w in workflows),
        ]

    def apply(self, queryset, now):
        from agents.run_display import AGES

        data = self.cleaned_data
        if data.get("kind"):
            queryset = queryset.filter(kind=data["kind"])
        if data.get("age"):
            queryset = queryset.filter(created_at__lte=now - AGES[data["age"]])
        if data.get("workflow"):
            queryset = queryset.filter(run__workflow_id=data["workflow"])
        return queryset


class CancelForm(forms.Form):
    reason = forms.CharField(
        label="Reason",
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Recorded in the decision log with the cancellation.",
    )


# --- Resolving an escalation -------------------------------------------------------------------

NOTE_WIDGET = forms.Textarea(attrs={"rows": 2})


class NoteForm(forms.Form):
    note = forms.CharField(
        label="Comment",
        required=False,
        max_length=2000,
        widget=NOTE_WIDGET,
        help_text="Optional; recorded with your decision in the decision log.",
    )


class RejectForm(forms.Form):
    note = forms.CharField(
        label="Why reject?",
        max_length=2000,
        widget=NOTE_WIDGET,
        help_text="Required. The run ends with the outcome “rejected”; this reason is recorded.",
        error_messages={"required": "give the reason for rejecting"},
    )


class OptionForm(NoteForm):
    option = forms.TypedChoiceField(
        label="Option",
        coerce=int,
        widget=forms.RadioSelect,
        error_messages={"required": "choose one of the options"},
    )

    def __init__(self, *args, options=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["option"].choices = [(o.index, o.title) for o in options]
        self.order_fields(["option", "note"])


class ManualForm(NoteForm):
    decision = forms.CharField(
        label="Decision",
        required=False,
        max_length=200,
        help_text="A short name, e.g. approve; a router's decision picks its route. Optional: "
        "the first output value otherwise.",
    )


@dataclass(frozen=True)
class Way:
    """One way of resolving: the engine's action, its small form, and how the page names it."""

    action: str
    form: type
    label: str
    button: str
    tone: str = ""


WAYS = {
    "answer": Way("approve", NoteForm, "Answer the task", "Submit the answer", "primary"),
    "option": Way("approve", OptionForm, "Approve an option", "Approve the option", "primary"),
    "accept": Way("approve", NoteForm, "Accept the latest result", "Accept and finish", "primary"),
    "supply": Way("supply", NoteForm, "Supply the missing data", "Supply and retry", "primary"),
    "manual": Way("approve", ManualForm, "Decide the step yourself", "Record my decision"),
    "retry": Way("retry", NoteForm, "Retry the step", "Retry"),
    "reject": Way("reject", RejectForm, "Reject", "Reject and end the run", "danger"),
}


def available(escalation: Escalation) -> list[str]:
    """The ways this escalation can be resolved, the likeliest first."""
    kind = escalation.kind
    context = escalation.context if isinstance(escalation.context, dict) else {}
    if kind == "human_task":
        return ["answer", "reject"]
    if kind in ("round_limit", "turn_limit"):
        return ["accept", "retry", "reject"]
    if kind == "system_unavailable":  # the system may be back: trying again comes first
        return ["retry", "manual", "reject"]
    names = []
    if choice_options(escalation):
        names.append("option")
    if context.get("missing") or context.get("invalid"):
        names.append("supply")
    if not context.get("options"):
        names.append("manual")
    return [*names, "retry", "reject"]


def _specs(raw, path: str) -> list:
    try:
        return parse_fields(raw if isinstance(raw, list) else [], path)
    except FieldSpecError:
        return []


class ActionForm:
    """One way of resolving: a note form (with the option or decision it needs) and, for
    answers, supplied data and decisions by hand, a form of typed fields."""

    def __init__(self, name: str, escalation: Escalation, data=None):
        self.name = name
        self.escalation = escalation
        way = WAYS[name]
        self.action, self.label, self.button, self.tone = (
            way.action,
            way.label,
            way.button,
            way.tone,
        )
        note_class = way.form
        if name == "retry" and escalation.kind in ("round_limit", "turn_limit"):
            noun = "round" if escalation.kind == "round_limit" else "turn"
            self.label, self.button = f"One more {noun}", f"Give it one more {noun}"
        prefix = f"e{escalation.pk}-{name}"
        kwargs = {"options": choice_options(escalation)} if name == "option" else {}
        self.form = note_class(data, prefix=prefix, **kwargs)
        specs = self._data_specs()
        self.data_form = (
            TypedFieldsForm(specs, data, prefix=f"{prefix}-data") if specs is not None else None
        )
        self.bound = data is not None
        self.non_field_errors: list[str] = []

    def _data_specs(self):
        escalation = self.escalation
        context = escalation.context if isinstance(escalation.context, dict) else {}
        agent_definition = escalation.step_run.agent_version.definition
        if self.name == "answer":
            return _specs(context.get("output_fields"), "output_fields")
        if self.name == "manual":
            return _specs(agent_definition.get("output_fields"), "output_fields")
        if self.name == "supply":
            wanted = [*(context.get("missing") or []), *(context.get("invalid") or {})]
            specs = _specs(agent_definition.get("input_fields"), "input_fields")
            return [s for s in specs if s.name in wanted]
        return None

    @property
    def id(self) -> str:
        return f"e{self.escalation.pk}-{self.name}"

    @property
    def has_errors(self) -> bool:
        return bool(
            self.non_field_errors
            or (self.bound and self.form.errors)
            or (self.data_form is not None and self.data_form.is_bound and self.data_form.errors)
        )

    def engine_arguments(self) -> dict | None:
        """The keyword arguments of escalations.resolve, or None when a form has errors."""
        valid = self.form.is_valid()
        values = None
        if self.data_form is not None:
            if self.data_form.is_valid():
                values = self.data_form.check()
            valid = valid and values is not None
        if not valid:
            return None
        data = self.form.cleaned_data
        arguments = {"action": self.action, "note": data.get("note", "")}
        if self.name == "option":
            arguments["option"] = data["option"]
        if self.name in ("answer", "supply"):
            arguments["data"] = self.data_form.values()
        if self.name == "manual":
            arguments["data"] = {**self.data_form.values()}
            if data.get("decision"):
                arguments["data"]["decision"] = data["decision"]
        return arguments

    def place(self, field: str, message: str) -> None:
        """An engine error next to what it names."""
        if field in self.form.fields:
            self.form.add_error(field, message)
        elif field == "data" and self.data_form is not None:
            self.data_form.add_error(None, message)
        else:
            self.non_field_errors.append(message)


class Resolution:
    """Every way to resolve one escalation; the posted one bound to the request's data."""

    def __init__(self, escalation: Escalation, data=None):
        self.escalation = escalation
        self.posted = data.get("form") if data is not None else None
        self.forms = [
            ActionForm(name, escalation, data if name == self.posted else None)
            for name in available(escalation)
        ]
        self.error = ""

    @property
    def primary(self):
        return self.forms[0] if self.forms else None

    @property
    def secondary(self):
        return self.forms[1:]

    def submit(self, actor) -> bool:
        """Resolve through the engine; False (with the errors placed) when it refused."""
        chosen = next((f for f in self.forms if f.name == self.posted), None)
        if chosen is None:
            self.error = "choose how to resolve this escalation"
            return False
        arguments = chosen.engine_arguments()
        if arguments is None:
            return False
        try:
            escalations.resolve(self.escalation, actor=actor, **arguments)
        except ResolutionError as exc:
            chosen.place(exc.field, exc.message)
            return False
        except PermissionDenied as exc:
            chosen.place("escalation", str(exc) or "you may not resolve this escalation")
            return False
        except (LedgerError, CanonicalError) as exc:
            chosen.place("escalation", f"cannot be recorded: {exc}")
            return False
        return True
