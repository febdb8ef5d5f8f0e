"""The "Try it" form: one input per input field of the version being tried.

Values are collected as typed (a number stays the text typed) and checked by the executor's
own validation, so a try with a missing or malformed value shows the data-missing failure a
run would raise. Only JSON values are parsed here, since a browser cannot send JSON."""

from __future__ import annotations

import json

from django import forms

from agents import jsonsafe
from agents.fields import Field

PREFIX = "input"


def _form_field(spec: Field) -> forms.Field:
    label = spec.name.replace("_", " ").capitalize()
    common = {"label": label, "required": False, "help_text": spec.description}
    if spec.type == "number":
        return forms.CharField(
            widget=forms.NumberInput(attrs={"step": "any"}), strip=True, **common
        )
    if spec.type == "boolean":
        return forms.ChoiceField(
            choices=[("", "Not given"), ("true", "true"), ("false", "false")], **common
        )
    if spec.type == "date":
        return forms.CharField(widget=forms.DateInput(attrs={"type": "date"}), **common)
    if spec.type == "choice":
        choices = [("", "Not given"), *((c, c) for c in spec.choices)]
        return forms.ChoiceField(choices=choices, **common)
    if spec.type == "json":
        return forms.CharField(
            widget=forms.Textarea(attrs={"rows": 3, "class": "mono", "spellcheck": "false"}),
            **common,
        )
    return forms.CharField(strip=False, **common)


class TryForm(forms.Form):
    def __init__(self, *args, fields: list[Field], **kwargs):
        super().__init__(*args, prefix=PREFIX, **kwargs)
        self.specs = {f.name: f for f in fields}
        for spec in fields:
            field = _form_field(spec)
            field.required_marker = spec.required
            field.personal = spec.personal
            self.fields[spec.name] = field

    def clean(self):
        data = super().clean()
        for name, spec in self.specs.items():
            value = data.get(name)
            if spec.type == "json" and isinstance(value, str) and value.strip():
                try:
                    data[name] = jsonsafe.loads(value)
                except json.JSONDecodeError as exc:
                    self.add_error(name, f"not valid JSON: {exc.msg} at character {exc.pos + 1}")
                except ValueError as exc:
                    self.add_error(name, f"not accepted: {exc}")
        return data

    def inputs(self) -> dict:
        return {k: v for k, v in self.cleaned_data.items() if v not in (None, "")}
