"""Back-office API for transactions (role admin): reverse, with a reason."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.apis import BACKOFFICE_PERMISSIONS, ReasonInput, backoffice_responses, reason_from
from ledgerx.exceptions import NotFound
from transactions.apis import TransactionOutputSerializer
from transactions.models import Transaction
from transactions.representations import transaction_representation
from transactions.services import transaction_reverse

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
        summary="Reverse a committed transaction (admin)",
        description="Creates a new balanced `reversal` transaction that undoes the original, which becomes "
        "`reversed`. Answers 201 with the reversal.",
        tags=["back office"],
        parameters=[TRANSACTION_ID],
        request=ReasonInput,
        responses=backoffice_responses(
            {201: TransactionOutputSerializer},
            conflicts="invalid_state (already reversed, a reversal, or not committed) / insufficient_funds "
            "(a customer account would go below zero).",
        ),
    )
    def post(self, request, transaction_id):
        original = _transaction_get(transaction_id)
        reversal = transaction_reverse(actor=request.user, transaction=original, reason=reason_from(request))
        return Response(transaction_representation(reversal), status=status.HTTP_201_CREATED)
