"""Events and webhook endpoints API: thin views over ``events.selectors`` and ``events.services.endpoints``.

Everything is the caller's own: another user's event, endpoint or delivery is
a 404, as if it did not exist.
"""

import base64
import binascii
import json
import uuid

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from events import selectors
from events.models import Delivery, Event, EventType, WebhookEndpoint
from events.services import endpoints
from events.services.representations import event_representation, timestamp_text
from ledger.api_fields import StrictCharField, page_of
from ledgerx.api.created import created
from ledgerx.api.pagination import NewestFirstCursorPagination, invalid_cursor, page_size_parse
from ledgerx.api.parsers import json_loads
from ledgerx.api.query import QueryInput
from ledgerx.db.replicas import replica_reads



class IdPagination(NewestFirstCursorPagination):
    # UUIDv7 ids grow with time: a pure keyset over -id.
    ordering = "-id"


class EndpointPagination(NewestFirstCursorPagination):
    ordering = ("-created_at", "-id")


class EventLogPage:
    """Opaque cursors over the event log's positions (xid, id) for ``selectors.event_page_for_user``.

    A cursor is base64url JSON {"d": "next"|"prev", "x": xid, "i": event id}.
    Unlike the other lists, every non-empty page (the first one too) has a
    ``previous`` link: the events newer than its newest one, i.e. those that
    commit after this read. The log only grows at its newest end, so a client
    that follows ``previous`` misses nothing; a ``previous`` page that is still
    empty links to itself (poll it again later).
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
    def _decode(raw: str) -> tuple[str, selectors.EventPosition]:
        """(direction, position), each field checked for its type: any other cursor is 404."""
        try:
            data = json_loads(base64.urlsafe_b64decode(raw.encode() + b"=" * (-len(raw) % 4)))
        except (ValueError, binascii.Error):
            data = None
        if not isinstance(data, dict) or data.get("d") not in ("next", "prev") or not isinstance(data.get("i"), str):
            raise invalid_cursor()
        xid = data.get("x")
        try:
            event_id = uuid.UUID(data["i"])
        except ValueError:
            event_id = None
        if type(xid) is not int or not 0 <= xid < 2**63 or event_id is None:
            raise invalid_cursor()
        return data["d"], selectors.EventPosition(xid, event_id)

    def _link(self, direction: str, position: selectors.EventPosition) -> str:
        payload = json.dumps({"d": direction, "x": position.xid, "i": str(position.id)}, separators=(",", ":"))
        cursor = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
        return replace_query_param(self.request.build_absolute_uri(), "cursor", cursor)

    def render(self, rows: list[Event]) -> dict:
        """The page of ``rows`` (the selector's, ``size + 1`` asked: the extra row says another page exists)."""
        more = len(rows) > self.size
        if self.after is not None:
            rows = rows[-self.size :]  # walking towards newer rows: the extra row is the newest one
            older = True
        else:
            rows = rows[: self.size]
            older = more
        position = selectors.EventPosition
        newest = position(rows[0].xid, rows[0].pk) if rows else self.after
        return {
            "results": [event_representation(event) for event in rows],
            "next": self._link("next", position(rows[-1].xid, rows[-1].pk)) if rows and older else None,
            "previous": self._link("prev", newest) if newest is not None else None,
        }


# --- Shapes -------------------------------------------------------------------------


class EventOutput(serializers.Serializer):
    id = serializers.UUIDField()
    type = serializers.ChoiceField(choices=EventType.choices)
    created_at = serializers.DateTimeField()
    data = serializers.DictField(help_text="The object as the API shows it after the change.")


class EndpointOutput(serializers.Serializer):
    id = serializers.UUIDField()
    url = serializers.CharField()
    events = serializers.ListField(child=serializers.ChoiceField(choices=EventType.choices), help_text="Empty: every type.")
    description = serializers.CharField()
    status = serializers.ChoiceField(choices=WebhookEndpoint.Status.choices)
    disabled_reason = serializers.CharField(help_text="Why it is disabled; empty while enabled.")
    created_at = serializers.DateTimeField()


class EndpointWithSecretOutput(EndpointOutput):
    secret = serializers.CharField(help_text="`whsec_...`: shown only in this response.")


class DeliveryOutput(serializers.Serializer):
    id = serializers.UUIDField()
    event = serializers.UUIDField()
    event_type = serializers.ChoiceField(choices=EventType.choices)
    status = serializers.ChoiceField(choices=Delivery.Status.choices)
    attempts = serializers.IntegerField()
    status_code = serializers.IntegerField(allow_null=True, help_text="HTTP status of the last attempt.")
    duration_ms = serializers.IntegerField(allow_null=True)
    error = serializers.CharField(help_text="What went wrong in the last attempt; empty on success.")
    last_attempt_at = serializers.DateTimeField(allow_null=True)
    next_retry_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


class EndpointCreateInput(serializers.Serializer):
    url = StrictCharField(max_length=endpoints.URL_MAX, help_text="https; not a private, loopback or link-local address.")
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=EventType.choices), required=False, default=list, max_length=50
    )
    description = StrictCharField(max_length=endpoints.DESCRIPTION_MAX, required=False, allow_blank=True, default="")


