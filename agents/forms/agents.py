"""Small forms of the agent pages: list filters, submit, review. The editor is `definition`."""

from __future__ import annotations

from django import forms
from django.forms.utils import flatatt
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from agents.models import Agent
from agents.versions import MAX_NOTE

STATUS_CHOICES = [
    ("", "Any status"),
    ("review", "Waiting for review"),
    ("unpublished", "Never published"),
]


class FlatSelect(forms.Select):
    """A <select> of flat choices written in Python: the same markup as Django's template,
    which renders two templates for every option (~0.1 ms each: 5 ms for the fifty teams of
    the agent filter in bench/rbac.py)."""

    def render(self, name, value, attrs=None, renderer=None) -> SafeString:
        chosen = self.format_value(value)[:1]  # one value: the first option that matches
        options = format_html_join(
            "\n  ",
            '<option value="{}"{}>{}</option>',
            (
                (key, " selected" if [str(key)] == chosen else "", label)
                for key, label in self.choices
            ),
        )
        attrs = flatatt(self.build_attrs(self.attrs, attrs))
        return format_html('<select name="{}"{}>\n  {}\n</select>', name, attrs, options)


class AgentFilterForm(forms.Form):
    q = forms.CharField(
        label="Search",
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"placeholder": "Name", "type": "search"}),
    )
    kind = forms.ChoiceField(
        required=False, choices=[("", "All kinds"), *Agent.Kind.choices], widget=FlatSelect
    )
    team = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, widget=FlatSelect)
    status = forms.ChoiceField(required=False, choices=STATUS_CHOICES, widget=FlatSelect)

    def __init__(self, *args, teams: list[dict], **kwargs):
        """`teams`: the teams owning agents the user may see (`team_id`, `team__name`), so
        the filter offers those alone, and validating a choice costs no query."""
        super().__init__(*args, **kwargs)
        self.fields["team"].choices = [
            ("", "All teams"),
            *((team["team_id"], team["team__name"]) for team in teams),
        ]


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
