"""Back-office API of the audit trail, and the pieces every back-office view shares.

``IsAdminRole`` and ``ReasonInput`` are used by ``accounts``, ``ledger`` and
``transactions`` ``admin_apis`` too (everything may depend on ``audit``).
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.permissions import BasePermission, IsAuthenticated

from audit.models import AuditAction, AuditRecord, AuditSeal
from audit.selectors import audit_record_list
from ledgerx.api.pagination import NewestFirstCursorPagination
from ledgerx.text import reason_clean


class IsAdminRole(BasePermission):
    """Role ``admin`` only; everyone else authenticated gets 403 ``forbidden``."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and getattr(user, "role", None) == "admin")


BACKOFFICE_PERMISSIONS = [IsAuthenticated, IsAdminRole]


def _error(description: str) -> OpenApiResponse:
    # The envelope's schema is the identity app's; referenced lazily so that
    # importing audit never imports accounts' API layer at module load.
    from accounts.serializers import ErrorEnvelope

    return OpenApiResponse(response=ErrorEnvelope, description=description)


def backoffice_responses(ok: dict, *, conflicts: str | None = None, reason: bool = True) -> dict:
    """The OpenAPI responses every back-office endpoint shares, plus its success and conflicts."""
    responses = {
        **ok,
        401: _error("not_authenticated / token_invalid: missing, expired or revoked access token."),
        403: _error("forbidden: the caller's role is not admin."),
    }
    if reason:
        responses[400] = _error("validation_error: `reason` missing, blank or not a string.")
        responses[404] = _error("not_found: no such object.")
    if conflicts:
        responses[409] = _error(conflicts)
    return responses


class ReasonInput(serializers.Serializer):
    """Every back-office action takes a reason: here its shape (a JSON string); its rule is ``reason_clean``."""

    reason = serializers.CharField(allow_blank=True, trim_whitespace=False)

    def to_internal_value(self, data):
        if isinstance(data, dict) and "reason" in data and not isinstance(data["reason"], str):
            raise serializers.ValidationError({"reason": ["Must be a string."]})
        return super().to_internal_value(data)


def reason_from(request) -> str:
    """The request's validated ``reason`` (400 ``validation_error`` otherwise): every back-office action's input."""
    data = ReasonInput(data=request.data)
    data.is_valid(raise_exception=True)
    return reason_clean(data.validated_data["reason"])


class AuditRecordOutput(serializers.Serializer):
    id = serializers.UUIDField()
    at = serializers.DateTimeField()
    actor = serializers.UUIDField(source="actor_id", allow_null=True)
    action = serializers.ChoiceField(choices=AuditAction.choices)
    target_type = serializers.CharField()
    target_id = serializers.CharField()
    ip = serializers.IPAddressField(allow_null=True)
    request_id = serializers.CharField()
    data = serializers.JSONField()
    hash = serializers.SerializerMethodField()
    prev_hash = serializers.SerializerMethodField()

    @staticmethod
    def _seal(record: AuditRecord) -> AuditSeal | None:
        try:
            return record.seal
        except AuditSeal.DoesNotExist:
            return None

    def get_hash(self, record: AuditRecord) -> str | None:
        """Null while the record awaits its seal (moments after commit)."""
        seal = self._seal(record)
        return seal.hash if seal else None

    def get_prev_hash(self, record: AuditRecord) -> str | None:
        seal = self._seal(record)
        return seal.prev_hash if seal else None


class AuditFilterInput(serializers.Serializer):
    actor = serializers.UUIDField(required=False)
    action = serializers.ChoiceField(choices=AuditAction.choices, required=False)
    target_id = serializers.CharField(required=False, max_length=64)


class AuditPagination(NewestFirstCursorPagination):
    ordering = ("-at", "-id")


class AuditListApi(ListAPIView):
    permission_classes = BACKOFFICE_PERMISSIONS
    serializer_class = AuditRecordOutput
    pagination_class = AuditPagination

    @extend_schema(
        operation_id="admin_audit_list",
        summary="List audit records (admin)",
        description="Newest first, cursor-paginated. `hash`/`prev_hash` are null for a record committed "
        "moments ago and not yet sealed into the chain.",
        parameters=[
            OpenApiParameter("actor", OpenApiTypes.UUID, description="Only records by this user id."),
            OpenApiParameter("action", OpenApiTypes.STR, enum=AuditAction.values, description="Only this action."),
            OpenApiParameter("target_id", OpenApiTypes.STR, description="Only records about this object id."),
            OpenApiParameter("page_size", OpenApiTypes.INT, description="At most 200."),
        ],
        tags=["back office"],
        responses=backoffice_responses(
            {200: AuditRecordOutput(many=True), 404: _error("not_found: the cursor is invalid.")}, reason=False
        ),
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        filters = AuditFilterInput(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return audit_record_list(**filters.validated_data)
