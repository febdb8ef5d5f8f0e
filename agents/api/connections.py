"""`/api/v1/connections/`: list, retrieve, create, update and `test/`.

The secret is write-only: accepted on create and update (blank or missing keeps the stored
one), never in a response; `has_secret` says whether one is stored."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from agents import connections as service
from agents.api.errors import StrictJSONParser, service_errors
from agents.models import Connection
from governance.access import RestrictedViewSetMixin
from governance.models import Team

SETTINGS = (
    "name",
    "description",
    "base_url",
    "auth_method",
    "header_name",
    "username",
    "token_url",
    "model",
    "timeout_seconds",
    "allow_internal",
)


class ConnectionSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(max_length=100)
    team = serializers.PrimaryKeyRelatedField(queryset=Team.objects.all())
    kind = serializers.ChoiceField(
        choices=Connection.Kind.choices, help_text="Set on create; it never changes."
    )
    description = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    base_url = serializers.CharField(max_length=500)
    auth_method = serializers.ChoiceField(
        choices=Connection.Auth.choices, required=False, default=Connection.Auth.NONE
    )
    header_name = serializers.CharField(required=False, allow_blank=True, max_length=100)
    username = serializers.CharField(
        required=False, allow_blank=True, max_length=200, help_text="Basic user or client id."
    )
    token_url = serializers.CharField(required=False, allow_blank=True, max_length=500)
    model = serializers.CharField(required=False, allow_blank=True, max_length=200)
    timeout_seconds = serializers.FloatField(required=False, default=30.0)
    allow_internal = serializers.BooleanField(
        required=False, default=False, help_text="Admins only."
    )
    secret = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        max_length=4096,
        style={"input_type": "password"},
        help_text="Write-only. Blank or missing on update keeps the stored secret.",
    )
    has_secret = serializers.BooleanField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)


class ConnectionUpdateSerializer(ConnectionSerializer):
    kind = serializers.ChoiceField(choices=Connection.Kind.choices, read_only=True)


class ConnectionCheckSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    status = serializers.IntegerField(allow_null=True, help_text="HTTP status, if one came.")
    message = serializers.CharField()
    latency_ms = serializers.FloatField()


class ByName(CursorPagination):
    ordering = "name"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


@extend_schema_view(
    list=extend_schema(summary="Connections you may see"),
    retrieve=extend_schema(summary="One connection (never its secret)"),
    create=extend_schema(summary="Create a connection"),
    update=extend_schema(summary="Change a connection"),
    partial_update=extend_schema(summary="Change some settings of a connection"),
)
class ConnectionViewSet(
    RestrictedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    queryset = Connection.objects.select_related("team")
    serializer_class = ConnectionSerializer
    pagination_class = ByName
    parser_classes = [StrictJSONParser]
    action_permissions = {
        **RestrictedViewSetMixin.action_permissions,
        "test": "use",
    }

    def get_queryset(self):
        return super().get_queryset().select_related("team")

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        with service_errors():
            serializer.instance = service.create(
                actor=self.request.user,
                team=data.pop("team"),
                kind=data.pop("kind"),
                secret=data.pop("secret", None),
                **data,
            )

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        # A full update resets unsent optional settings to their defaults, except
        # allow_internal: only admins may change it, so it changes only when sent.
        if "allow_internal" not in self.request.data:
            data.pop("allow_internal", None)
        with service_errors():
            serializer.instance = service.update(
                serializer.instance,
                actor=self.request.user,
                secret=data.pop("secret", None),
                **{k: v for k, v in data.items() if k in (*SETTINGS, "team")},
            )

    def get_serializer_class(self):
        if self.action in ("update", "partial_update"):
            return ConnectionUpdateSerializer
        return ConnectionSerializer

    @extend_schema(
        summary="Test the connection: one guarded request",
        request=None,
        responses=ConnectionCheckSerializer,
    )
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        connection = self.get_object()
        with service_errors():
            result = service.check(connection, actor=request.user)
        return Response(
            ConnectionCheckSerializer(
                {
                    "ok": result.ok,
                    "status": result.status,
                    "message": result.message,
                    "latency_ms": round(result.latency_ms, 1),
                }
            ).data
        )
