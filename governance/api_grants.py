"""`/api/v1/<objects>/{id}/grants/`: list, add and revoke object grants (the Access tab's API).

GET lists every holder (grants and role defaults) to anyone who may view the object; POST
grants and DELETE revokes ({"action": ..., "user": username} or {"team": team name}) for admins
and holders of manage_access. A forbidden object is a 404; a refused change a 403 with the
reason; bad input a 400 naming the field.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from governance import authz_failures, grants
from governance.access import object_or_404
from governance.models import Team


class HolderSerializer(serializers.Serializer):
    action = serializers.CharField()
    principal_type = serializers.ChoiceField(choices=["user", "team", "role"])
    principal_id = serializers.IntegerField(allow_null=True)
    principal = serializers.CharField()
    source = serializers.CharField()


class GrantRequestSerializer(serializers.Serializer):
    action = serializers.CharField(max_length=32)
    user = serializers.CharField(max_length=150, required=False, allow_blank=True)
    team = serializers.CharField(max_length=100, required=False, allow_blank=True)

    def validate(self, data):
        if bool(data.get("user")) == bool(data.get("team")):
            raise serializers.ValidationError({"user": "give exactly one of user or team"})
        if data.get("user"):
            user = get_user_model().objects.filter(username=data["user"], is_active=True).first()
            if user is None:
                raise serializers.ValidationError({"user": "no such active user"})
            data["principal"] = {"user": user}
        else:
            team = Team.objects.filter(name=data["team"]).first()
            if team is None:
                raise serializers.ValidationError({"team": "no such team"})
            data["principal"] = {"team": team}
        return data


class GrantsView(APIView):
    label = ""  # set by as_view(label=...)

    def _object(self, request, pk):
        return object_or_404(
            request.user, grants.model_by_label(self.label), "view", path=request.path, pk=pk
        )

    @extend_schema(responses=HolderSerializer(many=True), summary="Who holds what on the object")
    def get(self, request, pk: int):
        obj = self._object(request, pk)
        return Response([h.as_dict() for h in grants.holders(obj)])

    @extend_schema(
        request=GrantRequestSerializer,
        summary="Grant a permission",
        responses={201: HolderSerializer(many=True), 200: HolderSerializer(many=True)},
    )
    def post(self, request, pk: int):
        return self._change(request, pk, grants.grant)

    @extend_schema(
        request=GrantRequestSerializer,
        summary="Revoke a grant",
        responses={
            200: HolderSerializer(many=True),
            404: inline_serializer("NoGrant", {"detail": serializers.CharField()}),
        },
    )
    def delete(self, request, pk: int):
        return self._change(request, pk, grants.revoke)

    def _change(self, request, pk, change):
        obj = self._object(request, pk)
        payload = GrantRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        try:
            changed = change(obj, actor=request.user, action=data["action"], **data["principal"])
        except grants.GrantError as exc:
            return Response({exc.field: [exc.message]}, status=status.HTTP_400_BAD_REQUEST)
        except PermissionDenied as exc:
            authz_failures.record_denied(request, exc)
            return Response({"detail": str(exc)}, status=status.HTTP_403_FORBIDDEN)
        holders = [h.as_dict() for h in grants.holders(obj)]
        if change is grants.revoke and not changed:
            return Response({"detail": "there was no such grant"}, status=status.HTTP_404_NOT_FOUND)
        code = status.HTTP_201_CREATED if change is grants.grant and changed else status.HTTP_200_OK
        return Response(holders, status=code)
