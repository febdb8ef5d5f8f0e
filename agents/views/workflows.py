"""Workflow pages: list, create, the workflow page (overview, diagram, versions), the editor,
submit and withdraw, review (approve or reject), history with rollback, one version.

Objects come only from `Workflow.objects.restrict(user, action)` (through `object_or_404`), so a
workflow someone may not see, or may not change or publish, is a 404 on the page that needs it.
Writes go through `agents.versions`; its errors are shown next to what they name.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from agents import versions
from agents import workflow_display as display
from agents.definitions import DefinitionError, diff
from agents.forms.workflow_editor import EditorChoices, WorkflowEditor
from agents.forms.workflow_state import (
    PATTERN_CHOICES,
    PATTERN_HELP,
    starter_state,
    state_from_definition,
    state_from_post,
)
from agents.forms.workflows import NewWorkflowForm, ReviewForm, RollbackForm, SubmitForm
from agents.models import VersionStatus, Workflow
from agents.versions import MAX_NOTE
from governance.access import object_or_404
from governance.htmx import render_page_or_partial
from governance.models import Team
from governance.permissions import allowed_actions
from governance.roles import Role, has_role

PAGE_SIZE = 50
EDITOR_PAGE = "agents/workflows/editor.html"
EDITOR_PARTIAL = "agents/workflows/_editor_form.html"


def may_create(user) -> bool:
    return has_role(user, Role.BUILDER, Role.ADMIN)


def teams_for_new(user):
    return Team.objects.all() if has_role(user, Role.ADMIN) else Team.objects.of_user(user)


# --- List ----------------------------------------------------------------------------------------


@require_safe
def workflow_list(request):
    page = Paginator(display.listing(request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    for workflow in page.object_list:
        workflow.pattern_label = display.pattern_label(workflow.pattern)
    return render(
        request,
        "agents/workflows/list.html",
        {"page": page, "workflows": page.object_list, "may_create": may_create(request.user)},
    )


# --- Create and edit -----------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def workflow_create(request):
    user = request.user
    if not may_create(user):
        raise PermissionDenied("only builders and admins create workflows")
    teams = teams_for_new(user)
    op = request.POST.get("op", "")
    if request.method == "GET" or op == "start":
        form = NewWorkflowForm(request.POST if op == "start" else None, teams=teams)
        if op != "start" or not form.is_valid():
            if request.method == "GET":
                form.initial = {"pattern": request.GET.get("pattern", "sequential")}
            patterns = [(value, label, PATTERN_HELP[value]) for value, label in PATTERN_CHOICES]
            return render(
                request, "agents/workflows/new.html", {"form": form, "patterns": patterns}
            )
        meta = {
            "name": form.cleaned_data["name"],
            "team": str(form.cleaned_data["team"].pk),
        }
        editor = WorkflowEditor(
            starter_state(form.cleaned_data["pattern"], meta=meta), choices=EditorChoices(user)
        )
        return _render_editor(request, editor, workflow=None, teams=teams)
    editor = WorkflowEditor(
        state_from_post(request.POST, meta_fields=("name", "team")), choices=EditorChoices(user)
    )
    if op != "save":
        return _edit_op(request, editor, op, workflow=None, teams=teams)
    definition = editor.to_definition()
    team = (
        teams.filter(pk=editor.state.meta.get("team") or None).first()
        if _is_id(editor.state.meta.get("team"))
        else None
    )
    if team is None:
        editor.add_error("team", "choose one of your teams")
    if not editor.has_errors:
        try:
            workflow = versions.create(
                versions.WORKFLOW,
                actor=user,
                name=editor.state.meta.get("name", ""),
                team=team,
                definition=definition,
            )
        except DefinitionError as exc:
            editor.add_definition_error(exc.path, exc.problem)
        except versions.VersionError as exc:
            editor.add_error(exc.field, exc.message)
        except PermissionDenied as exc:
            editor.add_error("team", str(exc) or "you may not create workflows for this team")
        else:
            messages.success(request, f"Workflow {workflow.name} created with draft version 1.")
            return redirect(workflow)
    return _render_editor(request, editor, workflow=None, teams=teams)


@require_http_methods(["GET", "POST"])
def workflow_edit(request, pk: int):
    user = request.user
    workflow = object_or_404(user, Workflow, "change", pk=pk)
    choices = EditorChoices(user, workflow=workflow)
    if request.method == "GET":
        source = versions.draft_of(workflow) or workflow.versions.order_by("-number").first()
        editor = WorkflowEditor(
            state_from_definition(
                source.definition if source else None, meta={"name": workflow.name}
            ),
            choices=choices,
        )
        return _render_editor(request, editor, workflow=workflow, base_version=source)
    editor = WorkflowEditor(state_from_post(request.POST), choices=choices)
    op = request.POST.get("op", "save")
    if op != "save":
        return _edit_op(request, editor, op, workflow=workflow)
    definition = editor.to_definition()
    if not editor.has_errors:
        try:
            with transaction.atomic():
                draft = versions.save_draft(workflow, definition, actor=user)
                name = editor.state.meta.get("name", "").strip()
                if name != workflow.name:
                    versions.rename(workflow, actor=user, name=name)
        except DefinitionError as exc:
            editor.add_definition_error(exc.path, exc.problem)
        except versions.VersionError as exc:
            editor.add_error(exc.field, exc.message)
        else:
            messages.success(request, f"Draft version {draft.number} saved.")
            return redirect(workflow)
    return _render_editor(request, editor, workflow=workflow)


def _is_id(value) -> bool:
    return isinstance(value, str) and value.isdigit() and len(value) < 12


def _edit_op(request, editor: WorkflowEditor, op: str, *, workflow, teams=None):
    if op != "refresh" and not editor.apply(op):
        return HttpResponseBadRequest("unknown editor operation")
    editor.sync()
    return _render_editor(request, editor, workflow=workflow, teams=teams)


def _render_editor(request, editor: WorkflowEditor, *, workflow, teams=None, base_version=None):
    if workflow is None:
        action = reverse("workflow-create")
        current_team = editor.state.meta.get("team", "")
        team_choices = [(str(t.pk), t.name) for t in (teams if teams is not None else [])]
    else:
        action = reverse("workflow-edit", args=[workflow.pk])
        current_team, team_choices = "", []
        if base_version is None:
            base_version = versions.draft_of(workflow)
    context = {
        **editor.render_context(),
        "workflow": workflow,
        "action": action,
        "name_cell": editor.cell("name", editor.state.meta.get("name", "")),
        "team_cell": editor.cell("team", current_team),
        "team_choices": team_choices,
        "base_version": base_version,
    }
    return render_page_or_partial(request, EDITOR_PAGE, EDITOR_PARTIAL, context)


# --- The workflow page ------------------------------------------------------------------------


def _versions(workflow):
    return list(
        workflow.versions.select_related("author", "submitted_by", "reviewed_by")
        .order_by("-number")
        .defer("definition")
    )


def _detail_context(request, workflow, *, submit_form=None, submit_error=None) -> dict:
    user = request.user
    actions = allowed_actions(user, workflow)
    all_versions = _versions(workflow)
    draft = next((v for v in all_versions if v.status == VersionStatus.DRAFT), None)
    pending = next((v for v in all_versions if v.status == VersionStatus.SUBMITTED), None)
    published = next((v for v in all_versions if v.pk == workflow.published_version_id), None)
    wanted = request.GET.get("version", "")
    shown = next((v for v in all_versions if str(v.number) == wanted), None)
    if shown is None:
        order = (draft, pending, published) if "change" in actions else (published, pending, draft)
        shown = next((v for v in order if v is not None), all_versions[0] if all_versions else None)
    definition = {}
    if shown is not None:
        definition = workflow.versions.only("definition").get(pk=shown.pk).definition
    agents, workflows = display.visible_names(user, definition)
    errors = (
        {submit_error["step"]: submit_error["message"]}
        if submit_error and submit_error.get("step") is not None
        else {}
    )
    return {
        "workflow": workflow,
        "actions": actions,
        "versions": all_versions,
        "recent_versions": all_versions[:5],
        "draft": draft,
        "pending": pending,
        "published": published,
        "shown": shown,
        "definition": definition,
        "pattern": definition.get("pattern", ""),
        "pattern_label": display.pattern_label(definition.get("pattern")),
        "pattern_help": PATTERN_HELP.get(definition.get("pattern"), ""),
        "config": definition.get("config") or {},
        "diagram": display.svg(
            definition,
            agents=agents,
            workflows=workflows,
            title=f"Diagram of {workflow.name} v{shown.number}" if shown else "Diagram",
            id_prefix="wf-shown",
        ),
        "steps": display.step_rows(definition, agents, errors=errors),
        "input_fields": definition.get("input_fields") or [],
        "triggers": display.trigger_rows(definition, workflows, slug=workflow.slug),
        "submit_form": submit_form or SubmitForm(),
        "submit_error": submit_error,
        "may_submit": "change" in actions and draft is not None and pending is None,
        "may_withdraw": "change" in actions
        and pending is not None
        and draft is None
        and pending.rollback_of is None,
        "may_review": "publish" in actions and pending is not None,
    }


@require_safe
def workflow_detail(request, pk: int):
    workflow = object_or_404(request.user, Workflow, "view", pk=pk)
    return render(request, "agents/workflows/detail.html", _detail_context(request, workflow))


@require_POST
def workflow_submit(request, pk: int):
    workflow = object_or_404(request.user, Workflow, "change", pk=pk)
    form = SubmitForm(request.POST)
    if form.is_valid():
        try:
            version = versions.submit(workflow, actor=request.user, note=form.cleaned_data["note"])
        except DefinitionError as exc:
            error = {"message": exc.problem, "path": exc.path, "step": _step_index(exc.path)}
        except versions.VersionError as exc:
            error = {"message": exc.message, "path": exc.field, "step": None}
        else:
            messages.success(
                request, f"Version {version.number} submitted for review by a second person."
            )
            return redirect(workflow)
    else:
        error = {"message": "; ".join(form.errors.get("note", [])), "path": "note", "step": None}
    context = _detail_context(request, workflow, submit_form=form, submit_error=error)
    return render(request, "agents/workflows/detail.html", context, status=400)


def _step_index(path: str) -> int | None:
    if path.startswith("steps[") and "]" in path:
        number = path[6 : path.index("]")]
        return int(number) if number.isdigit() else None
    return None


@require_POST
def workflow_withdraw(request, pk: int):
    workflow = object_or_404(request.user, Workflow, "change", pk=pk)
    try:
        version = versions.withdraw(workflow, actor=request.user)
    except versions.VersionError as exc:
        messages.error(request, f"Not withdrawn: {exc.message}.")
    else:
        messages.success(request, f"Version {version.number} is a draft again.")
    return redirect(workflow)


# --- Review ----------------------------------------------------------------------------------


def _review_context(request, workflow, pending, *, form=None, error="") -> dict:
    user = request.user
    published = workflow.published_version
    before = published.definition if published else None
    agents, workflows = display.visible_names(user, before or {}, pending.definition)
    return {
        "workflow": workflow,
        "pending": pending,
        "published": published,
        "changes": display.diff_rows(diff(before, pending.definition)),
        "diagram_new": display.svg(
            pending.definition,
            agents=agents,
            workflows=workflows,
            title=f"Submitted version {pending.number}",
            id_prefix="wf-new",
        ),
        "diagram_old": display.svg(
            before,
            agents=agents,
            workflows=workflows,
            title=f"Published version {published.number}",
            id_prefix="wf-old",
        )
        if published
        else None,
        "steps": display.step_rows(pending.definition, agents),
        "form": form or ReviewForm(initial={"version": pending.number}),
        "error": error,
        "is_author": user.pk in {pending.author_id, pending.submitted_by_id},
    }


@require_http_methods(["GET", "POST"])
def workflow_review(request, pk: int):
    workflow = object_or_404(request.user, Workflow, "publish", pk=pk)
    pending = versions.pending_of(workflow)
    if pending is None:
        messages.info(request, "No version of this workflow is waiting for review.")
        return redirect(workflow)
    if request.method == "GET":
        return render(
            request, "agents/workflows/review.html", _review_context(request, workflow, pending)
        )
    form = ReviewForm(request.POST)
    status, error = 400, ""
    if form.is_valid():
        data = form.cleaned_data
        try:
            if data["decision"] == "approve":
                version = versions.approve(
                    workflow, actor=request.user, number=data["version"], reason=data["reason"]
                )
                messages.success(request, f"Version {version.number} is published.")
            else:
                version = versions.reject(
                    workflow, actor=request.user, number=data["version"], reason=data["reason"]
                )
                messages.success(request, f"Version {version.number} was rejected.")
            return redirect(workflow)
        except versions.FourEyesViolation as exc:
            status, error = 403, str(exc)
        except versions.VersionError as exc:
            if exc.field in form.fields:
                form.add_error(exc.field, exc.message)
            else:
                error = exc.message
        except DefinitionError as exc:
            error = f"Cannot publish: {exc.problem} ({exc.path})"
    context = _review_context(request, workflow, pending, form=form, error=error)
    return render(request, "agents/workflows/review.html", context, status=status)


# --- History, one version, rollback ------------------------------------------------------------


@require_safe
def workflow_history(request, pk: int):
    workflow = object_or_404(request.user, Workflow, "view", pk=pk)
    actions = allowed_actions(request.user, workflow)
    all_versions = _versions(workflow)
    pending = next((v for v in all_versions if v.status == VersionStatus.SUBMITTED), None)
    return render(
        request,
        "agents/workflows/history.html",
        {
            "workflow": workflow,
            "versions": all_versions,
            "actions": actions,
            "may_rollback": "change" in actions and pending is None,
        },
    )


@require_safe
def workflow_version(request, pk: int, number: int):
    workflow = object_or_404(request.user, Workflow, "view", pk=pk)
    version = get_object_or_404(
        workflow.versions.select_related("author", "submitted_by", "reviewed_by"), number=number
    )
    previous = (
        workflow.versions.filter(number__lt=number, status=VersionStatus.PUBLISHED)
        .order_by("-number")
        .first()
    )
    before = previous.definition if previous else None
    agents, workflows = display.visible_names(request.user, version.definition, before or {})
    return render(
        request,
        "agents/workflows/version.html",
        {
            "workflow": workflow,
            "version": version,
            "previous": previous,
            "changes": display.diff_rows(diff(before, version.definition)),
            "diagram": display.svg(
                version.definition,
                agents=agents,
                workflows=workflows,
                title=f"{workflow.name} version {version.number}",
                id_prefix="wf-version",
            ),
            "steps": display.step_rows(version.definition, agents),
            "pattern_label": display.pattern_label(version.definition.get("pattern")),
            "definition_json": display._value_text(version.definition),
        },
    )


@require_POST
def workflow_rollback(request, pk: int, number: int):
    workflow = object_or_404(request.user, Workflow, "change", pk=pk)
    form = RollbackForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Not rolled back: the note is at most {MAX_NOTE} characters.")
        return redirect("workflow-history", pk=workflow.pk)
    try:
        version = versions.rollback(
            workflow, actor=request.user, number=number, note=form.cleaned_data["note"]
        )
    except versions.VersionError as exc:
        messages.error(request, f"Not rolled back: {exc.message}.")
    except DefinitionError as exc:
        messages.error(request, f"Not rolled back: {exc.problem} ({exc.path}).")
    else:
        messages.success(
            request,
            f"Version {version.number} (a copy of version {version.rollback_of}) is waiting "
            "for a second person to approve it.",
        )
        return redirect(workflow)
    return redirect("workflow-history", pk=workflow.pk)
