"""Agent pages: the list, creating one, its overview, the editor, submitting and reviewing
versions, and the history with rollback.

Every object comes from `Agent.objects.restrict(user, action)` (through `object_or_404`), so an
agent someone may not see, or may not take this action on, is a 404. Writes go through
`agents.versions`; their errors come back next to the field they name.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, F, OuterRef, Q, Subquery
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from agents import connections, versions
from agents.definitions import DefinitionError, diff
from agents.forms.agents import AgentFilterForm, RejectForm, ReviewForm, SubmitForm
from agents.forms.definition import DefinitionEditor
from agents.models import Agent, AgentVersion, VersionStatus
from agents.versions import FourEyesViolation, VersionError
from agents.views.common import go_to, may_create, shown_actions
from governance.access import object_or_404
from governance.htmx import render_page_or_partial
from governance.models import Team

KIND_HELP = {
    "rules": "A decision table: rows of conditions over the input, each with its outputs.",
    "llm": "A prompt sent to an OpenAI-compatible model, which answers with a decision.",
    "http": "Calls a REST endpoint and maps its JSON answer to the output fields.",
    "human": "Opens a task for a team and waits for a person's answer.",
}


# --- List -------------------------------------------------------------------------------------


def listed(agents):
    """`agents` (restricted already) with what the list shows, in one query."""

    def open_version(status):
        rows = AgentVersion.objects.filter(agent=OuterRef("pk"), status=status)
        return Subquery(rows.values("number")[:1])

    return agents.select_related("team").annotate(
        published_number=F("published_version__number"),
        draft_number=open_version(VersionStatus.DRAFT),
        pending_number=open_version(VersionStatus.SUBMITTED),
    )


def teams_of(agents) -> list[dict]:
    """Each team owning one of `agents`, by name, with how many: the team filter's choices and
    the unfiltered count in one query (a list: a queryset in a ModelChoiceField is read with
    `iterator()`, a WITH HOLD cursor on PostgreSQL, and once more to validate a choice)."""
    return list(
        agents.order_by()
        .values("team_id", "team__name")
        .annotate(agents=Count("pk"))
        .order_by("team__name", "team_id")
    )


def _filtered(agents, data: dict):
    if data.get("q"):
        agents = agents.filter(Q(name__icontains=data["q"]) | Q(slug__icontains=data["q"]))
    if data.get("kind"):
        agents = agents.filter(kind=data["kind"])
    if data.get("team"):
        agents = agents.filter(team_id=data["team"])
    if data.get("status") == "review":
        agents = agents.filter(pending_number__isnull=False)
    elif data.get("status") == "unpublished":
        agents = agents.filter(published_version__isnull=True)
    return agents


AGENTS_PER_PAGE = 50


@require_safe
def agent_list(request):
    visible = Agent.objects.restrict(request.user, "view")  # built once, read twice
    teams = teams_of(visible)
    form = AgentFilterForm(request.GET or None, teams=teams)  # unbound: no filters
    filters = form.cleaned_data if form.is_valid() else {}
    agents = _filtered(listed(visible), filters)
    # Pages of 50: a list of thousands renders for seconds (bench/rbac.py).
    paginator = Paginator(agents, AGENTS_PER_PAGE)
    if not any(filters.values()):
        paginator.count = sum(team["agents"] for team in teams)  # known: no COUNT query
    page = paginator.get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "agents": page.object_list,
        "page": page,
        "query": query.urlencode(),
        "form": form,
        "filtered": form.is_bound and any(form.data.get(k) for k in form.fields),
        "may_create": may_create(request.user),
    }
    return render_page_or_partial(
        request, "agents/agent_list.html", "agents/_agent_table.html", context
    )


# --- The editor (create and edit) -------------------------------------------------------------


def editor_context(user) -> dict:
    return {
        "all_teams": list(Team.objects.all()),
        "connections": list(connections.usable(user).only("pk", "name", "kind", "model")),
    }


def _save_errors(editor: DefinitionEditor, exc: Exception) -> None:
    if isinstance(exc, DefinitionError):
        editor.add_error(exc.path, exc.problem)
    elif isinstance(exc, (VersionError, connections.ConnectionFieldError)):
        editor.add_error(exc.field, exc.message)
    else:
        editor.form_errors.append(str(exc))


def _render_editor(request, page: str, context: dict):
    return render_page_or_partial(request, page, "agents/editor/_editor.html", context)


CREATE_FIELDS = ("name", "team", "kind")


@require_http_methods(["GET", "POST"])
def agent_create(request):
    user = request.user
    if not may_create(user):
        raise PermissionDenied("only builders and admins create agents")
    teams = list(connections.teams_for_new(user))
    context = editor_context(user)
    if request.method == "GET":
        kind = request.GET.get("kind") if request.GET.get("kind") in KIND_HELP else "rules"
        meta = {"name": "", "team": str(teams[0].pk) if len(teams) == 1 else "", "kind": kind}
        editor = DefinitionEditor.from_definition(kind, None, context=context, meta=meta)
        editor.starter_rows()
    else:
        posted = request.POST.get("kind", "")
        kind = posted if posted in KIND_HELP else "rules"
        editor = DefinitionEditor.from_post(
            kind, request.POST, context=context, meta_fields=CREATE_FIELDS
        )
        editor.state.meta["kind"] = kind
        op = request.POST.get("op", "save")
        if posted not in KIND_HELP:
            editor.add_error("kind", f"choose one of {', '.join(KIND_HELP)}")
        elif op == "save":
            response = _create(request, editor, teams)
            if response is not None:
                return response
        elif op != "refresh" and not editor.apply(op):
            editor.form_errors.append("That action is not one this form knows.")
    page_context = {
        "editor": editor,
        "creating": True,
        "teams": teams,
        "kinds": [(value, label, KIND_HELP[value]) for value, label in Agent.Kind.choices],
        "editor_url": reverse("agent-create"),
    }
    return _render_editor(request, "agents/agent_create.html", page_context)


def _create(request, editor: DefinitionEditor, teams):
    meta = editor.state.meta
    team = next((t for t in teams if str(t.pk) == meta.get("team")), None)
    definition = editor.to_definition()
    if team is None:
        editor.add_error("team", "choose one of your teams")
    if editor.has_errors:
        return None
    try:
        agent = versions.create(
            versions.AGENT,
            actor=request.user,
            name=meta.get("name", ""),
            team=team,
            definition=definition,
        )
    except (DefinitionError, VersionError, connections.ConnectionFieldError) as exc:
        _save_errors(editor, exc)
        return None
    except PermissionDenied as exc:
        editor.form_errors.append(str(exc))
        return None
    messages.success(request, f"Agent {agent.name} created with draft v1. Try it, then submit it.")
    return go_to(request, agent.get_absolute_url())


def _editable_base(agent: Agent) -> AgentVersion:
    """What the editor starts from: the draft, or the latest version (a new draft copies it)."""
    return versions.draft_of(agent) or agent.versions.order_by("-number").first()


@require_http_methods(["GET", "POST"])
def agent_edit(request, pk: int):
    agent = object_or_404(request.user, Agent, "change", pk=pk)
    base = _editable_base(agent)
    context = editor_context(request.user)
    if request.method == "GET":
        editor = DefinitionEditor.from_definition(agent.kind, base.definition, context=context)
    else:
        editor = DefinitionEditor.from_post(agent.kind, request.POST, context=context)
        op = request.POST.get("op", "save")
        if op == "save":
            definition = editor.to_definition()
            if not editor.has_errors:
                try:
                    draft = versions.save_draft(agent, definition, actor=request.user)
                except (DefinitionError, VersionError, connections.ConnectionFieldError) as exc:
                    _save_errors(editor, exc)
                except PermissionDenied as exc:
                    editor.form_errors.append(str(exc))
                else:
                    messages.success(request, f"Draft v{draft.number} saved.")
                    return go_to(request, reverse("agent-edit", args=[agent.pk]))
        elif op != "refresh" and not editor.apply(op):
            editor.form_errors.append("That action is not one this form knows.")
    page_context = {
        **agent_context(request, agent),
        "editor": editor,
        "base": base,
        "tab": "edit",
        "editor_url": reverse("agent-edit", args=[agent.pk]),
    }
    return _render_editor(request, "agents/agent_edit.html", page_context)


# --- Overview, submit, withdraw ---------------------------------------------------------------


def agent_context(request, agent: Agent) -> dict:
    return {
        "agent": agent,
        "actions": shown_actions(request.user, agent),
        "draft": versions.draft_of(agent),
        "pending": versions.pending_of(agent),
        "published": agent.published_version,
    }


def _version_rows(agent: Agent):
    return agent.versions.select_related("author", "submitted_by", "reviewed_by")


@require_safe
def agent_detail(request, pk: int):
    agent = get_object_or_404(
        Agent.objects.restrict(request.user, "view").select_related(
            "team", "published_version", "published_version__reviewed_by", "created_by"
        ),
        pk=pk,
    )
    context = agent_context(request, agent)
    current = context["draft"] or context["pending"] or context["published"]
    context.update(
        tab="overview",
        current=current,
        submit_form=SubmitForm(),
        connection_names=connections.visible_names(
            request.user, connections.referenced_ids(current.definition if current else {})
        ),
        teams={str(t.pk): t.name for t in Team.objects.all()},
    )
    return render(request, "agents/agent_detail.html", context)


@require_POST
def agent_submit(request, pk: int):
    agent = object_or_404(request.user, Agent, "change", pk=pk)
    form = SubmitForm(request.POST)
    if form.is_valid():
        try:
            version = versions.submit(agent, actor=request.user, note=form.cleaned_data["note"])
        except (VersionError, DefinitionError, PermissionDenied) as exc:
            messages.error(request, f"Not submitted: {_reason(exc)}")
        else:
            messages.success(
                request, f"v{version.number} submitted for review. A second person approves it."
            )
    else:
        messages.error(request, f"Not submitted: {form.errors.as_text()}")
    return go_to(request, agent.get_absolute_url())


@require_POST
def agent_withdraw(request, pk: int):
    agent = object_or_404(request.user, Agent, "change", pk=pk)
    try:
        version = versions.withdraw(agent, actor=request.user)
    except (VersionError, PermissionDenied) as exc:
        messages.error(request, f"Not withdrawn: {_reason(exc)}")
    else:
        messages.success(request, f"v{version.number} is a draft again.")
    return go_to(request, agent.get_absolute_url())


def _reason(exc: Exception) -> str:
    if isinstance(exc, VersionError):
        return exc.message
    if isinstance(exc, DefinitionError):
        return f"{exc.path}: {exc.problem}"
    return str(exc)


# --- Review (approvers) -----------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def agent_review(request, pk: int):
    agent = object_or_404(request.user, Agent, "publish", pk=pk)
    pending = versions.pending_of(agent)
    approve_form = ReviewForm(prefix="approve")
    reject_form = RejectForm(prefix="reject")
    refusal = None
    status = 200
    if request.method == "POST" and pending is not None:
        decision = request.POST.get("decision")
        form = ReviewForm(request.POST, prefix="approve")
        if decision == "reject":
            form = reject_form = RejectForm(request.POST, prefix="reject")
        else:
            approve_form = form
        if form.is_valid():
            try:
                if decision == "reject":
                    versions.reject(
                        agent,
                        actor=request.user,
                        number=pending.number,
                        reason=form.cleaned_data["reason"],
                    )
                    messages.success(request, f"v{pending.number} rejected; the builder sees why.")
                else:
                    versions.approve(
                        agent,
                        actor=request.user,
                        number=pending.number,
                        reason=form.cleaned_data["reason"],
                    )
                    messages.success(request, f"v{pending.number} published.")
                return go_to(request, agent.get_absolute_url())
            except FourEyesViolation as exc:
                refusal, status = str(exc), 403
            except PermissionDenied as exc:
                refusal, status = str(exc), 403
            except (VersionError, DefinitionError) as exc:
                if isinstance(exc, VersionError) and exc.field in form.fields:
                    form.add_error(exc.field, exc.message)
                else:
                    refusal = _reason(exc)
                status = 400
    context = {
        **agent_context(request, agent),
        "tab": "review",
        "pending": pending,
        "changes": diff(
            agent.published_version.definition if agent.published_version else None,
            pending.definition,
        )
        if pending
        else [],
        "approve_form": approve_form,
        "reject_form": reject_form,
        "refusal": refusal,
        "own_version": pending is not None
        and request.user.pk in {pending.author_id, pending.submitted_by_id},
        "connection_names": connections.visible_names(
            request.user, connections.referenced_ids(pending.definition if pending else {})
        ),
        "teams": {str(t.pk): t.name for t in Team.objects.all()},
    }
    return render(request, "agents/agent_review.html", context, status=status)


# --- History, versions, rollback --------------------------------------------------------------


@require_safe
def agent_history(request, pk: int):
    agent = object_or_404(request.user, Agent, "view", pk=pk)
    context = {
        **agent_context(request, agent),
        "tab": "history",
        "versions": _version_rows(agent),
    }
    return render(request, "agents/agent_history.html", context)


@require_safe
def agent_version(request, pk: int, number: int):
    agent = object_or_404(request.user, Agent, "view", pk=pk)
    version = get_object_or_404(_version_rows(agent), number=number)
    published = agent.published_version
    compare_to = None
    if published is not None and published.pk != version.pk:
        compare_to = published
    context = {
        **agent_context(request, agent),
        "tab": "history",
        "version": version,
        "compare_to": compare_to,
        "changes": diff(compare_to.definition, version.definition) if compare_to else [],
        "connection_names": connections.visible_names(
            request.user, connections.referenced_ids(version.definition)
        ),
        "teams": {str(t.pk): t.name for t in Team.objects.all()},
    }
    return render(request, "agents/agent_version.html", context)


@require_POST
def agent_rollback(request, pk: int, number: int):
    agent = object_or_404(request.user, Agent, "change", pk=pk)
    note = (request.POST.get("note") or "").strip()
    try:
        version = versions.rollback(agent, actor=request.user, number=number, note=note)
    except (VersionError, DefinitionError, PermissionDenied) as exc:
        messages.error(request, f"Not rolled back: {_reason(exc)}")
    else:
        messages.success(
            request,
            f"v{version.number} (a copy of v{number}) is waiting for review: a second person "
            "publishes it.",
        )
    return go_to(request, reverse("agent-history", args=[agent.pk]))
