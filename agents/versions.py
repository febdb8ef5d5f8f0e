"""Services for versioned definitions (agents and workflows): create, edit the draft, submit,
approve or reject (four-eyes), withdraw and roll back.

Every function is one transaction that checks the actor's permission through
governance.permissions, writes, appends its ledger record, and checks again after writing
that the object is still permitted (STYLE.md habits 3 and 4).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.text import slugify

from agents import connections
from agents.definitions import DefinitionError, diff, fingerprint, validate_agent_definition
from agents.models import Agent, AgentVersion, VersionStatus, Workflow, WorkflowVersion
from governance import ledger
from governance.models import Team
from governance.permissions import allows, denied
from governance.roles import Role, has_role

MAX_NAME = 100
MAX_NOTE = 2000


class VersionError(ValueError):
    """A versioning step is not possible now; `field` names what is wrong."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class FourEyesViolation(PermissionDenied):
    """The person who wrote or submitted a version may not approve it."""


@dataclass(frozen=True)
class DefinitionType:
    label: str
    model: type
    version_model: type
    parent: str  # the version's foreign key to its definition
    validate: Callable[..., dict]  # (definition, *, for_submit) -> normalised


def _validate_agent(definition: dict, *, for_submit: bool = False) -> dict:
    return validate_agent_definition(definition)


def _validate_workflow(definition: dict, *, for_submit: bool = False) -> dict:
    from agents.workflow_spec import validate_workflow_definition

    return validate_workflow_definition(definition, for_submit=for_submit)


AGENT = DefinitionType("agent", Agent, AgentVersion, "agent", _validate_agent)
WORKFLOW = DefinitionType("workflow", Workflow, WorkflowVersion, "workflow", _validate_workflow)


def type_of(obj) -> DefinitionType:
    return AGENT if isinstance(obj, Agent) else WORKFLOW


def _refs(obj, version=None) -> dict:
    kind = type_of(obj)
    refs = {"team": obj.team, kind.label: obj}
    if version is not None:
        refs[f"{kind.label}_version"] = (version.pk, f"{obj.name} v{version.number}")
    return refs


def _require(actor, action: str, obj) -> None:
    if not allows(actor, action, obj):
        raise denied(obj, action)


def _validated(kind: DefinitionType, definition: dict, *, for_submit: bool = False) -> dict:
    try:
        return kind.validate(definition, for_submit=for_submit)
    except DefinitionError:
        raise
    except (TypeError, ValueError) as exc:  # a kind's unexpected complaint: still a 400
        raise DefinitionError("definition", str(exc)) from None


def _check_references(kind: DefinitionType, actor, definition: dict) -> None:
    """What a definition points at must be the author's to use: an agent's connections (`use`),
    a workflow's agents and followed workflows (`view`). Checked here, where every draft is
    saved, whatever page or API call saves it."""
    if kind is AGENT:
        connections.check_usable(actor, definition)
        return
    steps = definition.get("steps") or []
    followed = [
        (index, t.get("workflow_id"))
        for index, t in enumerate(definition.get("triggers") or [])
        if t.get("type") == "workflow"
    ]
    agents = set(
        Agent.objects.restrict(actor, "view")
        .filter(pk__in={s.get("agent_id") for s in steps})
        .values_list("pk", flat=True)
    )
    for index, step in enumerate(steps):
        if step.get("agent_id") not in agents:
            raise DefinitionError(f"steps[{index}].agent_id", "no such agent (or not visible)")
    if followed:
        workflows = set(
            Workflow.objects.restrict(actor, "view")
            .filter(pk__in={ident for _, ident in followed})
            .values_list("pk", flat=True)
        )
        for index, ident in followed:
            if ident not in workflows:
                raise DefinitionError(
                    f"triggers[{index}].workflow_id", "no such workflow (or not visible)"
                )


def _versions(obj):
    kind = type_of(obj)
    return kind.version_model.objects.filter(**{kind.parent: obj})


def _lock(obj):
    """Serialise writes to one definition (version numbers, the one-draft rule)."""
    return type(obj).objects.select_for_update().get(pk=obj.pk)


