"""The "Try it" tab: a form generated from a version's input fields, and what the run gave."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from agents import tryit
from agents.forms.tryit import TryForm
from agents.kinds.base import AgentSpec
from agents.models import Agent
from agents.views.agents import agent_context
from governance.access import object_or_404
from governance.htmx import render_page_or_partial
from governance.models import Team


def _number(value) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Http404("no such version") from None


@require_http_methods(["GET", "POST"])
def agent_try(request, pk: int):
    agent = object_or_404(request.user, Agent, "change", pk=pk)
    source = request.POST if request.method == "POST" else request.GET
    try:
        version = tryit.version_to_try(agent, _number(source.get("version")))
    except tryit.TryError:
        raise Http404("no such version") from None
    spec = AgentSpec.from_definition(version.definition, name=agent.name, version=version.number)
    bound = request.method == "POST"
    form = TryForm(request.POST if bound else None, fields=spec.input_fields)
    result = refusal = None
    if bound and form.is_valid():
        try:
            result = tryit.try_agent(
                agent, actor=request.user, inputs=form.inputs(), number=version.number
            )
        except tryit.TryError as exc:
            name = exc.field.removeprefix("inputs.")
            if name in form.fields:
                form.add_error(name, exc.message)
            else:
                refusal = exc.message
        except PermissionDenied as exc:
            refusal = str(exc)
    answering_team = None
    if result is not None and result.outcome == "awaiting_person":
        answering_team = Team.objects.filter(pk=_team_pk(result.context.get("team_id"))).first()
    context = {
        **agent_context(request, agent),
        "tab": "try",
        "version": version,
        "all_versions": agent.versions.order_by("-number").only("number", "status"),
        "form": form,
        "result": result,
        "refusal": refusal,
        "answering_team": answering_team,
        "try_url": reverse("agent-try", args=[agent.pk]),
        "output_fields": spec.output_fields,
    }
    return render_page_or_partial(
        request, "agents/agent_try.html", "agents/_try_panel.html", context
    )


def _team_pk(value) -> int | None:
    return int(value) if str(value or "").isdigit() else None
