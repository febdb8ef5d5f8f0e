"""`/api/v1/escalations/`: the caller's inbox (open escalations they may resolve; `?all=1` for
every escalation they may see), one escalation, and `resolve/`.

An escalation the caller may neither see nor resolve is a 404. Resolving goes through
`agents.engine.escalations.resolve`: a refusal names the field (400), a person without the
right gets a 403 with the reason, and one already resolved is a 409.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from agents.api.errors import StrictJSONParser
from agents.api.runs import ErrorSerializer, NamedRefSerializer
from agents.engine import escalations as engine_escalations
from agents.forms.operate import WAYS, available
from agents.models import ESCALATION_KINDS, Escalation
from agents.run_queries import ESCALATION_RELATED, resolvable, visible_escalations
from governance.canonical import CanonicalError
from governance.ledger import LedgerError


class StepRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    key = serializers.CharField()
    activation = serializers.IntegerField()
    attempt = serializers.IntegerField()
    agent = NamedRefSerializer()


class RunRefSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    url = serializers.URLField()
    workflow = NamedRefSerializer()
    workflow_version = serializers.IntegerField()
    status = serializers.CharField()


class EscalationSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    page_url = serializers.SerializerMethodField()
    kind_label = serializers.SerializerMethodField()
    team = serializers.SerializerMethodField()
    run = serializers.SerializerMethodField()
    step = serializers.SerializerMethodField()
    actions = serializers.SerializerMethodField()
    resolved_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    context = serializers.JSONField(
        help_text="Everything needed to decide: message, what was tried, options with their "
        "confidences, rules in conflict, missing or invalid fields, a task's instructions and "
        "output fields, maker-checker rounds or the conversation's transcript."
    )
    resolution = serializers.JSONField(allow_null=True)

    class Meta:
        model = Escalation
        fields = [
            "id",
            "url",
            "page_url",
            "kind",
            "kind_label",
            "status",
            "summary",
            "team",
            "run",
            "step",
            "context",
            "actions",
            "created_at",
            "resolved_at",
            "resolved_by",
            "resolution",
        ]

    def _absolute(self, path: str) -> str:
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, escalation) -> str:
        return self._absolute(reverse("api-escalation-detail", args=[escalation.pk]))

    @extend_schema_field(OpenApiTypes.URI)
    def get_page_url(self, escalation) -> str:
        return self._absolute(escalation.get_absolute_url())

    def get_kind_label(self, escalation) -> str:
        return ESCALATION_KINDS.get(escalation.kind, escalation.kind)

    @extend_schema_field(NamedRefSerializer)
    def get_team(self, escalation) -> dict:
        return {"id": str(escalation.team_id), "name": escalation.team.name}

    @extend_schema_field(RunRefSerializer)
    def get_run(self, escalation) -> dict:
        run = escalation.run
        return {
            "id": run.pk,
            "url": self._absolute(reverse("api-run-detail", args=[run.pk])),
            "workflow": {"id": str(run.workflow_id), "name": run.workflow.name},
            "workflow_version": run.workflow_version.number,
            "status": run.status,
        }

    @extend_schema_field(StepRefSerializer)
    def get_step(self, escalation) -> dict:
        step = escalation.step_run
        return {
            "id": step.pk,
            "key": step.step_key,
            "activation": step.activation,
            "attempt": step.attempt,
            "agent": {"id": str(step.agent_id), "name": step.agent.name},
        }

    @extend_schema_field(
        serializers.ListField(child=serializers.ChoiceField(choices=engine_escalations.ACTIONS))
    )
    def get_actions(self, escalation) -> list[str]:
        """The resolve actions that make sense for this escalation (empty once closed)."""
        if escalation.status != Escalation.Status.OPEN:
            return []
        found = []
        for way in available(escalation):
            engine_action = WAYS[way].action
            if engine_action not in found:
                found.append(engine_action)
        return found


class ResolveSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=engine_escalations.ACTIONS)
    option = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=0,
        help_text="approve: the index of the option in context.options.",
    )
    data = serializers.DictField(
        required=False,
        allow_null=True,
        help_text="supply: the missing input values; approve of a human task (or of a step "
        "without options): the step's output fields.",
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")

    def validate(self, attrs):
        if attrs["action"] == "reject" and not attrs.get("note", "").strip():
            raise serializers.ValidationError({"note": ["give the reason for rejecting"]})
        return attrs


class OldestFirst(CursorPagination):
    ordering = ("created_at", "id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


FILTERS = [
    OpenApiParameter(
        "all",
        OpenApiTypes.BOOL,
        description="1: every escalation you may see, in any state (default: the open ones "
        "you may resolve).",
    ),
    OpenApiParameter("kind", OpenApiTypes.STR, enum=list(ESCALATION_KINDS)),
    OpenApiParameter(
        "status", OpenApiTypes.STR, enum=[value for value, _ in Escalation.Status.choices]
    ),
    OpenApiParameter("workflow", OpenApiTypes.INT, description="Workflow id."),
]


@extend_schema_view(
    list=extend_schema(
        summary="Your inbox of escalations",
        description="Open escalations you may resolve, oldest first; `all=1` lists every "
        "escalation of the runs you may see (and those you may resolve), in any state.",
        parameters=FILTERS,
    ),
    retrieve=extend_schema(
        summary="One escalation",
        description="With its full context. 404 when you may neither see nor resolve it.",
    ),
)
class EscalationViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Escalation.objects.none()  # per user: get_queryset
    serializer_class = EscalationSerializer
    pagination_class = OldestFirst
    parser_classes = [StrictJSONParser]
    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        user = self.request.user
        params = self.request.query_params
        if self.action == "list" and params.get("all") not in ("1", "true", "yes"):
            queryset = resolvable(user)
        else:
            queryset = visible_escalations(user)
        queryset = queryset.select_related(*ESCALATION_RELATED)
        if self.action == "list":
            queryset = self._filter(queryset, params)
        return queryset

    def _filter(self, queryset, params):
        errors = {}
        kind = params.get("kind")
        if kind:
            if kind not in ESCALATION_KINDS:
                errors["kind"] = [f"one of {', '.join(ESCALATION_KINDS)}"]
            queryset = queryset.filter(kind=kind)
        state = params.get("status")
        if state:
            if state not in Escalation.Status.values:
                errors["status"] = [f"one of {', '.join(Escalation.Status.values)}"]
            queryset = queryset.filter(status=state)
        workflow = params.get("workflow")
        if workflow:
            if not workflow.isdigit():
                errors["workflow"] = ["a workflow id (a whole number)"]
            else:
                queryset = queryset.filter(run__workflow_id=int(workflow))
        if errors:
            raise exceptions.ValidationError(errors)
        return queryset

    @extend_schema(
        summary="Resolve an escalation",
        description="approve (an option by index, or the output fields as `data` for a human "
        "task), supply (the missing input as `data`; the step runs again), retry, or reject "
        "(`note` required; the run ends). The run continues from the escalated step.",
        request=ResolveSerializer,
        responses={
            200: EscalationSerializer,
            400: OpenApiResponse(description='`{"<field>": [problem]}`'),
            403: OpenApiResponse(ErrorSerializer),
            404: OpenApiResponse(ErrorSerializer),
            409: OpenApiResponse(description="Already resolved or closed."),
        },
    )
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        escalation = self.get_object()
        # Who may resolve is decided before the body is read: a viewer gets 403, not a 400.
        if (
            not Escalation.objects.restrict(request.user, "resolve")
            .filter(pk=escalation.pk)
            .exists()
        ):
            raise exceptions.PermissionDenied("you may not resolve this escalation")
        body = ResolveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        values = body.validated_data
        try:
            engine_escalations.resolve(
                escalation,
                actor=request.user,
                action=values["action"],
                option=values.get("option"),
                data=values.get("data"),
                note=values.get("note", ""),
            )
        except engine_escalations.ResolutionError as exc:
            answer = status.HTTP_409_CONFLICT if exc.field == "escalation" else 400
            return Response({exc.field: [exc.message]}, status=answer)
        except (LedgerError, CanonicalError) as exc:
            return Response({"data": [f"cannot be recorded: {exc}"]}, status=400)
        except DjangoPermissionDenied as exc:
            raise exceptions.PermissionDenied(str(exc) or None) from None
        escalation = self.get_queryset().get(pk=escalation.pk)
        return Response(
            EscalationSerializer(escalation, context=self.get_serializer_context()).data
        )
