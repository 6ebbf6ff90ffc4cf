"""Back-office API for users (role admin): suspend and reinstate, each with a reason."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.apis import _user_body
from accounts.models import User
from accounts.serializers import UserOutput
from accounts.services import user_suspend
from approvals.apis import ApprovalOutput, approval_body
from approvals.models import ApprovalRequest
from approvals.services import user_reinstate_requested
from audit.apis import BACKOFFICE_PERMISSIONS, ReasonInput, reason_from
from ledgerx.exceptions import NotFound

USER_ID = OpenApiParameter("user_id", OpenApiTypes.UUID, OpenApiParameter.PATH)


def _user_get(user_id) -> User:
    try:
        return User.objects.get(pk=user_id)
    except User.DoesNotExist:
        raise NotFound() from None


class UserSuspendApi(APIView):
    permission_classes = BACKOFFICE_PERMISSIONS

    @extend_schema(
        operation_id="admin_users_suspend",
        description="The user can still log in and read, but every money-moving request answers 403 user_suspended.",
        tags=["back office"],
        parameters=[USER_ID],
        request=ReasonInput,
        responses={200: UserOutput},
    )
    def post(self, request, user_id):
        user = _user_get(user_id)
        return Response(_user_body(user_suspend(actor=request.user, user=user, reason=reason_from(request))))


class UserReinstateApi(APIView):
    permission_classes = BACKOFFICE_PERMISSIONS

    @extend_schema(
        operation_id="admin_users_reinstate",
        description="Lifts the suspension and clears the failed PIN count. With `LEDGERX_FOUR_EYES_REINSTATE=1` "
        "answers 202 with a pending approval request instead.",
        tags=["back office"],
        parameters=[USER_ID],
        request=ReasonInput,
        responses={200: UserOutput, 202: ApprovalOutput},
    )
    def post(self, request, user_id):
        user = _user_get(user_id)
        result = user_reinstate_requested(actor=request.user, user=user, reason=reason_from(request))
        if isinstance(result, ApprovalRequest):
            return Response(approval_body(result), status=status.HTTP_202_ACCEPTED)
        return Response(_user_body(result))
