"""`/api/v1/agents/`: list, retrieve, create, update (= save the draft) and the version
actions as sub-paths: `submit/`, `withdraw/`, `approve/`, `reject/`, `rollback/`, `try/`,
`versions/`, `diff/`.

The queryset is restricted by the action's permission (RestrictedViewSetMixin), so an agent
the caller may not see, or may not take this action on, is a 404. Writes go through
`agents.versions` and `agents.tryit`; a DefinitionError answers 400 with its path as the
field (``{"config.rules[2].condition": ["..."]}``), a four-eyes violation 403 with the reason.
"""

from __future__ import annotations

from django.db.models import F, OuterRef, Subquery
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from agents import tryit, versions
from agents.api.errors import StrictJSONParser, service_errors
from agents.definitions import diff
from agents.models import Agent, AgentVersion, VersionStatus
from governance.access import RestrictedViewSetMixin
from governance.models import Team

# --- Serializers ------------------------------------------------------------------------------


class VersionSerializer(serializers.ModelSerializer):
    author = serializers.SlugRelatedField(slug_field="username", read_only=True)
    submitted_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    reviewed_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    definition = serializers.JSONField(read_only=True)

    class Meta:
        model = AgentVersion
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


extend_schema_field_version = extend_schema_field(VersionSerializer(allow_null=True))


class AgentSerializer(serializers.ModelSerializer):
    team_name = serializers.CharField(source="team.name", read_only=True)
    published_version = serializers.IntegerField(
        source="published_number", read_only=True, allow_null=True
    )
    draft_version = serializers.IntegerField(source="draft_number", read_only=True, allow_null=True)
    pending_version = serializers.IntegerField(
        source="pending_number", read_only=True, allow_null=True
    )

    class Meta:
        model = Agent
        fields = [
            "id",
            "name",
            "slug",
            "kind",
            "team",
            "team_name",
            "published_version",
            "draft_version",
            "pending_version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class AgentDetailSerializer(AgentSerializer):
    published = serializers.SerializerMethodField()
    draft = serializers.SerializerMethodField()
    pending = serializers.SerializerMethodField()

    class Meta(AgentSerializer.Meta):
        fields = [*AgentSerializer.Meta.fields, "published", "draft", "pending"]
        read_only_fields = fields

    def _version(self, agent, status_value):
        version = agent.versions.filter(status=status_value).first()
        if status_value == VersionStatus.PUBLISHED:
            version = agent.published_version
        return VersionSerializer(version).data if version else None

    @extend_schema_field_version
    def get_published(self, agent):
        return self._version(agent, VersionStatus.PUBLISHED)

    @extend_schema_field_version
    def get_draft(self, agent):
        return self._version(agent, VersionStatus.DRAFT)

    @extend_schema_field_version
    def get_pending(self, agent):
        return self._version(agent, VersionStatus.SUBMITTED)


class AgentCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    team = serializers.PrimaryKeyRelatedField(queryset=Team.objects.all())
    definition = serializers.JSONField(
        help_text="The agent definition: kind, description, input_fields, output_fields, "
        "subject_field, confidence_threshold, retry_limit, timeout_seconds, config."
    )


class AgentUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    definition = serializers.JSONField(
        required=False, help_text="Saved as the draft (a new draft when there is none)."
    )


class SubmitSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=versions.MAX_NOTE)


class ReviewSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, help_text="The number under review.")
    reason = serializers.CharField(required=False, allow_blank=True, max_length=versions.MAX_NOTE)


class RejectSerializer(ReviewSerializer):
    reason = serializers.CharField(max_length=versions.MAX_NOTE, help_text="Why, for the builder.")


class RollbackSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, help_text="An earlier published version.")
    note = serializers.CharField(required=False, allow_blank=True, max_length=versions.MAX_NOTE)


class TrySerializer(serializers.Serializer):
    inputs = serializers.DictField(help_text="Input field name -> value.")
    version = serializers.IntegerField(
        required=False, min_value=1, help_text="Default: the draft, else the one under review."
    )