class EndpointUpdateInput(serializers.Serializer):
    url = StrictCharField(max_length=endpoints.URL_MAX, required=False)
    events = serializers.ListField(child=serializers.ChoiceField(choices=EventType.choices), required=False, max_length=50)
    description = StrictCharField(max_length=endpoints.DESCRIPTION_MAX, required=False, allow_blank=True)
    status = serializers.ChoiceField(choices=WebhookEndpoint.Status.choices, required=False)


EventPage = page_of(EventOutput, "EventPage")
EndpointPage = page_of(EndpointOutput, "WebhookEndpointPage")
DeliveryPage = page_of(DeliveryOutput, "DeliveryPage")


def endpoint_body(endpoint: WebhookEndpoint, secret: str | None = None) -> dict:
    body = {
        "id": str(endpoint.pk),
        "url": endpoint.url,
        "events": endpoint.events,
        "description": endpoint.description,
        "status": endpoint.status,
        "disabled_reason": endpoint.disabled_reason,
        "created_at": timestamp_text(endpoint.created_at),
    }
    if secret is not None:
        body["secret"] = secret
    return body


def delivery_body(delivery: Delivery) -> dict:
    stamp = timestamp_text
    return {
        "id": str(delivery.pk),
        "event": str(delivery.event_id),
        "event_type": delivery.event.type,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "status_code": delivery.last_status_code,
        "duration_ms": delivery.last_duration_ms,
        "error": delivery.last_error,
        "last_attempt_at": stamp(delivery.last_attempt_at),
        "next_retry_at": stamp(delivery.next_attempt_at) if delivery.status == Delivery.Status.PENDING else None,
        "delivered_at": stamp(delivery.delivered_at),
        "created_at": stamp(delivery.created_at),
    }


PAGE_PARAMETERS = [
    OpenApiParameter("cursor", OpenApiTypes.STR, OpenApiParameter.QUERY, description="From `next`/`previous`."),
    OpenApiParameter("page_size", OpenApiTypes.INT, OpenApiParameter.QUERY, description="1-200, default 50."),
]
EVENT_ID = OpenApiParameter("event_id", OpenApiTypes.UUID, OpenApiParameter.PATH)
ENDPOINT_ID = OpenApiParameter("endpoint_id", OpenApiTypes.UUID, OpenApiParameter.PATH)
DELIVERY_ID = OpenApiParameter("delivery_id", OpenApiTypes.UUID, OpenApiParameter.PATH)


class _TypeFilter(QueryInput):
    type = serializers.ChoiceField(choices=EventType.choices, required=False)


# --- Events -------------------------------------------------------------------------


class EventListApi(APIView):
    @extend_schema(
        operation_id="events_list",
        tags=["events"],
        description=(
            "Newest first, in the order of the log. Every non-empty page has a `previous` link to the events "
            "committed after it: follow it to poll; an event never appears behind a page already read."
        ),
        parameters=[OpenApiParameter("type", OpenApiTypes.STR, OpenApiParameter.QUERY, enum=EventType.values), *PAGE_PARAMETERS],
        responses={200: EventPage},
    )
    @replica_reads
    def get(self, request):
        query = _TypeFilter(data=request.query_params)
        query.is_valid(raise_exception=True)
        page = EventLogPage(request)
        rows = selectors.event_page_for_user(
            user=request.user, limit=page.size + 1, type=query.validated_data.get("type"), before=page.before,
            after=page.after,
        )
        return Response(page.render(rows))


class EventDetailApi(APIView):
    @extend_schema(
        operation_id="events_retrieve", tags=["events"], parameters=[EVENT_ID],
        responses={200: EventOutput},
    )
    def get(self, request, event_id):
        return Response(event_representation(selectors.event_get_for_user(user=request.user, event_id=event_id)))


