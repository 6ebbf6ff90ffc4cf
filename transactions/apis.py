"""Money API: deposits, withdrawals, transfers, holds, transaction reads.

Each view checks the request's shape, resolves the accounts the user may use
(others' -> 404), calls ONE service and renders its ``MoneyOutcome``: the
stored status and body, plus ``Idempotent-Replayed: true`` on a replay.
"""

import base64
import binascii
import json
import uuid

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from ledger.api_fields import StrictAmountField, StrictBooleanField, StrictCharField, page_of
from ledger.selectors import account_identity_customer, account_identity_for_user
from ledgerx.api.created import created
from ledgerx.api.pagination import invalid_cursor, page_size_parse
from ledgerx.api.parsers import json_loads
from ledgerx.api.query import QueryInput
from ledgerx.api.timestamps import timestamp_parse
from ledgerx.db.replicas import replica_reads
from ledgerx.text import NO_NUL_PATTERN
from transactions import batches, selectors
from transactions.idempotency import idempotency_key_validate
from transactions.models import Batch, Transaction
from transactions.representations import batch_representation, transaction_representation
from transactions.services import holds, inputs, money


@extend_schema_field(
    {
        "type": "object",
        "maxProperties": inputs.METADATA_MAX_KEYS,
        "propertyNames": {"minLength": 1, "maxLength": inputs.METADATA_KEY_MAX, "pattern": NO_NUL_PATTERN},
        "additionalProperties": {"type": "string", "maxLength": inputs.METADATA_VALUE_MAX, "pattern": NO_NUL_PATTERN},
        "description": (
            f"Up to {inputs.METADATA_MAX_KEYS} keys (1-{inputs.METADATA_KEY_MAX} characters), string values up to "
            f"{inputs.METADATA_VALUE_MAX} characters; returned as given."
        ),
    }
)
class MetadataField(serializers.Field):
    def to_internal_value(self, data):
        errors = inputs.metadata_errors(data)
        if errors:
            raise serializers.ValidationError(errors)
        return data

    def to_representation(self, value):
        return value


class _MoneyInput(serializers.Serializer):
    amount = StrictAmountField()
    description = StrictCharField(max_length=inputs.DESCRIPTION_MAX, required=False, allow_blank=True, default="")
    metadata = MetadataField(required=False, default=dict)


class DepositInput(_MoneyInput):
    account = serializers.UUIDField()


class WithdrawalInput(_MoneyInput):
    account = serializers.UUIDField()
    pin = StrictCharField(help_text="The transaction PIN (4-6 digits, as a string). Never echoed.")


class TransferInput(_MoneyInput):
    source_account = serializers.UUIDField()
    destination_account = serializers.UUIDField(help_text="Any active account of the same currency.")
    pin = StrictCharField(help_text="The transaction PIN (4-6 digits, as a string). Never echoed.")
    hold = StrictBooleanField(required=False, default=False, help_text="Reserve only; commit or void later.")


class ConversionInput(serializers.Serializer):
    quote = serializers.UUIDField(help_text="An unexpired, unused quote of yours (`POST fx/quotes`).")
    source_account = serializers.UUIDField(help_text="Your account in the quote's source currency.")
    destination_account = serializers.UUIDField(help_text="Your account in the quote's destination currency.")
    pin = StrictCharField(help_text="The transaction PIN (4-6 digits, as a string). Never echoed.")
    description = StrictCharField(max_length=inputs.DESCRIPTION_MAX, required=False, allow_blank=True, default="")
    metadata = MetadataField(required=False, default=dict)


