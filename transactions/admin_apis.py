"""Back-office API for transactions (role admin): reverse, with a reason."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals.apis import ApprovalOutput, approval_body
from approvals.models import ApprovalRequest
from approvals.services import transaction_reverse_requested
from audit.apis import BACKOFFICE_PERMISSIONS, ReasonInput, reason_from
from ledgerx.api.created import created
from ledgerx.exceptions import NotFound
from transactions.apis import TransactionOutputSerializer
from transactions.models import Transaction
from transactions.representations import transaction_representation

TRANSACTION_ID = OpenApiParameter("transaction_id", OpenApiTypes.UUID, OpenApiParameter.PATH)


def _transaction_get(transaction_id) -> Transaction:
    try:
        return Transaction.objects.select_related("entry").get(pk=transaction_id)
    except Transaction.DoesNotExist:
        raise NotFound() from None


class TransactionReverseApi(APIView):
    permission_classes = BACKOFFICE_PERMISSIONS

    @extend_schema(
        operation_id="admin_transactions_reverse",
        description="Creates a new balanced `reversal` transaction that undoes the original, which becomes "
        "`reversed`. Answers 201 with the reversal; at or above the currency's four-eyes threshold "
        "(`LEDGERX_FOUR_EYES_AMOUNT`) 202 with a pending approval request instead.",
        tags=["back office"],
        parameters=[TRANSACTION_ID],
        request=ReasonInput,
        responses={201: TransactionOutputSerializer, 202: ApprovalOutput},
    )
    def post(self, request, transaction_id):
        original = _transaction_get(transaction_id)
        result = transaction_reverse_requested(actor=request.user, transaction=original, reason=reason_from(request))
        if isinstance(result, ApprovalRequest):
            return Response(approval_body(result), status=status.HTTP_202_ACCEPTED)
        return created(transaction_representation(result), "transaction-detail")
