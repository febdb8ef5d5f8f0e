"""Forms generated from typed fields (agents.fields): a run's input, the data a person supplies
for an escalation, a human task's answer.

Django only turns widgets into values (JSON text into JSON); the engine checks the values
against the fields, and its errors are put next to the fields they name. So a page shows the
same message the API and the ledger would give, and nothing starts or resumes on bad input.
"""

from __future__ import annotations

from django import forms

from agents import jsonsafe
from agents.engine.taxonomy import DataMissing
from agents.fields import Field, validate_values

TYPE_HINTS = {
    "text": "Text",
    "number": "Number",
    "boolean": "Yes or no",
    "date": "Date",
    "choice": "One of the choices",
    "json": "JSON",
}


def _form_field(spec: Field) -> forms.Field:
    label = spec.name.replace("_", " ").capitalize()
    common = {"label": label, "required": False, "help_text": spec.description}
    if spec.type == "number":
        return forms.CharField(
            widget=forms.NumberInput(attrs={"step": "any", "inputmode": "decimal"}), **common
        )
    if spec.type == "boolean":
        return forms.CharField(
            widget=forms.Select(choices=[("", "—"), ("true", "Yes"), ("false", "No")]), **common
        )
    if spec.type == "date":
        return forms.CharField(widget=forms.DateInput(attrs={"type": "date"}), **common)
    if spec.type == "choice":
        choices = [("", "Choose…"), *((c, c) for c in spec.choices)]
        return forms.CharField(widget=forms.Select(choices=choices), **common)
    if spec.type == "json":
        return forms.CharField(
            widget=forms.Textarea(attrs={"rows": 4, "class": "mono", "spellcheck": "false"}),
            strip=True,
            **common,
        )
    return forms.CharField(
        strip=False, widget=forms.TextInput(attrs={"autocomplete": "off"}), **common
    )


class TypedFieldsForm(forms.Form):
    """One input per typed field. `values()` gives what was filled in, JSON parsed; empty
    inputs are left out so the engine names a required one as missing."""

    def __init__(self, specs: list[Field], *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.specs = {spec.name: spec for spec in specs}
        for spec in specs:
            field = _form_field(spec)
            field.spec = spec
            field.type_hint = TYPE_HINTS.get(spec.type, spec.type)
            if spec.required:
                field.widget.attrs["aria-required"] = "true"
            self.fields[spec.name] = field

    def clean(self):
        data = super().clean()
        for name, spec in self.specs.items():
            value = data.get(name)
            if spec.type == "json" and isinstance(value, str) and value.strip():
                try:
                    data[name] = jsonsafe.loads(value)
                except ValueError as exc:
                    self.add_error(name, f"not valid JSON: {getattr(exc, 'msg', exc)}")
        return data

    def values(self) -> dict:
        return {k: v for k, v in self.cleaned_data.items() if v is not None and v != ""}

    def add_engine_errors(self, errors: dict) -> None:
        """Errors keyed by field name (StartError.errors, DataMissing) next to their fields;
        anything else at the top of the form."""
        for name, problem in errors.items():
            if name in self.fields:
                self.add_error(name, str(problem))
            else:
                self.add_error(None, f"{name}: {problem}")

    def check(self, base: dict | None = None) -> dict | None:
        """Validate `base` plus the values against every field, as the engine will; the
        cleaned values, or None with the errors placed next to the fields."""
        try:
            return validate_values(list(self.specs.values()), {**(base or {}), **self.values()})
        except DataMissing as exc:
            errors = {name: "this field is required" for name in exc.missing}
            errors.update(exc.invalid)
            self.add_engine_errors(errors)
            return None