class TryErrorSerializer(serializers.Serializer):
    type = serializers.CharField(help_text="The exception class, e.g. SystemUnavailable.")
    kind = serializers.CharField(help_text="The taxonomy name, e.g. system_unavailable.")
    message = serializers.CharField()
    context = serializers.DictField()


class TryResultSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=["decided", "failed", "awaiting_person"])
    version = serializers.IntegerField()
    version_status = serializers.CharField()
    latency_ms = serializers.FloatField()
    record = serializers.IntegerField(help_text="Seq of the agent.tried ledger record.")
    decision = serializers.DictField(
        required=False, help_text="output, decision, rationale, confidence, rules_applied, ..."
    )
    error = TryErrorSerializer(required=False)


class ChangeSerializer(serializers.Serializer):
    path = serializers.CharField()
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)


class DiffSerializer(serializers.Serializer):
    before = serializers.IntegerField(allow_null=True, help_text="Version compared from.")
    after = serializers.IntegerField(help_text="Version compared to.")
    changes = ChangeSerializer(many=True)


class BySlug(CursorPagination):
    ordering = "slug"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


# --- Viewset ----------------------------------------------------------------------------------


def _annotated(queryset):
    def open_version(status_value):
        rows = AgentVersion.objects.filter(agent=OuterRef("pk"), status=status_value)
        return Subquery(rows.values("number")[:1])

    return queryset.select_related("team").annotate(
        published_number=F("published_version__number"),
        draft_number=open_version(VersionStatus.DRAFT),
        pending_number=open_version(VersionStatus.SUBMITTED),
    )


