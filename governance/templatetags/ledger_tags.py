"""Showing ledger values as a reader wants them: JSON trees as nested lists, confidence as a
bar, events with a tone. Everything a record holds is escaped: bodies come from agents, tools
and people, so markup in them is text."""

from __future__ import annotations

import json

from django import template
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

MAX_DEPTH = 8


@register.simple_tag
def json_value(value) -> SafeString:
    """A JSON value as readable HTML: objects as key/value lists, arrays as lists."""
    return _render(value, 0)


def _render(value, depth: int) -> SafeString:
    if value is None:
        return mark_safe('<span class="json-literal">null</span>')
    if isinstance(value, bool):
        return format_html('<span class="json-literal">{}</span>', "true" if value else "false")
    if isinstance(value, (int, float)):
        return format_html('<span class="json-number">{}</span>', value)
    if isinstance(value, str):
        if not value:
            return mark_safe('<span class="faint">(empty text)</span>')
        return format_html('<span class="json-text">{}</span>', value)
    if depth >= MAX_DEPTH:
        return format_html(
            '<code class="json-raw">{}</code>', json.dumps(value, ensure_ascii=False)
        )
    if isinstance(value, dict):
        if not value:
            return mark_safe('<span class="faint">(none)</span>')
        rows = format_html_join(
            "",
            '<div class="json-row"><dt>{}</dt><dd>{}</dd></div>',
            ((key, _render(item, depth + 1)) for key, item in value.items()),
        )
        return format_html('<dl class="json-object">{}</dl>', rows)
    if isinstance(value, list):
        if not value:
            return mark_safe('<span class="faint">(none)</span>')
        items = format_html_join("", "<li>{}</li>", ((_render(item, depth + 1),) for item in value))
        return format_html('<ul class="json-array">{}</ul>', items)
    return format_html('<span class="json-text">{}</span>', str(value))


NONE = mark_safe('<span class="faint">—</span>')


@register.simple_tag
def confidence_bar(value) -> SafeString:
    """A small bar and the figure; `meter` needs no inline style (the CSP forbids it)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return NONE
    clamped = min(max(float(value), 0.0), 1.0)
    return format_html(
        '<span class="confidence"><meter min="0" max="1" low="0.5" high="0.8" optimum="1" '
        'value="{}" aria-hidden="true"></meter><span class="confidence-value">{}</span></span>',
        f"{clamped:.4f}",
        f"{float(value):.2f}",
    )


TONES = (
    ("failed", "bad"),
    ("error", "bad"),
    ("erased", "bad"),
    ("escalation.", "warn"),
    ("retried", "warn"),
    ("rejected", "warn"),
    ("sign_in_failed", "warn"),
    ("agent.decided", "decision"),
    ("published", "ok"),
    ("ledger.", "ok"),
)


@register.filter
def event_tone(event: str) -> str:
    for needle, tone in TONES:
        if needle in (event or ""):
            return tone
    return "neutral"


@register.filter
def record_tone(record) -> str:
    """An event's tone, and a failed verification's as bad as it is."""
    if record.event == "ledger.verified" and record.decision == "broken":
        return "bad"
    return event_tone(record.event)


ROW = (
    '<tr><td class="num"><a class="mono" href="{url}">#{seq}</a></td>'
    '<td class="nowrap"><time datetime="{iso}">{day} <span class="faint">{clock}</span></time></td>'
    '<td><span class="event {tone}">{event}</span></td>'
    '<td>{actor}<div class="sub">{actor_type}</div></td>'
    "<td>{team}</td><td>{work}</td><td>{decision}</td><td>{confidence}</td>"
    '<td class="nowrap"><a href="{url}">View<span class="visually-hidden"> record #{seq}'
    "</span> →</a></td></tr>"
)


@register.simple_tag
def log_rows(records) -> SafeString:
    """The rows of the log table, built in Python: fifty rows through the template engine
    cost several times the page query, and this page must stay fast at any depth."""
    base = reverse("decision-list")
    rows = []
    for r in records:
        moment = timezone.localtime(r.recorded_at)
        workflow = r.workflow_name or r.workflow_id
        agent = r.agent_name or r.agent_id
        if workflow and agent:
            work = format_html('{}<div class="sub">{}</div>', workflow, agent)
        else:
            work = workflow or agent or NONE
        rows.append(
            format_html(
                ROW,
                url=f"{base}{r.seq}/",
                seq=r.seq,
                iso=moment.isoformat(),
                day=moment.strftime("%Y-%m-%d"),
                clock=moment.strftime("%H:%M:%S"),
                tone=record_tone(r),
                event=r.event,
                actor=r.actor_name or r.actor_id or "—",
                actor_type=actor_label(r.actor_type),
                team=r.team_name or r.team_id or NONE,
                work=work,
                decision=format_html('<span class="decision">{}</span>', r.decision)
                if r.decision
                else NONE,
                confidence=confidence_bar(r.confidence),
            )
        )
    return format_html_join("", "{}", ((row,) for row in rows))


@register.filter
def short_hash(value: str) -> str:
    return (value or "")[:12]


@register.filter
def actor_label(actor_type: str) -> str:
    return {"person": "Person", "agent": "Agent", "system": "System"}.get(actor_type, actor_type)


@register.simple_tag
def chunked_hash(value: str) -> SafeString:
    """A 64-digit hash in groups of eight, so two hashes can be compared by eye."""
    value = value or ""
    groups = [value[i : i + 8] for i in range(0, len(value), 8)]
    return format_html(
        '<code class="hash" title="{}">{}</code>',
        value,
        format_html_join(" ", "<span>{}</span>", ((group,) for group in groups)),
    )
