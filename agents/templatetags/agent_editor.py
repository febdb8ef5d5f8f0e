"""Inputs of the agent editor, named by definition paths (agents.forms.definition).

Each tag renders one input with its id, its current value, its label for assistive technology
and the errors placed on it. Everything is escaped: definitions come from people.
"""

from __future__ import annotations

from django import template
from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


def _errors(cell: dict) -> SafeString:
    if not cell.get("errors"):
        return mark_safe("")
    items = format_html_join("", "<li>{}</li>", ((e,) for e in cell["errors"]))
    return format_html('<ul class="cell-errors" id="{}-errors">{}</ul>', cell["id"], items)


def _label(label: str, kwargs: dict) -> str:
    """An accessible name for an input in a table: the row's name and the column's."""
    row = kwargs.get("of")
    return f"{row}, {label}" if row and label else label


def _attrs(cell: dict, label: str, extra: dict) -> SafeString:
    attrs = {"name": cell["name"], "id": cell["id"]}
    if label:
        attrs["aria-label"] = label
    if cell.get("errors"):
        attrs["aria-invalid"] = "true"
        attrs["aria-describedby"] = f"{cell['id']}-errors"
    attrs.update({k: v for k, v in extra.items() if v is not None and v is not False and v != ""})
    # escape(), not format_html's conditional escaping: template string literals arrive marked
    # safe, and a literal's quotes (hx-vals JSON) must still be escaped inside the attribute.
    return format_html_join(" ", '{}="{}"', ((k, escape(str(v))) for k, v in attrs.items()))


def _extra(kwargs: dict) -> dict:
    """Template keyword arguments to attributes: cls -> class, hx_post -> hx-post (`of`, the
    row's name, is taken out by `_label`)."""
    extra = {}
    for key, value in kwargs.items():
        if key == "of":
            continue
        name = "class" if key == "cls" else key.replace("_", "-")
        extra[name] = value
    return extra


@register.simple_tag
def cell_input(cell, input_type="text", label="", **kwargs) -> SafeString:
    extra = {"type": input_type, "value": cell.get("value", ""), **_extra(kwargs)}
    attrs = _attrs(cell, _label(label, kwargs), extra)
    return format_html("<input {}>{}", attrs, _errors(cell))


@register.simple_tag
def cell_textarea(cell, rows=2, label="", **kwargs) -> SafeString:
    attrs = _attrs(cell, _label(label, kwargs), {"rows": rows, **_extra(kwargs)})
    # A leading newline would be eaten by the HTML parser: keep it by adding one.
    value = str(cell.get("value", ""))
    return format_html("<textarea {}>\n{}</textarea>{}", attrs, value, _errors(cell))


@register.simple_tag
def cell_select(cell, choices, label="", **kwargs) -> SafeString:
    current = str(cell.get("value", ""))
    options = format_html_join(
        "",
        '<option value="{}"{}>{}</option>',
        (
            (value, mark_safe(" selected") if str(value) == current else "", text)
            for value, text in choices
        ),
    )
    attrs = _attrs(cell, _label(label, kwargs), _extra(kwargs))
    return format_html("<select {}>{}</select>{}", attrs, options, _errors(cell))


@register.simple_tag
def cell_checkbox(cell, checked=False, label="", **kwargs) -> SafeString:
    extra = {"type": "checkbox", "value": "on", **_extra(kwargs)}
    if checked:
        extra["checked"] = "checked"
    return format_html("<input {}>{}", _attrs(cell, _label(label, kwargs), extra), _errors(cell))


@register.simple_tag
def cell_errors(cell) -> SafeString:
    return _errors(cell)


@register.filter
def pairs(values) -> list[tuple[str, str]]:
    """["a", "b"] -> [("a", "a"), ("b", "b")], for selects over plain lists."""
    return [(v, v) for v in values or ()]


@register.filter
def lookup(mapping, key):
    """mapping[key] as text, or "" (team and connection names by id)."""
    if not isinstance(mapping, dict):
        return ""
    return mapping.get(str(key), "")


@register.filter
def as_table(items):
    """A list of flat objects as {"columns", "rows"} for a table, or None when it is not one
    (then the page shows the value as a JSON tree)."""
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        return None
    columns: list[str] = []
    for item in items:
        columns.extend(k for k in item if k not in columns)
    if len(columns) > 8 or any(isinstance(v, (dict, list)) for i in items for v in i.values()):
        return None
    return {"columns": columns, "rows": [[item.get(c) for c in columns] for item in items]}