@transaction.atomic
def create(kind: DefinitionType, *, actor, name: str, team: Team, definition: dict):
    """A new agent or workflow with its first draft."""
    name = (name or "").strip()
    if not name:
        raise VersionError("name", "give it a name")
    if len(name) > MAX_NAME:
        raise VersionError("name", f"at most {MAX_NAME} characters")
    if not isinstance(team, Team):
        raise VersionError("team", "choose the owning team")
    if not (
        has_role(actor, Role.ADMIN)
        or (
            has_role(actor, Role.BUILDER)
            and Team.objects.of_user(actor).filter(pk=team.pk).exists()
        )
    ):
        raise PermissionDenied(f"you may not create {kind.label}s for team {team}")
    normalised = _validated(kind, definition)
    _check_references(kind, actor, normalised)
    slug = _unique_slug(kind.model, name)
    extra = {"kind": normalised["kind"]} if kind is AGENT else {}
    obj = kind.model.objects.create(name=name, slug=slug, team=team, created_by=actor, **extra)
    version = kind.version_model.objects.create(
        **{kind.parent: obj},
        number=1,
        status=VersionStatus.DRAFT,
        definition=normalised,
        author=actor,
    )
    ledger.append(
        "definition.created",
        actor=actor,
        body={"type": kind.label, "name": name, "version": 1, "definition": normalised},
        **_refs(obj, version),
    )
    _require(actor, "change", obj)  # still permitted after the write
    return obj


def _unique_slug(model, name: str) -> str:
    base = slugify(name)[:90] or model.__name__.lower()
    slug, n = base, 1
    while model.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


@transaction.atomic
def rename(obj, *, actor, name: str):
    _require(actor, "change", obj)
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME:
        raise VersionError("name", f"a name of 1 to {MAX_NAME} characters")
    before = obj.name
    obj.name = name
    obj.save(update_fields=["name", "updated_at"])
    ledger.append(
        "definition.renamed", actor=actor, body={"before": before, "after": name}, **_refs(obj)
    )
    return obj


@transaction.atomic
def save_draft(obj, definition: dict, *, actor):
    """Replace the draft's definition, creating the draft from the latest version if needed."""
    kind = type_of(obj)
    obj = _lock(obj)
    _require(actor, "change", obj)
    if kind is AGENT and isinstance(definition, dict) and definition.get("kind") != obj.kind:
        raise DefinitionError("kind", f"this agent is a {obj.kind} agent; kinds never change")
    normalised = _validated(kind, definition)
    _check_references(kind, actor, normalised)
    versions = _versions(obj)
    draft = versions.filter(status=VersionStatus.DRAFT).first()
    before = draft.definition if draft else (versions.order_by("-number").first().definition)
    if draft is None:
        number = (versions.aggregate(n=Max("number"))["n"] or 0) + 1
        draft = kind.version_model.objects.create(
            **{kind.parent: obj},
            number=number,
            status=VersionStatus.DRAFT,
            definition=normalised,
            author=actor,
        )
    else:
        draft.definition = normalised
        draft.author = actor
        draft.save(update_fields=["definition", "author", "updated_at"])
    changes = diff(before, normalised)
    ledger.append(
        "definition.edited",
        actor=actor,
        body={
            "type": kind.label,
            "version": draft.number,
            "changed": [c["path"] for c in changes][:200],
        },
        **_refs(obj, draft),
    )
    return draft


def draft_of(obj):
    return _versions(obj).filter(status=VersionStatus.DRAFT).first()


def pending_of(obj):
    return _versions(obj).filter(status=VersionStatus.SUBMITTED).first()


@transaction.atomic
def submit(obj, *, actor, note: str = ""):
    """Freeze the draft for review."""
    kind = type_of(obj)
    obj = _lock(obj)
    _require(actor, "change", obj)
    if len(note or "") > MAX_NOTE:
        raise VersionError("note", f"at most {MAX_NOTE} characters")
    draft = draft_of(obj)
    if draft is None:
        raise VersionError("version", "there is no draft to submit: edit the definition first")
    if pending_of(obj) is not None:
        raise VersionError(
            "version", "another version is already waiting for review: withdraw it first"
        )
    # Agents may have changed since the edit; a submitted workflow pins their versions.
    normalised = _validated(kind, draft.definition, for_submit=True)
    published = obj.published_version
    if published is not None and fingerprint(published.definition) == fingerprint(normalised):
        raise VersionError("version", "the draft is identical to the published version")
    draft.definition = normalised
    draft.status = VersionStatus.SUBMITTED
    draft.submitted_by = actor
    draft.submitted_at = timezone.now()
    draft.submit_note = (note or "").strip()
    draft.save()
    _record_submission(obj, draft, actor, published)
    return draft


def _record_submission(obj, version, actor, published) -> None:
    kind = type_of(obj)
    ledger.append(
        "definition.submitted",
        actor=actor,
        body={
            "type": kind.label,
            "version": version.number,
            "note": version.submit_note,
            "rollback_of": version.rollback_of,
            "definition": version.definition,
            "fingerprint": fingerprint(version.definition),
            "published_version": published.number if published else None,
            "changed": [
                c["path"]
                for c in diff(published.definition if published else None, version.definition)
            ][:200],
        },
        **_refs(obj, version),
    )


