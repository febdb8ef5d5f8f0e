"""REST API of the decision log: `/api/v1/decisions/` and `/api/v1/decisions/<seq>/`.

Read-only. The queryset is `visible_decisions(request.user)`, so a record the caller may not
see is a 404 like a missing one; the filters are the log page's (`DecisionFilterForm`), bad
values answer 400 naming the field; pages are cursor pages on `seq`, newest first.
"""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.filters import BaseFilterBackend
from rest_framework.pagination import CursorPagination

from governance.decisions import DecisionFilterForm, may_see_everything, visible_decisions
from governance.log_queries import Entry, hash_check, personal_view
from governance.models import DecisionRecord
from governance.personal import SubjectKeyring

# --- Filters ------------------------------------------------------------------------------------

_PARAMETERS = {
    "since": ("string", "date-time", "Recorded at or after this time (ISO 8601)."),
    "until": ("string", "date-time", "Recorded before this time (ISO 8601)."),
    "event": ("string", None, "Event name, e.g. agent.decided."),
    "team": ("string", None, "Team id."),
    "workflow": ("string", None, "Workflow id."),
    "agent": ("string", None, "Agent id."),
    "run": ("string", None, "Run id."),
    "actor": ("string", None, "Actor id or name (a person's username)."),
    "decision": ("string", None, "Decision value, exactly."),
    "confidence_min": ("number", "double", "Confidence at least this (0 to 1)."),
    "confidence_max": ("number", "double", "Confidence at most this (0 to 1)."),
}


class DecisionFilterBackend(BaseFilterBackend):
    """The log page's filters as query parameters; a bad value is a 400 naming the field."""

    def filter_queryset(self, request, queryset, view):
        form = DecisionFilterForm(request.query_params)
        if not form.is_valid():
            raise ValidationError(
                {
                    "non_field_errors" if name == "__all__" else name: list(messages)
                    for name, messages in form.errors.items()
                }
            )
        return form.to_filter().apply(queryset)

    def get_schema_operation_parameters(self, view):
        parameters = []
        for name, (kind, fmt, description) in _PARAMETERS.items():
            schema = {"type": kind}
            if fmt:
                schema["format"] = fmt
            parameters.append(
                {
                    "name": name,
                    "required": False,
                    "in": "query",
                    "description": description,
                    "schema": schema,
                }
            )
        return parameters


class DecisionCursorPagination(CursorPagination):
    ordering = "-seq"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


# --- Serializers --------------------------------------------------------------------------------


class ActorSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["person", "agent", "system"])
    id = serializers.CharField(allow_blank=True)
    name = serializers.CharField(allow_blank=True)


class RefSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField(allow_blank=True)


class RefsSerializer(serializers.Serializer):
    """What the record belongs to: ids and the names they had when it was recorded."""

    team = RefSerializer(required=False)
    workflow = RefSerializer(required=False)
    workflow_version = RefSerializer(required=False)
    agent = RefSerializer(required=False)
    agent_version = RefSerializer(required=False)
    run = RefSerializer(required=False)
    step = RefSerializer(required=False)


class PersonalSerializer(serializers.Serializer):
    subject = serializers.CharField(source="subject_id")
    status = serializers.ChoiceField(
        choices=["readable", "withheld", "erased", "unreadable"],
        help_text="withheld: the caller may not read personal data (compliance officers and "
        "admins may); erased: the subject's key was destroyed.",
    )
    data = serializers.DictField(allow_null=True)
    explanation = serializers.CharField(allow_blank=True)


class DecisionListSerializer(serializers.ListSerializer):
    def to_representation(self, data):
        # One query for every subject key on the page, not one per record.
        keyring = self.context.get("keyring")
        records = list(data.all() if hasattr(data, "all") else data)
        if keyring is not None:
            keyring.preload(record.subject_id for record in records)
        return super().to_representation(records)


class DecisionSerializer(serializers.Serializer):
    """A record as its canonical JSON says, plus the stored text and hashes to check it."""

    seq = serializers.IntegerField()
    recorded_at = serializers.DateTimeField()
    event = serializers.CharField()
    actor = ActorSerializer()
    refs = RefsSerializer()
    decision = serializers.CharField(allow_null=True)
    confidence = serializers.FloatField(allow_null=True)
    body = serializers.DictField(help_text="What the decision rested on, as recorded.")
    personal = PersonalSerializer(allow_null=True)
    canonical = serializers.CharField(help_text="The exact stored RFC 8785 text that was hashed.")
    prev_hash = serializers.CharField()
    hash = serializers.CharField(help_text="SHA-256(prev_hash bytes || canonical bytes), hex.")
    url = serializers.SerializerMethodField()
    page_url = serializers.SerializerMethodField()

    class Meta:
        list_serializer_class = DecisionListSerializer

    def to_representation(self, instance: DecisionRecord):
        entry = Entry.of(instance)
        document = entry.document
        keyring = self.context.get("keyring") or SubjectKeyring()
        may_see = self.context.get("may_see_personal", False)
        view = {
            "seq": instance.seq,
            "recorded_at": entry.recorded_at or instance.recorded_at,
            "event": document.get("event", instance.event),
            "actor": entry.actor,
            "refs": document.get("refs") if isinstance(document.get("refs"), dict) else {},
            "decision": document.get("decision"),
            "confidence": document.get("confidence"),
            "body": entry.body,
            "personal": personal_view(entry.personal_part, keyring, may_see=may_see),
            "canonical": instance.canonical,
            "prev_hash": instance.prev_hash,
            "hash": instance.hash,
            "record": instance,
        }
        return super().to_representation(view)

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, view) -> str:
        path = reverse("api-decision-detail", args=[view["seq"]])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path

    @extend_schema_field(OpenApiTypes.URI)
    def get_page_url(self, view) -> str:
        path = view["record"].get_absolute_url()
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path


class IntegritySerializer(serializers.Serializer):
    hash_matches = serializers.BooleanField(
        help_text="SHA-256(prev_hash || canonical bytes) recomputed now equals the stored hash."
    )
    recomputed_hash = serializers.CharField(source="recomputed", allow_blank=True)
    links_to_previous = serializers.BooleanField(
        help_text="prev_hash equals the previous record's hash (the genesis hash for seq 1)."
    )
    previous_seq = serializers.IntegerField(allow_null=True)
    next_links_here = serializers.BooleanField(
        allow_null=True, help_text="The next record's prev_hash equals this hash; null at the head."
    )


class DecisionDetailSerializer(DecisionSerializer):
    integrity = serializers.SerializerMethodField()

    @extend_schema_field(IntegritySerializer)
    def get_integrity(self, view) -> dict:
        return IntegritySerializer(hash_check(view["record"])).data


# --- Viewset ------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="List decision records",
        description="Newest first, cursor-paginated. Compliance officers and admins see the "
        "whole log; others the records of their teams and of their own actions.",
    ),
    retrieve=extend_schema(
        summary="One decision record",
        description="The record, its exact canonical text and a check of its hash and its "
        "links to the neighbouring records. 404 when it does not exist or is not visible.",
    ),
)
class DecisionViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = DecisionRecord.objects.none()  # the real one is per user: get_queryset
    serializer_class = DecisionSerializer
    filter_backends = [DecisionFilterBackend]
    pagination_class = DecisionCursorPagination
    lookup_field = "seq"
    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        return visible_decisions(self.request.user)

    def get_serializer_class(self):
        return DecisionDetailSerializer if self.action == "retrieve" else DecisionSerializer

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["keyring"] = SubjectKeyring()
        context["may_see_personal"] = may_see_everything(self.request.user)
        return context