class TransactionOutputSerializer(serializers.Serializer):
    """Documents ``transactions.representations.transaction_representation``."""

    id = serializers.UUIDField()
    type = serializers.ChoiceField(choices=Transaction.Type.values)
    status = serializers.ChoiceField(choices=Transaction.Status.values)
    amount = serializers.IntegerField(help_text="Minor units.")
    currency = serializers.CharField()
    source_account = serializers.UUIDField(allow_null=True)
    destination_account = serializers.UUIDField(allow_null=True)
    description = serializers.CharField()
    metadata = serializers.DictField(child=serializers.CharField())
    created_at = serializers.DateTimeField()
    committed_at = serializers.DateTimeField(allow_null=True)
    reverses = serializers.UUIDField(allow_null=True)
    reversed_by = serializers.UUIDField(allow_null=True)
    batch = serializers.UUIDField(allow_null=True, help_text="The batch that made it, or null.")
    source_amount = serializers.IntegerField(required=False, help_text="Conversions (and their reversals) only.")
    destination_amount = serializers.IntegerField(required=False, help_text="Conversions only: minor units received.")
    destination_currency = serializers.CharField(required=False, help_text="Conversions only.")
    rate = serializers.CharField(required=False, help_text="Conversions only: the recorded rate (decimal string).")
    quote = serializers.UUIDField(required=False, allow_null=True, help_text="Conversions only: the quote used.")

    def to_representation(self, instance):
        return transaction_representation(instance)


TransactionPage = page_of(TransactionOutputSerializer, "TransactionPage")


IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=True,
    description="1-255 printable characters, unique per request you mean once; retries reuse it.",
)
REPLAYED = OpenApiParameter(
    "Idempotent-Replayed",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    response=[201],
    description="`true` when this is the stored response of an earlier request with the same key.",
)
TRANSACTION_ID = OpenApiParameter("transaction_id", OpenApiTypes.UUID, OpenApiParameter.PATH)


class ReplayableJSONRenderer(JSONRenderer):
    """JSON with every object's keys sorted, for the answers an Idempotency-Key replays.

    PostgreSQL's jsonb keeps no key order, so a stored body read back for a
    replay comes out reordered; rendering the first answer and the replay with
    sorted keys makes the replay the first answer byte for byte.
    """

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        return json.dumps(
            data, cls=self.encoder_class, sort_keys=True, ensure_ascii=self.ensure_ascii,
            allow_nan=not self.strict, separators=(",", ":"),
        ).encode()


class _MoneyApi(APIView):
    """A view whose POST moves money under an Idempotency-Key (its GET, if any, renders the same way)."""

    renderer_classes = [ReplayableJSONRenderer]


def _render(outcome, view_name: str = "transaction-detail") -> Response:
    """A money outcome (a first answer or its replay): the stored status and body, ``Location`` on a 201."""
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else {}
    if outcome.status == 201:
        return created(outcome.body, view_name, headers=headers)
    return Response(outcome.body, status=outcome.status, headers=headers)


def _idempotency_key(request) -> str | None:
    # The views check the header (with the services' own helper) before reading the body or the
    # accounts: the schema promises a request without a usable key its 400 whatever else is wrong,
    # not the 404 of an account it names. The services check it again for their other callers.
    return request.headers.get("Idempotency-Key")


def _validated(serializer_class, request) -> dict:
    data = serializer_class(data=request.data)
    data.is_valid(raise_exception=True)
    return data.validated_data


class DepositCreateApi(_MoneyApi):
    @extend_schema(
        operation_id="deposits_create",
        tags=["money"],
        request=DepositInput,
        parameters=[IDEMPOTENCY_KEY, REPLAYED],
        responses={201: TransactionOutputSerializer},
    )
    def post(self, request):
        key = _idempotency_key(request)
        idempotency_key_validate(key)
        data = _validated(DepositInput, request)
        account = account_identity_for_user(user=request.user, account_id=data.pop("account"))
        return _render(money.deposit_create(actor=request.user, account=account, idempotency_key=key, **data))


class WithdrawalCreateApi(_MoneyApi):
    @extend_schema(
        operation_id="withdrawals_create",
        tags=["money"],
        request=WithdrawalInput,
        parameters=[IDEMPOTENCY_KEY, REPLAYED],
        responses={201: TransactionOutputSerializer},
    )
    def post(self, request):
        key = _idempotency_key(request)
        idempotency_key_validate(key)
        data = _validated(WithdrawalInput, request)
        account = account_identity_for_user(user=request.user, account_id=data.pop("account"))
        return _render(money.withdrawal_create(actor=request.user, account=account, idempotency_key=key, **data))


