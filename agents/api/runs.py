"""`/api/v1/runs/` (list, retrieve with the steps, `cancel/`) and
`POST /api/v1/workflows/{id}/runs/` (start a run of the published version).

Runs come from `Run.objects.restrict(user, action)` (RestrictedViewSetMixin): a run the caller
may not see is a 404. Starting and cancelling need `run` on the workflow; a caller who may see
the workflow but not run it gets a 403 with the reason. The engine's refusals name the field:
bad input is a 400 keyed ``input.<field>``, cancelling a finished run a 409.
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
from rest_framework.views import APIView

from agents.api.errors import StrictJSONParser
from agents.engine import rows as engine_rows
from agents.engine import runs as engine_runs
from agents.models import Escalation, Run, StepRun, Workflow
from agents.run_queries import RUN_RELATED
from governance.access import RestrictedViewSetMixin, one_or_404
from governance.canonical import CanonicalError
from governance.ledger import LedgerError

# --- Serializers ------------------------------------------------------------------------------


class NamedRefSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


class StepEscalationSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = Escalation
        fields = ["id", "kind", "status", "url"]

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, escalation) -> str:
        return _absolute(self, reverse("api-escalation-detail", args=[escalation.pk]))


class StepSerializer(serializers.ModelSerializer):
    agent = serializers.SerializerMethodField()
    agent_version = serializers.IntegerField(source="agent_version.number")
    retry_delay_seconds = serializers.SerializerMethodField()
    decision_record_url = serializers.SerializerMethodField()
    escalation = serializers.SerializerMethodField()
    input = serializers.JSONField()
    output = serializers.JSONField(allow_null=True)
    error = serializers.JSONField(allow_null=True)

    class Meta:
        model = StepRun
        fields = [
            "id",
            "step_key",
            "activation",
            "attempt",
            "status",
            "agent",
            "agent_version",
            "input",
            "output",
            "decision",
            "confidence",
            "rationale",
            "error",
            "not_before",
            "retry_delay_seconds",
            "created_at",
            "started_at",
            "finished_at",
            "decision_seq",
            "decision_record_url",
            "escalation",
        ]

    @extend_schema_field(NamedRefSerializer)
    def get_agent(self, step) -> dict:
        return {"id": str(step.agent_id), "name": step.agent.name}

    @extend_schema_field(OpenApiTypes.DOUBLE)
    def get_retry_delay_seconds(self, step) -> float | None:
        """The backoff this attempt waited for (a retry of a failed attempt), if any."""
        if step.not_before is None:
            return None
        return round(max((step.not_before - step.created_at).total_seconds(), 0.0), 3)

    @extend_schema_field(OpenApiTypes.URI)
    def get_decision_record_url(self, step) -> str | None:
        if step.decision_seq is None:
            return None
        return _absolute(self, reverse("api-decision-detail", args=[step.decision_seq]))

    @extend_schema_field(StepEscalationSerializer(allow_null=True))
    def get_escalation(self, step) -> dict | None:
        escalation = self.context.get("escalations", {}).get(step.pk)
        if escalation is None:
            return None
        return StepEscalationSerializer(escalation, context=self.context).data


class RunSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    page_url = serializers.SerializerMethodField()
    workflow = serializers.SerializerMethodField()
    workflow_version = serializers.IntegerField(source="workflow_version.number")
    team = serializers.SerializerMethodField()
    started_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    duration_ms = serializers.SerializerMethodField()
    input = serializers.JSONField()
    output = serializers.JSONField(allow_null=True)
    trigger_detail = serializers.JSONField()

    class Meta:
        model = Run
        fields = [
            "id",
            "url",
            "page_url",
            "workflow",
            "workflow_version",
            "team",
            "status",
            "outcome",
            "trigger",
            "trigger_detail",
            "started_by",
            "input",
            "output",
            "created_at",
            "finished_at",
            "duration_ms",
        ]

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, run) -> str:
        return _absolute(self, reverse("api-run-detail", args=[run.pk]))

    @extend_schema_field(OpenApiTypes.URI)
    def get_page_url(self, run) -> str:
        return _absolute(self, run.get_absolute_url())

    @extend_schema_field(NamedRefSerializer)
    def get_workflow(self, run) -> dict:
        return {"id": str(run.workflow_id), "name": run.workflow.name}

    @extend_schema_field(NamedRefSerializer)
    def get_team(self, run) -> dict:
        return {"id": str(run.team_id), "name": run.team.name}

    @extend_schema_field(OpenApiTypes.DOUBLE)
    def get_duration_ms(self, run) -> float | None:
        """Until it finished; null while it runs."""
        if run.finished_at is None:
            return None
        return round((run.finished_at - run.created_at).total_seconds() * 1000, 1)


class RunDetailSerializer(RunSerializer):
    steps = serializers.SerializerMethodField()
    context = serializers.JSONField(help_text="Pattern state: rounds, transcript, route.")

    class Meta(RunSerializer.Meta):
        fields = [*RunSerializer.Meta.fields, "context", "steps"]

    @extend_schema_field(StepSerializer(many=True))
    def get_steps(self, run) -> list:
        steps = self.context.get("steps")  # given by who has them (a run just started)
        if steps is None:
            steps = (
                StepRun.objects.filter(run=run)
                .select_related("agent", "agent_version")
                .order_by("created_at", "pk")
            )
        escalations = self.context.get("escalations")
        if escalations is None:
            escalations = {e.step_run_id: e for e in Escalation.objects.filter(run=run)}
        context = {**self.context, "escalations": escalations}
        return StepSerializer(steps, many=True, context=context).data


class StartSerializer(serializers.Serializer):
    input = serializers.JSONField(
        required=False,
        default=dict,
        help_text="The run's input: an object of the workflow's input fields.",
    )

    def validate_input(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("an object of the workflow's input fields")
        return value


class CancelSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


def _absolute(serializer, path: str) -> str:
    request = serializer.context.get("request")
    return request.build_absolute_uri(path) if request else path


# --- Views ------------------------------------------------------------------------------------


class NewestFirst(CursorPagination):
    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


RUN_FILTERS = [
    OpenApiParameter("workflow", OpenApiTypes.INT, description="Workflow id."),
    OpenApiParameter("status", OpenApiTypes.STR, enum=[value for value, _ in Run.Status.choices]),
    OpenApiParameter("outcome", OpenApiTypes.STR, enum=[value for value, _ in Run.Outcome.choices]),
]


def filter_runs(queryset, params):
    """The run list's filters; a bad value is a 400 naming the parameter."""
    errors = {}
    workflow = params.get("workflow")
    if workflow:
        if not workflow.isdigit():
            errors["workflow"] = ["a workflow id (a whole number)"]
        else:
            queryset = queryset.filter(workflow_id=int(workflow))
    for name, choices in (("status", Run.Status), ("outcome", Run.Outcome)):
        value = params.get(name)
        if value:
            if value not in choices.values:
                errors[name] = [f"one of {', '.join(choices.values)}"]
            else:
                queryset = queryset.filter(**{name: value})
    if errors:
        raise exceptions.ValidationError(errors)
    return queryset


