"""The small forms of the workflow pages (new workflow, submit, review, rollback).

The editor itself lives in `agents.forms.workflow_editor` (state in `workflow_state`, what
its template shows in `workflow_render`).
"""

from __future__ import annotations

from django import forms

from agents.forms.workflow_state import PATTERN_CHOICES
from agents.versions import MAX_NAME, MAX_NOTE

# --- The small forms ---------------------------------------------------------------------------


class NewWorkflowForm(forms.Form):
    """The first page of a new workflow: what it is called, whose it is, how it runs."""

    name = forms.CharField(max_length=MAX_NAME)
    team = forms.ModelChoiceField(queryset=None, empty_label=None)
    pattern = forms.ChoiceField(choices=PATTERN_CHOICES, widget=forms.RadioSelect)

    def __init__(self, *args, teams, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = teams
        self.fields["name"].widget.attrs.update(placeholder="e.g. Customer onboarding")
        self.fields["team"].help_text = "The team that owns it; its builders may change it."


class SubmitForm(forms.Form):
    note = forms.CharField(
        required=False,
        max_length=MAX_NOTE,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "What changed, and why"}),
        label="Note for the reviewer",
    )


class ReviewForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")])
    version = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
    reason = forms.CharField(
        required=False,
        max_length=MAX_NOTE,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Reason",
        help_text="Required to reject; recorded in the decision log either way.",
    )

    def clean(self):
        data = super().clean()
        if data.get("decision") == "reject" and not (data.get("reason") or "").strip():
            self.add_error("reason", "say why, so the builder can fix it")
        return data


class RollbackForm(forms.Form):
    note = forms.CharField(required=False, max_length=MAX_NOTE)