class TransferCreateApi(_MoneyApi):
    @extend_schema(
        operation_id="transfers_create",
        tags=["money"],
        request=TransferInput,
        parameters=[IDEMPOTENCY_KEY, REPLAYED],
        responses={201: TransactionOutputSerializer},
    )
    def post(self, request):
        key = _idempotency_key(request)
        idempotency_key_validate(key)
        data = _validated(TransferInput, request)
        source = account_identity_for_user(user=request.user, account_id=data.pop("source_account"))
        destination = account_identity_customer(account_id=data.pop("destination_account"))
        return _render(
            money.transfer_create(
                actor=request.user, source=source, destination=destination, idempotency_key=key, **data
            )
        )


class ConversionCreateApi(APIView):
    @extend_schema(
        operation_id="conversions_create",
        tags=["money"],
        request=ConversionInput,
        parameters=[IDEMPOTENCY_KEY, REPLAYED],
        responses={201: TransactionOutputSerializer},
        description="Convert between two of your accounts at a quote's amounts and rate: one balanced journal entry "
        "per currency through the house's FX pools. A quote is used at most once.",
    )
    def post(self, request):
        key = _idempotency_key(request)
        idempotency_key_validate(key)
        data = _validated(ConversionInput, request)
        source = account_identity_for_user(user=request.user, account_id=data.pop("source_account"))
        destination = account_identity_for_user(user=request.user, account_id=data.pop("destination_account"))
        return _render(
            money.conversion_create(
                actor=request.user, quote_id=data.pop("quote"), source=source, destination=destination,
                idempotency_key=key, **data,
            )
        )


class TransactionListApi(APIView):
    @extend_schema(
        operation_id="transactions_list",
        tags=["money"],
        parameters=[
            OpenApiParameter("account", OpenApiTypes.UUID, OpenApiParameter.QUERY, description="One of your accounts."),
            OpenApiParameter("status", OpenApiTypes.STR, OpenApiParameter.QUERY, enum=Transaction.Status.values),
            OpenApiParameter("type", OpenApiTypes.STR, OpenApiParameter.QUERY, enum=Transaction.Type.values),
            OpenApiParameter("batch", OpenApiTypes.UUID, OpenApiParameter.QUERY, description="Only this batch's."),
            OpenApiParameter("cursor", OpenApiTypes.STR, OpenApiParameter.QUERY, description="From `next`/`previous`."),
            OpenApiParameter("page_size", OpenApiTypes.INT, OpenApiParameter.QUERY, description="1-200, default 50."),
        ],
        responses={200: TransactionPage},
    )
    @replica_reads
    def get(self, request):
        filters = _validated_query(request)
        page = KeysetPage(request)
        rows = selectors.transaction_page_for_user(
            user=request.user, limit=page.size + 1, before=page.before, after=page.after, **filters
        )
        return Response(page.render(rows, [transaction_representation(txn) for txn in rows]))


class _TransactionFilters(QueryInput):
    account = serializers.UUIDField(required=False, source="account_id")
    status = serializers.ChoiceField(choices=Transaction.Status.values, required=False)
    type = serializers.ChoiceField(choices=Transaction.Type.values, required=False)
    batch = serializers.UUIDField(required=False, source="batch_id")


def _validated_query(request) -> dict:
    data = _TransactionFilters(data=request.query_params)
    data.is_valid(raise_exception=True)
    return data.validated_data


