"""Currency conversion API: quotes (any user) and the rates (admin).

``POST conversions`` itself is a money movement and lives with the others
(``transactions.apis``).
"""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.apis import BACKOFFICE_PERMISSIONS, backoffice_responses
from fx import selectors, services
from fx.representations import quote_representation, rate_representation
from ledger.api_fields import NOT_AUTHENTICATED, RATE_LIMITED, StrictAmountField, StrictCharField, error

# What any operation here can also answer (the contract lists 429 and 500 for every operation).
ALWAYS = {429: RATE_LIMITED, 500: error("internal_error: an unexpected failure (logged with the request id).")}


class QuoteInput(serializers.Serializer):
    source_currency = StrictCharField()
    destination_currency = StrictCharField()
    source_amount = StrictAmountField(required=False, help_text="What you pay, in the source's minor units.")
    destination_amount = StrictAmountField(required=False, help_text="What you receive, in the destination's minor units.")


class QuoteOutput(serializers.Serializer):
    """Documents ``fx.representations.quote_representation``."""

    id = serializers.UUIDField()
    source_currency = serializers.CharField()
    destination_currency = serializers.CharField()
    source_amount = serializers.IntegerField(help_text="Minor units of the source currency.")
    destination_amount = serializers.IntegerField(help_text="Minor units of the destination currency.")
    rate = serializers.CharField(help_text="Decimal string: destination units per source unit, spread included.")
    expires_at = serializers.DateTimeField(help_text="Firm until then (at least 30 s).")


def _validated(serializer_class, request) -> dict:
    data = serializer_class(data=request.data)
    data.is_valid(raise_exception=True)
    return data.validated_data


class QuoteCreateApi(APIView):
    @extend_schema(
        operation_id="fx_quotes_create",
        tags=["currency conversion"],
        request=QuoteInput,
        responses={
            201: QuoteOutput,
            400: error("validation_error: currencies, exactly one amount, or an amount that converts to nothing."),
            401: NOT_AUTHENTICATED,
            409: error("invalid_state: no rate for the pair, or the rate is stale."),
            **ALWAYS,
        },
        description="A firm price for at least 30 seconds. Give `source_amount` or `destination_amount`; "
        "the other is computed at the rate and rounded in the house's favour.",
    )
    def post(self, request):
        data = _validated(QuoteInput, request)
        quote = services.quote_create(actor=request.user, **data)
        return Response(quote_representation(quote), status=201)


class RateInput(serializers.Serializer):
    base = StrictCharField()
    quote = StrictCharField()
    mid = StrictCharField(help_text="Decimal string: units of `quote` per unit of `base` (at most 15 significant digits).")
    spread_bps = serializers.IntegerField(help_text=f"0 to {services.SPREAD_MAX_BPS} basis points, each way.")

    def to_internal_value(self, data):
        # A JSON integer only (DRF's IntegerField would take "25" or 25.0).
        if isinstance(data, dict) and "spread_bps" in data and type(data["spread_bps"]) is not int:
            raise serializers.ValidationError({"spread_bps": ["Must be a JSON integer."]})
        return super().to_internal_value(data)


class RateOutput(serializers.Serializer):
    """Documents ``fx.representations.rate_representation``."""

    base = serializers.CharField()
    quote = serializers.CharField()
    mid = serializers.CharField()
    spread_bps = serializers.IntegerField()
    updated_at = serializers.DateTimeField()


class RatesAdminApi(APIView):
    permission_classes = BACKOFFICE_PERMISSIONS

    @extend_schema(
        operation_id="admin_fx_rates_list",
        tags=["back office"],
        responses={**backoffice_responses({200: RateOutput(many=True)}, reason=False), **ALWAYS},
    )
    def get(self, request):
        return Response([rate_representation(rate) for rate in selectors.rates_all()])

    @extend_schema(
        operation_id="admin_fx_rates_set",
        tags=["back office"],
        request=RateInput,
        responses={
            **backoffice_responses({200: RateOutput}, reason=False),
            400: error("validation_error: a currency, `mid` or `spread_bps`."),
            **ALWAYS,
        },
        description="Set a pair's mid rate and spread (audited). One row per pair: setting NGN/USD replaces USD/NGN.",
    )
    def put(self, request):
        data = _validated(RateInput, request)
        rate = services.rate_set(actor=request.user, source="api", **data)
        return Response(rate_representation(rate))