@transaction.atomic
def withdraw(obj, *, actor):
    """Take a submitted version back to draft (when there is no other draft)."""
    obj = _lock(obj)
    _require(actor, "change", obj)
    pending = pending_of(obj)
    if pending is None:
        raise VersionError("version", "nothing is waiting for review")
    if pending.rollback_of is not None:
        raise VersionError("version", "a rollback cannot be withdrawn to a draft; reject it")
    if draft_of(obj) is not None:
        raise VersionError("version", "a newer draft exists; reject the submitted version")
    pending.status = VersionStatus.DRAFT
    pending.submitted_by = None
    pending.submitted_at = None
    pending.save()
    ledger.append(
        "definition.withdrawn",
        actor=actor,
        body={"type": type_of(obj).label, "version": pending.number},
        **_refs(obj, pending),
    )
    return pending


def _four_eyes(version, actor) -> None:
    if actor.pk in {version.submitted_by_id, version.author_id}:
        raise FourEyesViolation(
            "four-eyes: you wrote or submitted this version; a second person must approve it"
        )


@transaction.atomic
def approve(obj, *, actor, number: int, reason: str = ""):
    """Publish the submitted version `number`; it becomes immutable and runs name it."""
    kind = type_of(obj)
    obj = _lock(obj)
    _require(actor, "publish", obj)
    version = pending_of(obj)
    if version is None or version.number != number:
        raise VersionError("version", f"version {number} is not waiting for review")
    _four_eyes(version, actor)
    # A workflow's agents must still be published (and their fields unchanged).
    _validated(kind, version.definition, for_submit=True)
    previous = obj.published_version
    version.status = VersionStatus.PUBLISHED
    version.reviewed_by = actor
    version.reviewed_at = timezone.now()
    version.review_reason = (reason or "").strip()[:MAX_NOTE]
    version.save()
    obj.published_version = version
    obj.save(update_fields=["published_version", "updated_at"])
    ledger.append(
        "definition.published",
        actor=actor,
        body={
            "type": kind.label,
            "version": version.number,
            "fingerprint": fingerprint(version.definition),
            "previous_version": previous.number if previous else None,
            "submitted_by": version.submitted_by.get_username() if version.submitted_by else "",
            "reason": version.review_reason,
        },
        **_refs(obj, version),
    )
    _require(actor, "publish", obj)
    return version


@transaction.atomic
def reject(obj, *, actor, number: int, reason: str):
    kind = type_of(obj)
    obj = _lock(obj)
    _require(actor, "publish", obj)
    reason = (reason or "").strip()
    if not reason:
        raise VersionError("reason", "say why, so the builder can fix it")
    if len(reason) > MAX_NOTE:
        raise VersionError("reason", f"at most {MAX_NOTE} characters")
    version = pending_of(obj)
    if version is None or version.number != number:
        raise VersionError("version", f"version {number} is not waiting for review")
    version.status = VersionStatus.REJECTED
    version.reviewed_by = actor
    version.reviewed_at = timezone.now()
    version.review_reason = reason
    version.save()
    ledger.append(
        "definition.rejected",
        actor=actor,
        body={"type": kind.label, "version": version.number, "reason": reason},
        **_refs(obj, version),
    )
    return version


@transaction.atomic
def rollback(obj, *, actor, number: int, note: str = ""):
    """Submit an earlier published version anew; it goes through the same four-eyes step."""
    kind = type_of(obj)
    obj = _lock(obj)
    _require(actor, "change", obj)
    target = _versions(obj).filter(number=number, status=VersionStatus.PUBLISHED).first()
    if target is None:
        raise VersionError("version", f"version {number} was never published")
    if obj.published_version_id == target.pk:
        raise VersionError("version", f"version {number} is the published version already")
    if pending_of(obj) is not None:
        raise VersionError("version", "another version is waiting for review: decide it first")
    new_number = (_versions(obj).aggregate(n=Max("number"))["n"] or 0) + 1
    try:
        version = kind.version_model.objects.create(
            **{kind.parent: obj},
            number=new_number,
            status=VersionStatus.SUBMITTED,
            definition=_validated(kind, target.definition, for_submit=True),
            author=actor,
            submitted_by=actor,
            submitted_at=timezone.now(),
            submit_note=(note or "").strip()[:MAX_NOTE],
            rollback_of=number,
        )
    except IntegrityError:
        raise VersionError("version", "another version is waiting for review") from None
    _record_submission(obj, version, actor, obj.published_version)
    return version
