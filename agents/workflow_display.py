"""What the workflow pages and the workflows API show: which version, its diagram, the names of
the agents and workflows it refers to, and a reader's version of a diff.

Names come only from what the person may view (one query each): an agent they may not see is
"agent #12", never its name.
"""

from __future__ import annotations

import json

from django.db.models import Exists, OuterRef, Subquery
from django.urls import NoReverseMatch, reverse
from django.utils.safestring import SafeString, mark_safe

from agents import diagram
from agents.definitions import DefinitionError
from agents.models import Agent, VersionStatus, Workflow, WorkflowVersion
from agents.workflow_spec import PATTERNS

PATTERN_LABELS = dict(diagram.PATTERN_LABELS)


def listing(user):
    """Workflows `user` may view, with what the list shows, in a constant number of queries."""
    versions = WorkflowVersion.objects.filter(workflow=OuterRef("pk"))
    return (
        Workflow.objects.restrict(user, "view")
        .select_related("team", "published_version")
        .defer("published_version__definition")
        .annotate(
            pattern=Subquery(versions.order_by("-number").values("definition__pattern")[:1]),
            draft_number=Subquery(versions.filter(status=VersionStatus.DRAFT).values("number")[:1]),
            pending_number=Subquery(
                versions.filter(status=VersionStatus.SUBMITTED).values("number")[:1]
            ),
            has_versions=Exists(versions),
        )
        .order_by("name", "id")
    )


def pattern_label(pattern) -> str:
    return PATTERN_LABELS.get(pattern, "—") if pattern in PATTERNS else "—"


def _as_id(value) -> int | None:
    """An id as the spec reads it: an int, or digits in a string."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit() and len(value) < 12:
        return int(value)
    return None


def _references(definition) -> tuple[list, list]:
    """[(index, agent id)] of the steps and [(index, workflow id)] of the triggers."""
    if not isinstance(definition, dict):
        return [], []
    steps = definition.get("steps") if isinstance(definition.get("steps"), list) else []
    triggers = definition.get("triggers") if isinstance(definition.get("triggers"), list) else []
    agents = [
        (i, _as_id(s.get("agent_id")))
        for i, s in enumerate(steps)
        if isinstance(s, dict) and _as_id(s.get("agent_id")) is not None
    ]
    workflows = [
        (i, _as_id(t.get("workflow_id")))
        for i, t in enumerate(triggers)
        if isinstance(t, dict) and _as_id(t.get("workflow_id")) is not None
    ]
    return agents, workflows


def visible_names(user, *definitions) -> tuple[dict, dict]:
    """({agent id: name}, {workflow id: name}) for the ones `user` may view."""
    agent_ids, workflow_ids = set(), set()
    for definition in definitions:
        agents, workflows = _references(definition)
        agent_ids.update(pk for _, pk in agents)
        workflow_ids.update(pk for _, pk in workflows)
    names = {}, {}
    if agent_ids:
        rows = Agent.objects.restrict(user, "view").filter(pk__in=agent_ids)
        names = dict(rows.values_list("pk", "name")), names[1]
    if workflow_ids:
        rows = Workflow.objects.restrict(user, "view").filter(pk__in=workflow_ids)
        names = names[0], dict(rows.values_list("pk", "name"))
    return names


def refuse_invisible(user, definition) -> None:
    """DefinitionError when the definition names an agent or workflow `user` may not view:
    choices are restricted to what the person may use (STYLE.md habit 3)."""
    agents, workflows = visible_names(user, definition)
    step_refs, trigger_refs = _references(definition)
    for index, pk in step_refs:
        if pk not in agents:
            raise DefinitionError(f"steps[{index}].agent_id", "no such agent (or not visible)")
    for index, pk in trigger_refs:
        if pk not in workflows:
            raise DefinitionError(
                f"triggers[{index}].workflow_id", "no such workflow (or not visible)"
            )


def svg(definition, *, agents: dict, workflows: dict, title: str, id_prefix: str) -> SafeString:
    """The diagram, safe to place in a page: `diagram.render` escapes every text."""
    return mark_safe(  # noqa: S308 - every text in it is escaped by diagram.render
        diagram.render(
            definition,
            agent_names=agents,
            workflow_names=workflows,
            title=title,
            id_prefix=id_prefix,
        )
    )


def agent_url(agent_id) -> str:
    try:
        return reverse("agent-detail", args=[agent_id])
    except NoReverseMatch:  # the agent pages may not be mounted (yet)
        return ""


def step_rows(definition, agents: dict, *, errors: dict | None = None) -> list[dict]:
    """The steps of a definition as the overview table shows them."""
    rows = []
    steps = definition.get("steps") if isinstance(definition, dict) else None
    labels = {
        s.get("key"): s.get("label") or s.get("key") for s in steps or [] if isinstance(s, dict)
    }
    for index, step in enumerate(steps or []):
        if not isinstance(step, dict):
            continue
        agent_id = step.get("agent_id")
        visible = agent_id in agents
        mapping = step.get("input_mapping") if isinstance(step.get("input_mapping"), dict) else {}
        rows.append(
            {
                "index": index,
                "key": step.get("key", ""),
                "label": step.get("label") or step.get("key", ""),
                "role": step.get("role", ""),
                "agent_name": agents.get(agent_id) if visible else f"agent #{agent_id}",
                "agent_url": agent_url(agent_id) if visible else "",
                "agent_version": step.get("agent_version"),
                "after": [labels.get(a, a) for a in step.get("after") or []],
                "when": step.get("when", ""),
                "mapping": [(target, source_text(source)) for target, source in mapping.items()],
                "error": (errors or {}).get(index),
            }
        )
    return rows


def source_text(source) -> str:
    if isinstance(source, dict) and set(source) == {"const"}:
        return "constant " + json.dumps(source["const"], ensure_ascii=False)[:200]
    return str(source)


def trigger_rows(definition, workflows: dict, *, slug: str) -> list[dict]:
    rows = []
    triggers = definition.get("triggers") if isinstance(definition, dict) else None
    for trigger in triggers or []:
        if not isinstance(trigger, dict):
            continue
        kind = trigger.get("type")
        if kind == "webhook":
            rows.append({"type": kind, "text": "Webhook", "detail": f"POST /hooks/{slug}/"})
        elif kind == "schedule":
            rows.append(
                {
                    "type": kind,
                    "text": f"Every {trigger.get('every_minutes')} minutes",
                    "detail": json.dumps(trigger.get("input") or {}, ensure_ascii=False)[:500],
                }
            )
        elif kind == "workflow":
            other = trigger.get("workflow_id")
            name = workflows.get(other, f"workflow #{other}")
            rows.append(
                {
                    "type": kind,
                    "text": f"When \u2018{name}\u2019 finishes",
                    "detail": f"outcome: {trigger.get('outcome', 'completed')}",
                    "url": reverse("workflow-detail", args=[other]) if other in workflows else "",
                }
            )
    return rows


def diff_rows(changes: list[dict]) -> list[dict]:
    """Diff entries with their values as short readable text."""
    return [
        {
            "path": change["path"],
            "before": _value_text(change["before"]),
            "after": _value_text(change["after"]),
            "added": change["before"] is None,
            "removed": change["after"] is None and change["before"] is not None,
        }
        for change in changes
    ]


def _value_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, indent=1)