class KeysetPage:
    """Opaque cursors over (created_at, id) for ``transaction_page_for_user``.

    A cursor is base64url JSON {"d": "next"|"prev", "t": timestamp, "i": id}.
    The selector is asked for ``size + 1`` rows; the extra row only tells
    whether another page exists in the direction of travel.
    """

    def __init__(self, request):
        self.request = request
        self.size = page_size_parse(request.query_params.get("page_size"))
        self.before = self.after = None
        raw = request.query_params.get("cursor")
        if raw:
            direction, position = self._decode(raw)
            if direction == "next":
                self.before = position
            else:
                self.after = position

    @staticmethod
    def _decode(raw: str):
        """(direction, position), each field checked for its type: any other cursor is 404."""
        try:
            data = json_loads(base64.urlsafe_b64decode(raw.encode() + b"=" * (-len(raw) % 4)))
        except (ValueError, binascii.Error):
            data = None
        if not isinstance(data, dict) or data.get("d") not in ("next", "prev") or not isinstance(data.get("i"), str):
            raise invalid_cursor()
        created_at = timestamp_parse(data.get("t"))
        try:
            txn_id = uuid.UUID(data["i"])
        except ValueError:
            txn_id = None
        if created_at is None or txn_id is None:
            raise invalid_cursor()
        return data["d"], selectors.Position(created_at, txn_id)

    def _link(self, direction: str, txn: Transaction) -> str:
        payload = json.dumps({"d": direction, "t": txn.created_at.isoformat(), "i": str(txn.pk)}, separators=(",", ":"))
        cursor = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
        return replace_query_param(self.request.build_absolute_uri(), "cursor", cursor)

    def render(self, rows: list[Transaction], bodies: list[dict]) -> dict:
        more = len(rows) > self.size
        if self.after is not None:
            # Walking back towards newer rows: the extra row is the newest one.
            rows, bodies = rows[-self.size :], bodies[-self.size :]
            newer, older = more, True
        else:
            rows, bodies = rows[: self.size], bodies[: self.size]
            newer, older = self.before is not None, more
        return {
            "results": bodies,
            "next": self._link("next", rows[-1]) if rows and older else None,
            "previous": self._link("prev", rows[0]) if rows and newer else None,
        }


class TransactionDetailApi(APIView):
    @extend_schema(
        operation_id="transactions_retrieve",
        tags=["money"],
        parameters=[TRANSACTION_ID],
        responses={200: TransactionOutputSerializer},
    )
    def get(self, request, transaction_id):
        txn = selectors.transaction_get_for_user(user=request.user, transaction_id=transaction_id)
        return Response(transaction_representation(txn))


class HoldCommitApi(APIView):
    @extend_schema(
        operation_id="transactions_commit",
        tags=["money"],
        request=None,
        parameters=[TRANSACTION_ID],
        responses={200: TransactionOutputSerializer},
        description="Commit a pending hold (source owner, no PIN): the reserved amount moves.",
    )
    def post(self, request, transaction_id):
        txn = selectors.transaction_get_for_user(user=request.user, transaction_id=transaction_id)
        return Response(transaction_representation(holds.hold_commit(actor=request.user, transaction=txn)))


class HoldVoidApi(APIView):
    @extend_schema(
        operation_id="transactions_void",
        tags=["money"],
        request=None,
        parameters=[TRANSACTION_ID],
        responses={200: TransactionOutputSerializer},
        description="Void a pending hold (source owner): the reservation is released.",
    )
    def post(self, request, transaction_id):
        txn = selectors.transaction_get_for_user(user=request.user, transaction_id=transaction_id)
        return Response(transaction_representation(holds.hold_void(actor=request.user, transaction=txn)))


# --- Batches --------------------------------------------------------------------------------

_ITEM_TYPES = [Transaction.Type.DEPOSIT, Transaction.Type.WITHDRAWAL, Transaction.Type.TRANSFER, Transaction.Type.CONVERSION]


class BatchItemInput(_MoneyInput):
    """One item: shaped like the body of its single endpoint (without the PIN)."""

    type = serializers.ChoiceField(choices=_ITEM_TYPES)
    amount = StrictAmountField(required=False, help_text="Every type but conversion (whose amounts are its quote's).")
    account = serializers.UUIDField(required=False, help_text="deposit, withdrawal")
    source_account = serializers.UUIDField(required=False, help_text="transfer, conversion")
    destination_account = serializers.UUIDField(required=False, help_text="transfer, conversion")
    hold = StrictBooleanField(required=False, default=False, help_text="transfer only: reserve, commit or void later.")
    quote = serializers.UUIDField(required=False, help_text="conversion: an unexpired, unused quote of yours.")

    _FIELDS = {
        Transaction.Type.DEPOSIT: ("amount", "account"),
        Transaction.Type.WITHDRAWAL: ("amount", "account"),
        Transaction.Type.TRANSFER: ("amount", "source_account", "destination_account"),
        Transaction.Type.CONVERSION: ("quote", "source_account", "destination_account"),
    }

    def to_internal_value(self, data):
        """All of an item's field errors at once, the fields its type needs included."""
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError as exc:
            kind = data.get("type") if isinstance(data, dict) else None
            wanted = self._FIELDS.get(kind) if isinstance(kind, str) else None  # {"type": {}} is not a key
            missing = {name: ["This field is required."] for name in wanted or () if name not in data}
            raise serializers.ValidationError({**missing, **exc.detail}) from None

    def validate(self, data):
        wanted = self._FIELDS[data["type"]]
        errors = {name: ["This field is required."] for name in wanted if name not in data}
        for name in ("amount", "account", "source_account", "destination_account", "quote"):
            if name in data and name not in wanted:
                errors[name] = [f"Not a field of a {data['type']}."]
        if data.get("hold") and data["type"] != Transaction.Type.TRANSFER:
            errors["hold"] = ["Only a transfer can be a hold."]
        if errors:
            raise serializers.ValidationError(errors)
        return data


