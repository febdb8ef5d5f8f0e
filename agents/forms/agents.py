"""Small forms of the agent pages: list filters, submit, review. The editor is `definition`."""

from __future__ import annotations

from django import forms

from agents.models import Agent
from agents.versions import MAX_NOTE

STATUS_CHOICES = [
    ("", "Any status"),
    ("review", "Waiting for review"),
    ("unpublished", "Never published"),
]


class AgentFilterForm(forms.Form):
    q = forms.CharField(
        label="Search",
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"placeholder": "Name", "type": "search"}),
    )
    kind = forms.ChoiceField(required=False, choices=[("", "All kinds"), *Agent.Kind.choices])
    team = forms.ModelChoiceField(queryset=None, required=False, empty_label="All teams")
    status = forms.ChoiceField(required=False, choices=STATUS_CHOICES)

    def __init__(self, *args, teams, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = teams


class SubmitForm(forms.Form):
    note = forms.CharField(
        label="Note for the reviewer",
        required=False,
        max_length=MAX_NOTE,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "What changed, and why"}),
    )


class ReviewForm(forms.Form):
    reason = forms.CharField(
        label="Comment (optional)",
        required=False,
        max_length=MAX_NOTE,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class RejectForm(forms.Form):
    reason = forms.CharField(
        label="Why it cannot be published",
        max_length=MAX_NOTE,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="The builder sees this next to the version.",
    )