@extend_schema_view(
    list=extend_schema(
        summary="List runs",
        description="Runs of the workflows the caller may view, newest first.",
        parameters=RUN_FILTERS,
    ),
    retrieve=extend_schema(
        summary="One run with its steps",
        description="Every step attempt in order, with its decision, retries and escalation. "
        "404 when the run does not exist or the caller may not see it.",
    ),
)
class RunViewSet(RestrictedViewSetMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Run.objects.all()
    # Only well-formed UUIDs route here: a malformed id is a 404 before any lookup.
    lookup_value_regex = (
        "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    )
    serializer_class = RunSerializer
    pagination_class = NewestFirst
    parser_classes = [StrictJSONParser]
    # The run is found among those the caller may view; the engine then checks `run`.
    action_permissions = {"list": "view", "retrieve": "view", "cancel": "view"}

    def get_queryset(self):
        queryset = super().get_queryset().select_related(*RUN_RELATED)
        if self.action == "list":
            queryset = filter_runs(queryset, self.request.query_params)
        return queryset

    def get_serializer_class(self):
        return RunDetailSerializer if self.action in ("retrieve", "cancel") else RunSerializer

    @extend_schema(
        summary="Cancel a run",
        description="Queued steps are dropped and open escalations closed; recorded in the "
        "decision log. 403 without `run` on the workflow, 409 when the run already finished.",
        request=CancelSerializer,
        responses={
            200: RunDetailSerializer,
            403: OpenApiResponse(ErrorSerializer),
            404: OpenApiResponse(ErrorSerializer),
            409: OpenApiResponse(description="The run already finished."),
        },
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        run = self.get_object()
        body = CancelSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            run = engine_runs.cancel(run, actor=request.user, reason=body.validated_data["reason"])
        except DjangoPermissionDenied as exc:
            raise exceptions.PermissionDenied(str(exc) or None) from None
        except engine_runs.StartError as exc:
            return Response(
                {"run": [str(exc)]},
                status=status.HTTP_409_CONFLICT,
            )
        run = self.get_queryset().get(pk=run.pk)
        return Response(RunDetailSerializer(run, context=self.get_serializer_context()).data)


class WorkflowRunsView(APIView):
    """POST /api/v1/workflows/{id}/runs/: start a run of the workflow's published version."""

    parser_classes = [StrictJSONParser]
    serializer_class = StartSerializer

    @extend_schema(
        operation_id="workflows_runs_create",
        summary="Start a run",
        description="Validates the input against the published version's input fields and "
        "queues the first steps. 400 names the field (`input.<name>`); nothing starts. 403 when "
        "the caller may see the workflow but not run it; 404 when they may not see it.",
        request=StartSerializer,
        responses={
            201: RunDetailSerializer,
            400: OpenApiResponse(description='`{"input.<field>": [problem]}` or `version`.'),
            403: OpenApiResponse(ErrorSerializer),
            404: OpenApiResponse(ErrorSerializer),
        },
        tags=["workflows"],
    )
    def post(self, request, pk: int):
        workflow, _ = one_or_404(
            request.user,
            Workflow,
            "view",
            path=request.path,
            pk=pk,
            load=lambda: engine_rows.workflow_by_id(pk),
        )
        body = StartSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        version = workflow.published_version
        if version is None:
            raise exceptions.ValidationError({"version": ["the workflow has no published version"]})
        try:
            run = engine_runs.start(
                version,
                body.validated_data["input"],
                actor=request.user,
                trigger=Run.Trigger.API,
            )
        except engine_runs.StartError as exc:
            raise exceptions.ValidationError(
                {
                    (name if name == "version" else f"input.{name}"): [str(problem)]
                    for name, problem in exc.errors.items()
                }
            ) from None
        except (LedgerError, CanonicalError) as exc:
            raise exceptions.ValidationError({"input": [f"cannot be recorded: {exc}"]}) from None
        except DjangoPermissionDenied as exc:
            raise exceptions.PermissionDenied(str(exc) or None) from None
        # The answer is the run as started, from memory: it and its first steps were just
        # written; only a step that escalated at once has an escalation to read.
        steps = run.first_steps
        escalations = {}
        if any(step.status != StepRun.Status.QUEUED for step in steps):
            escalations = {e.step_run_id: e for e in Escalation.objects.filter(run=run)}
        context = {"request": request, "steps": steps, "escalations": escalations}
        data = RunDetailSerializer(run, context=context).data
        return Response(data, status=status.HTTP_201_CREATED, headers={"Location": data["url"]})