# --- Webhook endpoints ----------------------------------------------------------------


class EndpointListCreateApi(APIView):
    @extend_schema(
        operation_id="webhook_endpoints_list", tags=["webhooks"], parameters=PAGE_PARAMETERS,
        responses={200: EndpointPage},
    )
    def get(self, request):
        paginator = EndpointPagination()
        rows = paginator.paginate_queryset(selectors.endpoint_list_for_user(user=request.user), request, view=self)
        return paginator.get_paginated_response([endpoint_body(endpoint) for endpoint in rows])

    @extend_schema(
        operation_id="webhook_endpoints_create", tags=["webhooks"], request=EndpointCreateInput,
        responses={201: EndpointWithSecretOutput},
    )
    def post(self, request):
        data = EndpointCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint, secret = endpoints.endpoint_create(actor=request.user, **data.validated_data)
        return created(endpoint_body(endpoint, secret), "webhook-endpoint-detail")


class EndpointDetailApi(APIView):
    @extend_schema(
        operation_id="webhook_endpoints_retrieve", tags=["webhooks"], parameters=[ENDPOINT_ID],
        responses={200: EndpointOutput},
    )
    def get(self, request, endpoint_id):
        return Response(endpoint_body(selectors.endpoint_get_for_user(user=request.user, endpoint_id=endpoint_id)))

    @extend_schema(
        operation_id="webhook_endpoints_update", tags=["webhooks"], parameters=[ENDPOINT_ID], request=EndpointUpdateInput,
        responses={200: EndpointOutput},
    )
    def patch(self, request, endpoint_id):
        endpoint = selectors.endpoint_get_for_user(user=request.user, endpoint_id=endpoint_id)
        data = EndpointUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = endpoints.endpoint_update(actor=request.user, endpoint=endpoint, **data.validated_data)
        return Response(endpoint_body(endpoint))

    @extend_schema(
        operation_id="webhook_endpoints_destroy", tags=["webhooks"], parameters=[ENDPOINT_ID],
        responses={204: None},
    )
    def delete(self, request, endpoint_id):
        endpoint = selectors.endpoint_get_for_user(user=request.user, endpoint_id=endpoint_id)
        endpoints.endpoint_delete(actor=request.user, endpoint=endpoint)
        return Response(status=status.HTTP_204_NO_CONTENT)


class EndpointRotateSecretApi(APIView):
    @extend_schema(
        operation_id="webhook_endpoints_rotate_secret", tags=["webhooks"], parameters=[ENDPOINT_ID], request=None,
        description="A new secret; the previous one keeps signing beside it for 24 hours (both signatures are sent).",
        responses={200: EndpointWithSecretOutput},
    )
    def post(self, request, endpoint_id):
        endpoint = selectors.endpoint_get_for_user(user=request.user, endpoint_id=endpoint_id)
        endpoint, secret = endpoints.endpoint_rotate_secret(actor=request.user, endpoint=endpoint)
        return Response(endpoint_body(endpoint, secret))


class DeliveryListApi(APIView):
    @extend_schema(
        operation_id="webhook_deliveries_list", tags=["webhooks"], parameters=[ENDPOINT_ID, *PAGE_PARAMETERS],
        responses={200: DeliveryPage},
    )
    def get(self, request, endpoint_id):
        endpoint = selectors.endpoint_get_for_user(user=request.user, endpoint_id=endpoint_id)
        paginator = IdPagination()
        rows = paginator.paginate_queryset(selectors.delivery_list_for_endpoint(endpoint=endpoint), request, view=self)
        return paginator.get_paginated_response([delivery_body(delivery) for delivery in rows])


class DeliveryRetryApi(APIView):
    @extend_schema(
        operation_id="webhook_deliveries_retry", tags=["webhooks"], parameters=[ENDPOINT_ID, DELIVERY_ID], request=None,
        description="Send this delivery again now (the next worker pass picks it up).",
        responses={202: DeliveryOutput},
    )
    def post(self, request, endpoint_id, delivery_id):
        endpoint = selectors.endpoint_get_for_user(user=request.user, endpoint_id=endpoint_id)
        delivery = selectors.delivery_get_for_endpoint(endpoint=endpoint, delivery_id=delivery_id)
        delivery = endpoints.delivery_retry(actor=request.user, delivery=delivery)
        return Response(delivery_body(delivery), status=status.HTTP_202_ACCEPTED)
