"""`/api/v1/workflows/`: list, retrieve, create, update (= save the draft) and the version
actions as sub-paths: `submit/`, `withdraw/`, `approve/`, `reject/`, `rollback/`, `versions/`,
`diff/`, `diagram/` (SVG). Runs (`workflows/{id}/runs/`) belong to the engine.

The queryset is restricted by the action's permission (RestrictedViewSetMixin), so a workflow
the caller may not see, or may not take this action on, is a 404. Writes go through
`agents.versions`; errors answer as the agents API does (`agents.api.errors`): a
DefinitionError is a 400 with its path as the field (``{"steps[2].input_mapping.risk":
["..."]}``), a four-eyes violation or a missing permission a 403 with the reason. A definition
naming an agent or workflow the caller may not view is refused like a missing one.
"""

from __future__ import annotations

import json

from django.db.models import F, OuterRef, Subquery
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, renderers, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from agents import diagram, versions
from agents import workflow_display as display
from agents.api.errors import StrictJSONParser, service_errors
from agents.definitions import diff
from agents.models import VersionStatus, Workflow, WorkflowVersion
from governance.access import RestrictedViewSetMixin
from governance.models import Team

# --- Serializers ------------------------------------------------------------------------------


class WorkflowVersionSerializer(serializers.ModelSerializer):
    author = serializers.SlugRelatedField(slug_field="username", read_only=True)
    submitted_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    reviewed_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    definition = serializers.JSONField(read_only=True)

    class Meta:
        model = WorkflowVersion
        fields = [
            "number",
            "status",
            "definition",
            "author",
            "created_at",
            "updated_at",
            "submitted_by",
            "submitted_at",
            "submit_note",
            "reviewed_by",
            "reviewed_at",
            "review_reason",
            "rollback_of",
        ]
        read_only_fields = fields


version_field = extend_schema_field(WorkflowVersionSerializer(allow_null=True))


class WorkflowSerializer(serializers.ModelSerializer):
    team_name = serializers.CharField(source="team.name", read_only=True)
    pattern = serializers.CharField(
        read_only=True, allow_null=True, help_text="The pattern of the latest version."
    )
    published_version = serializers.IntegerField(
        source="published_number", read_only=True, allow_null=True
    )
    draft_version = serializers.IntegerField(source="draft_number", read_only=True, allow_null=True)
    pending_version = serializers.IntegerField(
        source="pending_number", read_only=True, allow_null=True
    )

    class Meta:
        model = Workflow
        fields = [
            "id",
            "name",
            "slug",
            "team",
            "team_name",
            "pattern",
            "published_version",
            "draft_version",
            "pending_version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class WorkflowDetailSerializer(WorkflowSerializer):
    published = serializers.SerializerMethodField()
    draft = serializers.SerializerMethodField()
    pending = serializers.SerializerMethodField()

    class Meta(WorkflowSerializer.Meta):
        fields = [*WorkflowSerializer.Meta.fields, "published", "draft", "pending"]
        read_only_fields = fields

    def _version(self, workflow, status_value):
        if status_value == VersionStatus.PUBLISHED:
            version = workflow.published_version
        else:
            version = workflow.versions.filter(status=status_value).first()
        return WorkflowVersionSerializer(version).data if version else None

    @version_field
    def get_published(self, workflow):
        return self._version(workflow, VersionStatus.PUBLISHED)

    @version_field
    def get_draft(self, workflow):
        return self._version(workflow, VersionStatus.DRAFT)

    @version_field
    def get_pending(self, workflow):
        return self._version(workflow, VersionStatus.SUBMITTED)


DEFINITION_HELP = (
    "The workflow definition: description, input_fields, subject_field, pattern, steps "
    "(key, label, agent_id, role, after, when, input_mapping), config, triggers."
)


class WorkflowCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=versions.MAX_NAME)
    team = serializers.PrimaryKeyRelatedField(queryset=Team.objects.all())
    definition = serializers.JSONField(help_text=DEFINITION_HELP)


class WorkflowUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=versions.MAX_NAME, required=False)
    definition = serializers.JSONField(
        required=False,
        help_text=f"Saved as the draft (a new draft when there is none). {DEFINITION_HELP}",
    )


class WorkflowSubmitSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=versions.MAX_NOTE)


class WorkflowReviewSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, help_text="The number under review.")
    reason = serializers.CharField(required=False, allow_blank=True, max_length=versions.MAX_NOTE)


class WorkflowRejectSerializer(WorkflowReviewSerializer):
    reason = serializers.CharField(max_length=versions.MAX_NOTE, help_text="Why, for the builder.")


class WorkflowRollbackSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, help_text="An earlier published version.")
    note = serializers.CharField(required=False, allow_blank=True, max_length=versions.MAX_NOTE)


