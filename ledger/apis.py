"""Accounts API: open, list, read, point-in-time balance, statement. Thin views over
``ledger.services.customer_accounts`` (writes) and ``ledger.selectors`` (reads, scoped to the user)."""

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from ledger import selectors
from ledger.api_fields import StrictCharField, page_of
from ledger.balance_cache import Identity, Snapshot
from ledger.models import LedgerAccount
from ledger.services.customer_accounts import account_open
from ledgerx.api.created import created
from ledgerx.api.pagination import NewestFirstCursorPagination
from ledgerx.api.timestamps import timestamp_parse
from ledgerx.db.replicas import replica_reads
from ledgerx.exceptions import ValidationFailed


class AccountPagination(NewestFirstCursorPagination):
    ordering = ("-created_at", "-id")


class StatementPagination(NewestFirstCursorPagination):
    # Posting ids grow with time and are unique: a pure keyset over (account, -id).
    ordering = "-id"


class AccountCreateInput(serializers.Serializer):
    currency = StrictCharField(max_length=3, help_text="ISO 4217 code; one of the configured currencies.")
    # The column's length, as the service checks it (so the schema states it too).
    name = StrictCharField(
        max_length=LedgerAccount._meta.get_field("name").max_length, required=False, allow_blank=True, default=""
    )


class BalanceOutput(serializers.Serializer):
    posted = serializers.IntegerField(help_text="Committed money, minor units.")
    pending = serializers.IntegerField(help_text="Sum of open holds on this account (outgoing).")
    available = serializers.IntegerField(help_text="posted - pending.")


class AccountOutput(serializers.Serializer):
    id = serializers.UUIDField()
    number = serializers.CharField()
    name = serializers.CharField()
    currency = serializers.CharField()
    status = serializers.ChoiceField(choices=LedgerAccount.Status.values)
    balance = BalanceOutput()
    created_at = serializers.DateTimeField()


class PointInTimeBalanceOutput(serializers.Serializer):
    posted = serializers.IntegerField()
    currency = serializers.CharField()
    as_of = serializers.DateTimeField()


class StatementLineOutput(serializers.Serializer):
    transaction_id = serializers.UUIDField()
    type = serializers.ChoiceField(choices=["deposit", "withdrawal", "transfer", "reversal"])
    amount = serializers.IntegerField(help_text="Signed: + credit to this account, - debit.")
    currency = serializers.CharField()
    balance_after = serializers.IntegerField()
    created_at = serializers.DateTimeField()


AccountPage = page_of(AccountOutput, "AccountPage")
StatementPage = page_of(StatementLineOutput, "StatementPage")


def _account_body(account_id, state: Snapshot, identity: Identity) -> dict:
    return AccountOutput(
        {
            "id": account_id,
            "number": identity.number,
            "name": state.name,
            "currency": identity.currency,
            "status": state.status,
            "balance": {
                "posted": state.posted,
                "pending": state.pending,
                "available": state.posted - state.pending,
            },
            "created_at": identity.created_at,
        }
    ).data


def account_row_body(account: LedgerAccount) -> dict:
    """An account read from the database in this request (or locked and written by it): its row is current."""
    return _account_body(account.pk, Snapshot.of(account), Identity.of(account))


ACCOUNT_ID = OpenApiParameter("account_id", OpenApiTypes.UUID, OpenApiParameter.PATH)


class AccountListCreateApi(APIView):
    @extend_schema(
        operation_id="accounts_list",
        tags=["accounts"],
        responses={200: AccountPage},
    )
    def get(self, request):
        paginator = AccountPagination()
        page = paginator.paginate_queryset(selectors.account_list_for_user(user=request.user), request, view=self)
        return paginator.get_paginated_response([account_row_body(account) for account in page])

    @extend_schema(
        operation_id="accounts_create",
        tags=["accounts"],
        request=AccountCreateInput,
        responses={201: AccountOutput},
    )
    def post(self, request):
        data = AccountCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        account = account_open(actor=request.user, owner=request.user, **data.validated_data)
        return created(account_row_body(account), "account-detail")


class AccountDetailApi(APIView):
    @extend_schema(
        operation_id="accounts_retrieve",
        tags=["accounts"],
        parameters=[ACCOUNT_ID],
        responses={200: AccountOutput},
    )
    def get(self, request, account_id):
        state, identity = selectors.account_view_for_user(user=request.user, account_id=account_id)
        return Response(_account_body(account_id, state, identity))


class AccountBalanceApi(APIView):
    @extend_schema(
        operation_id="accounts_balance_as_of",
        tags=["accounts"],
        parameters=[
            ACCOUNT_ID,
            OpenApiParameter(
                "as_of",
                OpenApiTypes.DATETIME,
                OpenApiParameter.QUERY,
                required=False,
                description="ISO 8601 timestamp (UTC if no offset); default now.",
            ),
        ],
        responses={200: PointInTimeBalanceOutput},
    )
    @replica_reads
    def get(self, request, account_id):
        account = selectors.account_get_for_user(user=request.user, account_id=account_id)
        raw = request.query_params.get("as_of")
        as_of = timezone.now() if raw is None else timestamp_parse(raw)
        if as_of is None:
            raise ValidationFailed(fields={"as_of": ["Must be an ISO 8601 timestamp, e.g. 2026-01-31T23:59:59Z."]})
        posted = selectors.account_posted_as_of(account=account, as_of=as_of)
        return Response(PointInTimeBalanceOutput({"posted": posted, "currency": account.currency, "as_of": as_of}).data)


class AccountEntriesApi(APIView):
    @extend_schema(
        operation_id="accounts_entries",
        tags=["accounts"],
        parameters=[ACCOUNT_ID],
        responses={200: StatementPage},
    )
    @replica_reads
    def get(self, request, account_id):
        account = selectors.account_get_for_user(user=request.user, account_id=account_id)
        paginator = StatementPagination()
        page = paginator.paginate_queryset(selectors.account_statement(account=account), request, view=self)
        lines = [
            {
                "transaction_id": posting.entry.ref_id,
                "type": posting.entry.ref_type,
                "amount": posting.amount,
                "currency": posting.currency,
                "balance_after": posting.balance_after,
                "created_at": posting.created_at,
            }
            for posting in page
        ]
        return paginator.get_paginated_response(StatementLineOutput(lines, many=True).data)