@extend_schema_view(
    list=extend_schema(summary="Agents you may see"),
    retrieve=extend_schema(summary="One agent with its published, draft and pending versions"),
)
class AgentViewSet(
    RestrictedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    queryset = Agent.objects.all()
    pagination_class = BySlug
    parser_classes = [StrictJSONParser]
    action_permissions = {
        **RestrictedViewSetMixin.action_permissions,
        "submit": "change",
        "withdraw": "change",
        "rollback": "change",
        "try_it": "change",
        "approve": "publish",
        "reject": "publish",
        "versions": "view",
        "diff": "view",
    }

    def get_queryset(self):
        return _annotated(super().get_queryset())

    def get_serializer_class(self):
        return AgentSerializer if self.action == "list" else AgentDetailSerializer

    def _detail(self, agent, status_code=status.HTTP_200_OK):
        fresh = _annotated(Agent.objects.filter(pk=agent.pk)).get()
        return Response(AgentDetailSerializer(fresh).data, status=status_code)

    @extend_schema(
        summary="Create an agent with its first draft",
        request=AgentCreateSerializer,
        responses={201: AgentDetailSerializer},
    )
    def create(self, request):
        data = _valid(AgentCreateSerializer, request)
        with service_errors():
            agent = versions.create(
                versions.AGENT,
                actor=request.user,
                name=data["name"],
                team=data["team"],
                definition=data["definition"],
            )
        return self._detail(agent, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Save the draft (and rename)",
        request=AgentUpdateSerializer,
        responses=AgentDetailSerializer,
    )
    def update(self, request, pk=None):
        agent = self.get_object()
        data = _valid(AgentUpdateSerializer, request)
        if "definition" not in data and "name" not in data:
            raise ValidationError({"definition": ["send the definition to save as the draft"]})
        with service_errors():
            if "definition" in data:
                versions.save_draft(agent, data["definition"], actor=request.user)
            if "name" in data and data["name"].strip() != agent.name:
                versions.rename(agent, actor=request.user, name=data["name"])
        return self._detail(agent)

    @extend_schema(
        summary="Save the draft (and rename)",
        request=AgentUpdateSerializer,
        responses=AgentDetailSerializer,
    )
    def partial_update(self, request, pk=None):
        return self.update(request, pk)

    @extend_schema(
        summary="Submit the draft for review", request=SubmitSerializer, responses=VersionSerializer
    )
    @action(detail=True, methods=["post"])
    def submit(self, request, pk=None):
        agent = self.get_object()
        data = _valid(SubmitSerializer, request)
        with service_errors():
            version = versions.submit(agent, actor=request.user, note=data.get("note", ""))
        return Response(VersionSerializer(version).data)

    @extend_schema(
        summary="Take the version under review back to draft",
        request=None,
        responses=VersionSerializer,
    )
    @action(detail=True, methods=["post"])
    def withdraw(self, request, pk=None):
        agent = self.get_object()
        with service_errors():
            version = versions.withdraw(agent, actor=request.user)
        return Response(VersionSerializer(version).data)

    @extend_schema(
        summary="Approve and publish the version under review (not by its author)",
        request=ReviewSerializer,
        responses=VersionSerializer,
    )
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        agent = self.get_object()
        data = _valid(ReviewSerializer, request)
        with service_errors():
            version = versions.approve(
                agent, actor=request.user, number=data["version"], reason=data.get("reason", "")
            )
        return Response(VersionSerializer(version).data)

    @extend_schema(
        summary="Reject the version under review, with the reason",
        request=RejectSerializer,
        responses=VersionSerializer,
    )
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        agent = self.get_object()
        data = _valid(RejectSerializer, request)
        with service_errors():
            version = versions.reject(
                agent, actor=request.user, number=data["version"], reason=data["reason"]
            )
        return Response(VersionSerializer(version).data)

    @extend_schema(
        summary="Submit an earlier published version anew (it needs approval)",
        request=RollbackSerializer,
        responses=VersionSerializer,
    )
    @action(detail=True, methods=["post"])
    def rollback(self, request, pk=None):
        agent = self.get_object()
        data = _valid(RollbackSerializer, request)
        with service_errors():
            version = versions.rollback(
                agent, actor=request.user, number=data["version"], note=data.get("note", "")
            )
        return Response(VersionSerializer(version).data)

    @extend_schema(
        summary="Try a version on sample input (recorded as agent.tried)",
        request=TrySerializer,
        responses=TryResultSerializer,
    )
    @action(detail=True, methods=["post"], url_path="try", url_name="try")
    def try_it(self, request, pk=None):
        agent = self.get_object()
        data = _valid(TrySerializer, request)
        with service_errors():
            result = tryit.try_agent(
                agent, actor=request.user, inputs=data["inputs"], number=data.get("version")
            )
        return Response(result.as_dict())

    @extend_schema(summary="Every version, newest first", responses=VersionSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None)
    def versions(self, request, pk=None):
        agent = self.get_object()
        rows = agent.versions.select_related("author", "submitted_by", "reviewed_by")
        return Response(VersionSerializer(rows, many=True).data)

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
        responses=DiffSerializer,
    )
    @action(detail=True, methods=["get"], pagination_class=None)
    def diff(self, request, pk=None):
        agent = self.get_object()
        after = _version_param(agent, request, "to") or (
            versions.pending_of(agent) or versions.draft_of(agent) or agent.published_version
        )
        if after is None:
            raise ValidationError({"to": ["this agent has no version"]})
        before = _version_param(agent, request, "from")
        if before is None and "from" not in request.query_params:
            before = agent.published_version
        return Response(
            DiffSerializer(
                {
                    "before": before.number if before else None,
                    "after": after.number,
                    "changes": diff(before.definition if before else None, after.definition),
                }
            ).data
        )


def _valid(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _version_param(agent, request, name: str):
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    if not raw.isdigit() or len(raw) > 9:
        raise ValidationError({name: ["a version number"]})
    version = agent.versions.filter(number=int(raw)).first()
    if version is None:
        raise ValidationError({name: [f"version {raw} does not exist"]})
    return version
