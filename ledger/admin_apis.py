"""Back-office API for accounts (role admin): freeze and unfreeze, each with a reason."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.apis import BACKOFFICE_PERMISSIONS, ReasonInput, reason_from
from ledger.apis import AccountOutput, account_row_body
from ledger.selectors import account_get_customer
from ledger.services.customer_accounts import account_freeze, account_unfreeze

ACCOUNT_ID = OpenApiParameter("account_id", OpenApiTypes.UUID, OpenApiParameter.PATH)


class AccountFreezeApi(APIView):
    permission_classes = BACKOFFICE_PERMISSIONS

    @extend_schema(
        operation_id="admin_accounts_freeze",
        description="A frozen account can neither send nor receive (409 account_frozen); it can still be read.",
        tags=["back office"],
        parameters=[ACCOUNT_ID],
        request=ReasonInput,
        responses={200: AccountOutput},
    )
    def post(self, request, account_id):
        account = account_get_customer(account_id=account_id)
        return Response(account_row_body(account_freeze(actor=request.user, account=account, reason=reason_from(request))))


class AccountUnfreezeApi(APIView):
    permission_classes = BACKOFFICE_PERMISSIONS

    @extend_schema(
        operation_id="admin_accounts_unfreeze",
        tags=["back office"],
        parameters=[ACCOUNT_ID],
        request=ReasonInput,
        responses={200: AccountOutput},
    )
    def post(self, request, account_id):
        account = account_get_customer(account_id=account_id)
        return Response(account_row_body(account_unfreeze(actor=request.user, account=account, reason=reason_from(request))))