class BatchInput(serializers.Serializer):
    items = serializers.ListField(child=BatchItemInput(), min_length=1, max_length=batches.MAX_ITEMS)
    atomic = StrictBooleanField(required=False, default=True, help_text="All items or none (default).")
    pin = StrictCharField(required=False, help_text="Required when any item is a withdrawal, a transfer or a conversion.")


class BatchResultOutput(serializers.Serializer):
    index = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["ok", "failed"])
    transaction = TransactionOutputSerializer(allow_null=True)
    error = serializers.DictField(allow_null=True, help_text="{code, message} of a failed item.")


class BatchOutputSerializer(serializers.Serializer):
    """Documents ``transactions.representations.batch_representation``."""

    id = serializers.UUIDField()
    atomic = serializers.BooleanField()
    status = serializers.ChoiceField(choices=Batch.Status.values)
    created_at = serializers.DateTimeField()
    count = serializers.IntegerField()
    succeeded = serializers.IntegerField()
    failed = serializers.IntegerField()
    results = BatchResultOutput(many=True)


BatchPage = page_of(BatchOutputSerializer, "BatchPage")
BATCH_ID = OpenApiParameter("batch_id", OpenApiTypes.UUID, OpenApiParameter.PATH)


class BatchesApi(_MoneyApi):
    @extend_schema(
        operation_id="batches_create",
        tags=["money"],
        request=BatchInput,
        parameters=[IDEMPOTENCY_KEY, REPLAYED],
        responses={201: BatchOutputSerializer},
        description=(
            "Apply 1-1000 movements in order, in one commit. Atomic (default): all or none; a refused "
            "item answers its own error with `index`. `atomic: false`: 201 with each item's outcome."
        ),
    )
    def post(self, request):
        key = _idempotency_key(request)
        idempotency_key_validate(key)
        data = _validated(BatchInput, request)
        items = [batches.BatchItem(**item) for item in data["items"]]
        outcome = batches.batch_create(
            actor=request.user, items=items, atomic=data["atomic"], pin=data.get("pin"), idempotency_key=key
        )
        return _render(outcome, "batch-detail")

    @extend_schema(
        operation_id="batches_list",
        tags=["money"],
        parameters=[
            OpenApiParameter("cursor", OpenApiTypes.STR, OpenApiParameter.QUERY, description="From `next`/`previous`."),
            OpenApiParameter("page_size", OpenApiTypes.INT, OpenApiParameter.QUERY, description="1-200, default 50."),
        ],
        responses={200: BatchPage},
    )
    @replica_reads
    def get(self, request):
        page = KeysetPage(request)
        rows = selectors.batch_page_for_user(user=request.user, limit=page.size + 1, before=page.before, after=page.after)
        bodies = [batch_representation(batch, selectors.batch_transactions(batch)) for batch in rows[: page.size + 1]]
        return Response(page.render(rows, bodies))


class BatchDetailApi(APIView):
    @extend_schema(
        operation_id="batches_retrieve",
        tags=["money"],
        parameters=[BATCH_ID],
        responses={200: BatchOutputSerializer},
    )
    def get(self, request, batch_id):
        batch = selectors.batch_get_for_user(user=request.user, batch_id=batch_id)
        return Response(batch_representation(batch, selectors.batch_transactions(batch)))