class WorkflowChangeSerializer(serializers.Serializer):
    path = serializers.CharField(help_text="e.g. steps[kyc].input_mapping.risk")
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)


class WorkflowDiffSerializer(serializers.Serializer):
    before = serializers.IntegerField(allow_null=True, help_text="Version compared from.")
    after = serializers.IntegerField(help_text="Version compared to.")
    changes = WorkflowChangeSerializer(many=True)


class SVGRenderer(renderers.BaseRenderer):
    """`image/svg+xml` for `diagram/`; an error answered to an SVG-only client is a small SVG
    stating it."""

    media_type = "image/svg+xml"
    format = "svg"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, str):
            return data.encode()
        text = json.dumps(data, ensure_ascii=False)[:300]
        return (
            '<svg xmlns="http://www.w3.org/2000/svg" width="600" height="40">'
            f'<text x="10" y="25" font-size="13">{diagram.escape(text)}</text></svg>'
        ).encode()


class ByName(CursorPagination):
    ordering = ("name", "id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


# --- Viewset ----------------------------------------------------------------------------------


def _annotated(queryset):
    rows = WorkflowVersion.objects.filter(workflow=OuterRef("pk"))

    def open_version(status_value):
        return Subquery(rows.filter(status=status_value).values("number")[:1])

    return queryset.select_related("team").annotate(
        pattern=Subquery(rows.order_by("-number").values("definition__pattern")[:1]),
        published_number=F("published_version__number"),
        draft_number=open_version(VersionStatus.DRAFT),
        pending_number=open_version(VersionStatus.SUBMITTED),
    )


@extend_schema_view(
    list=extend_schema(summary="Workflows you may see"),
    retrieve=extend_schema(summary="One workflow with its published, draft and pending versions"),
)
class WorkflowViewSet(
    RestrictedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    queryset = Workflow.objects.all()
    pagination_class = ByName
    parser_classes = [StrictJSONParser]
    action_permissions = {
        **RestrictedViewSetMixin.action_permissions,
        "submit": "change",
        "withdraw": "change",
        "rollback": "change",
        "approve": "publish",
        "reject": "publish",
        "versions": "view",
        "diff": "view",
        "diagram": "view",
    }

    def get_queryset(self):
        return _annotated(super().get_queryset())

    def get_serializer_class(self):
        return WorkflowSerializer if self.action == "list" else WorkflowDetailSerializer

    def _detail(self, workflow, status_code=status.HTTP_200_OK):
        fresh = _annotated(Workflow.objects.filter(pk=workflow.pk)).get()
        return Response(WorkflowDetailSerializer(fresh).data, status=status_code)

    @extend_schema(
        summary="Create a workflow with its first draft",
        request=WorkflowCreateSerializer,
        responses={201: WorkflowDetailSerializer},
    )
    def create(self, request):
        data = _valid(WorkflowCreateSerializer, request)
        with service_errors():
            display.refuse_invisible(request.user, data["definition"])
            workflow = versions.create(
                versions.WORKFLOW,
                actor=request.user,
                name=data["name"],
                team=data["team"],
                definition=data["definition"],
            )
        return self._detail(workflow, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Save the draft (and rename)",
        request=WorkflowUpdateSerializer,
        responses=WorkflowDetailSerializer,
    )
    def update(self, request, pk=None):
        workflow = self.get_object()
        data = _valid(WorkflowUpdateSerializer, request)
        if "definition" not in data and "name" not in data:
            raise ValidationError({"definition": ["send the definition to save as the draft"]})
        with service_errors():
            if "definition" in data:
                display.refuse_invisible(request.user, data["definition"])
                versions.save_draft(workflow, data["definition"], actor=request.user)
            if "name" in data and data["name"].strip() != workflow.name:
                versions.rename(workflow, actor=request.user, name=data["name"])
        return self._detail(workflow)

    @extend_schema(
        summary="Save the draft (and rename)",
        request=WorkflowUpdateSerializer,
        responses=WorkflowDetailSerializer,
    )
    def partial_update(self, request, pk=None):
        return self.update(request, pk)

    @extend_schema(
        summary="Submit the draft for review (every agent must be published)",
        request=WorkflowSubmitSerializer,
        responses=WorkflowVersionSerializer,
    )
    @action(detail=True, methods=["post"])
    def submit(self, request, pk=None):
        workflow = self.get_object()
        data = _valid(WorkflowSubmitSerializer, request)
        with service_errors():
            version = versions.submit(workflow, actor=request.user, note=data.get("note", ""))
        return Response(WorkflowVersionSerializer(version).data)

    @extend_schema(
        summary="Take the version under review back to draft",
        request=None,
        responses=WorkflowVersionSerializer,
    )
    @action(detail=True, methods=["post"])
    def withdraw(self, request, pk=None):
        workflow = self.get_object()
        with service_errors():
            version = versions.withdraw(workflow, actor=request.user)
        return Response(WorkflowVersionSerializer(version).data)

    @extend_schema(
        summary="Approve and publish the version under review (not by its author)",
        request=WorkflowReviewSerializer,
        responses=WorkflowVersionSerializer,
    )
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        workflow = self.get_object()
        data = _valid(WorkflowReviewSerializer, request)
        with service_errors():
            version = versions.approve(
                workflow, actor=request.user, number=data["version"], reason=data.get("reason", "")
            )
        return Response(WorkflowVersionSerializer(version).data)

    @extend_schema(
        summary="Reject the version under review, with the reason",
        request=WorkflowRejectSerializer,
        responses=WorkflowVersionSerializer,
    )
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        workflow = self.get_object()
        data = _valid(WorkflowRejectSerializer, request)
        with service_errors():
            version = versions.reject(
                workflow, actor=request.user, number=data["version"], reason=data["reason"]
            )
        return Response(WorkflowVersionSerializer(version).data)

    @extend_schema(
        summary="Submit an earlier published version anew (it needs approval)",
        request=WorkflowRollbackSerializer,
        responses=WorkflowVersionSerializer,
    )
    @action(detail=True, methods=["post"])
    def rollback(self, request, pk=None):
        workflow = self.get_object()
        data = _valid(WorkflowRollbackSerializer, request)
        with service_errors():
            version = versions.rollback(
                workflow, actor=request.user, number=data["version"], note=data.get("note", "")
            )
        return Response(WorkflowVersionSerializer(version).data)

    @extend_schema(
        summary="Every version, newest first", responses=WorkflowVersionSerializer(many=True)
    )
    @action(detail=True, methods=["get"], pagination_class=None)
    def versions(self, request, pk=None):
        workflow = self.get_object()
        rows = workflow.versions.select_related("author", "submitted_by", "reviewed_by")
        return Response(WorkflowVersionSerializer(rows, many=True).data)

    @extend_schema(
        summary="Field-by-field differences between two versions",
        parameters=[
            OpenApiParameter(
                "from", OpenApiTypes.INT, description="Default: the published version."
            ),
            OpenApiParameter(
                "to", OpenApiTypes.INT, description="Default: under review, else the draft."
            ),
        ],
        responses=WorkflowDiffSerializer,
    )
    @action(detail=True, methods=["get"], pagination_class=None)
    def diff(self, request, pk=None):
        workflow = self.get_object()
        after = _version_param(workflow, request, "to") or (
            versions.pending_of(workflow)
            or versions.draft_of(workflow)
            or workflow.published_version
        )
        if after is None:
            raise ValidationError({"to": ["this workflow has no version"]})
        before = _version_param(workflow, request, "from")
        if before is None and "from" not in request.query_params:
            before = workflow.published_version
        return Response(
            WorkflowDiffSerializer(
                {
                    "before": before.number if before else None,
                    "after": after.number,
                    "changes": diff(before.definition if before else None, after.definition),
                }
            ).data
        )

    @extend_schema(
        summary="The diagram of a version, as SVG",
        parameters=[
            OpenApiParameter(
                "version",
                OpenApiTypes.INT,
                description="Default: the published version, else the latest.",
            )
        ],
        responses={
            (200, "image/svg+xml"): OpenApiResponse(
                response=OpenApiTypes.STR, description="An SVG document."
            )
        },
    )
    @action(
        detail=True,
        methods=["get"],
        pagination_class=None,
        renderer_classes=[renderers.JSONRenderer, SVGRenderer],
    )
    def diagram(self, request, pk=None):
        workflow = self.get_object()
        version = _version_param(workflow, request, "version") or (
            workflow.published_version or workflow.versions.order_by("-number").first()
        )
        if version is None:
            raise ValidationError({"version": ["this workflow has no version"]})
        agents, workflows = display.visible_names(request.user, version.definition)
        svg = diagram.render(
            version.definition,
            agent_names=agents,
            workflow_names=workflows,
            title=f"{workflow.name} version {version.number}",
        )
        response = HttpResponse(
            '<?xml version="1.0" encoding="UTF-8"?>\n' + svg,
            content_type="image/svg+xml; charset=utf-8",
        )
        # Opened on its own, the SVG may not run anything either.
        response["Content-Security-Policy"] = "default-src 'none'"
        return response


def _valid(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _version_param(workflow, request, name: str):
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    if not raw.isdigit() or len(raw) > 9:
        raise ValidationError({name: ["a version number"]})
    version = workflow.versions.filter(number=int(raw)).first()
    if version is None:
        raise ValidationError({name: [f"version {raw} does not exist"]})
    return version
