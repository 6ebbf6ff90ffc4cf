from django.urls import path

from events import apis
from ledgerx.api import converters  # noqa: F401  (registers <uuid_ci:...>)

urlpatterns = [
    path("events", apis.EventListApi.as_view(), name="events"),
    path("events/<uuid_ci:event_id>", apis.EventDetailApi.as_view(), name="event-detail"),
    path("webhook-endpoints", apis.EndpointListCreateApi.as_view(), name="webhook-endpoints"),
    path("webhook-endpoints/<uuid_ci:endpoint_id>", apis.EndpointDetailApi.as_view(), name="webhook-endpoint-detail"),
    path(
        "webhook-endpoints/<uuid_ci:endpoint_id>/rotate-secret",
        apis.EndpointRotateSecretApi.as_view(),
        name="webhook-endpoint-rotate-secret",
    ),
    path(
        "webhook-endpoints/<uuid_ci:endpoint_id>/deliveries",
        apis.DeliveryListApi.as_view(),
        name="webhook-endpoint-deliveries",
    ),
    path(
        "webhook-endpoints/<uuid_ci:endpoint_id>/deliveries/<uuid_ci:delivery_id>/retry",
        apis.DeliveryRetryApi.as_view(),
        name="webhook-delivery-retry",
    ),
]
