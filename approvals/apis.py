"""Back-office API of four-eyes approvals (role admin): list, approve, reject."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals.models import ApprovalRequest
from approvals.services import approval_approve, approval_reject
from audit.apis import BACKOFFICE_PERMISSIONS, ReasonInput, reason_from
from ledgerx.api.pagination import NewestFirstCursorPagination
from ledgerx.api.query import QueryInput
from ledgerx.exceptions import NotFound

APPROVAL_ID = OpenApiParameter("approval_id", OpenApiTypes.UUID, OpenApiParameter.PATH)


class ApprovalOutput(serializers.Serializer):
    id = serializers.UUIDField()
    action = serializers.ChoiceField(choices=ApprovalRequest.Action.values)
    target_id = serializers.UUIDField()
    requested_by = serializers.UUIDField(source="requested_by_id")
    reason = serializers.CharField()
    status = serializers.ChoiceField(choices=ApprovalRequest.Status.values)
    created_at = serializers.DateTimeField()
    decided_by = serializers.UUIDField(source="decided_by_id", allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)
    decision_reason = serializers.CharField()
    result_id = serializers.UUIDField(allow_null=True, help_text="What the approved action created (a reversal's id).")


def approval_body(approval: ApprovalRequest) -> dict:
    return ApprovalOutput(approval).data


class ApprovalFilterInput(QueryInput):
    status = serializers.ChoiceField(choices=ApprovalRequest.Status.values, required=False)


class ApprovalPagination(NewestFirstCursorPagination):
    ordering = ("-created_at", "-id")


class ApprovalListApi(ListAPIView):
    permission_classes = BACKOFFICE_PERMISSIONS
    serializer_class = ApprovalOutput
    pagination_class = ApprovalPagination

    @extend_schema(
        operation_id="admin_approvals_list",
        description="Newest first, cursor-paginated.",
        parameters=[
            OpenApiParameter("status", OpenApiTypes.STR, enum=ApprovalRequest.Status.values),
            OpenApiParameter("page_size", OpenApiTypes.INT, description="At most 200."),
        ],
        tags=["back office"],
        responses={200: ApprovalOutput(many=True)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        filters = ApprovalFilterInput(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        queryset = ApprovalRequest.objects.all()
        if status := filters.validated_data.get("status"):
            queryset = queryset.filter(status=status)
        return queryset


def _approval_get(approval_id) -> ApprovalRequest:
    try:
        return ApprovalRequest.objects.get(pk=approval_id)
    except ApprovalRequest.DoesNotExist:
        raise NotFound() from None


class ApprovalApproveApi(APIView):
    permission_classes = BACKOFFICE_PERMISSIONS

    @extend_schema(
        operation_id="admin_approvals_approve",
        description="The action and the decision commit together; if the action is refused (e.g. "
        "insufficient_funds) nothing changes and the request stays pending. The requester cannot approve "
        "their own request (403 forbidden).",
        tags=["back office"],
        parameters=[APPROVAL_ID],
        request=ReasonInput,
        responses={200: ApprovalOutput},
    )
    def post(self, request, approval_id):
        approval = _approval_get(approval_id)
        return Response(approval_body(approval_approve(actor=request.user, approval=approval, reason=reason_from(request))))


class ApprovalRejectApi(APIView):
    permission_classes = BACKOFFICE_PERMISSIONS

    @extend_schema(
        operation_id="admin_approvals_reject",
        tags=["back office"],
        parameters=[APPROVAL_ID],
        request=ReasonInput,
        responses={200: ApprovalOutput},
    )
    def post(self, request, approval_id):
        approval = _approval_get(approval_id)
        return Response(approval_body(approval_reject(actor=request.user, approval=approval, reason=reason_from(request))))
