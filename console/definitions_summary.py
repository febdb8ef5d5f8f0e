"""Home-page summaries of definitions: what a builder is working on, what waits for review."""

from __future__ import annotations

from agents.models import Agent, AgentVersion, VersionStatus, Workflow, WorkflowVersion

LIMIT = 8


def _state(obj, drafts: set[int], pending: set[int]) -> str:
    if obj.pk in pending:
        return "waiting for review"
    if obj.pk in drafts:
        return "draft"
    return "published" if obj.published_version_id else "not published"


def builder_summary(user) -> dict:
    """The agents and workflows the user may change, newest first, with their state."""
    result = {}
    for label, model, versions, parent in (
        ("agents", Agent, AgentVersion, "agent_id"),
        ("workflows", Workflow, WorkflowVersion, "workflow_id"),
    ):
        objects = list(
            model.objects.restrict(user, "change")
            .select_related("team", "published_version")
            .order_by("-updated_at")[:LIMIT]
        )
        ids = [o.pk for o in objects]
        open_versions = versions.objects.filter(
            **{f"{parent}__in": ids}, status__in=(VersionStatus.DRAFT, VersionStatus.SUBMITTED)
        ).values_list(parent, "status")
        drafts = {pk for pk, status in open_versions if status == VersionStatus.DRAFT}
        pending = {pk for pk, status in open_versions if status == VersionStatus.SUBMITTED}
        result[label] = [
            {
                "object": o,
                "state": _state(o, drafts, pending),
                "version": o.published_version.number if o.published_version_id else None,
            }
            for o in objects
        ]
    return result


def review_queue(user) -> list[dict]:
    """Versions waiting for review on objects the user may publish, oldest first."""
    queue = []
    for kind, model, versions, parent in (
        ("agent", Agent, AgentVersion, "agent"),
        ("workflow", Workflow, WorkflowVersion, "workflow"),
    ):
        allowed = model.objects.restrict(user, "publish").values("pk")
        rows = (
            versions.objects.filter(status=VersionStatus.SUBMITTED, **{f"{parent}__in": allowed})
            .select_related(parent, "submitted_by")
            .order_by("submitted_at")[:LIMIT]
        )
        for version in rows:
            obj = getattr(version, parent)
            queue.append(
                {
                    "kind": kind,
                    "object": obj,
                    "number": version.number,
                    "submitted_by": version.submitted_by,
                    "submitted_at": version.submitted_at,
                    "own": version.submitted_by_id == user.pk or version.author_id == user.pk,
                    "rollback_of": version.rollback_of,
                }
            )
    return sorted(queue, key=lambda item: item["submitted_at"] or 0)
