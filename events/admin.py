"""Back office for events and webhooks: read-only lists, and the few actions staff need.

Actions call the same services as the API (``events.services``), which audit
them: disabling or re-enabling an endpoint, resending a delivery. Nothing here
edits an event (append-only) or a delivery's outcome.
"""

from django.contrib import admin, messages
from django.db.models import Q

from audit.admin_tools import ReadOnlyAdmin, term_uuid
from events.models import Delivery, Event, WebhookEndpoint
from events.services import delivery_retry, endpoint_update
from ledgerx.exceptions import LedgerXError

PERM_MANAGE = "events.change_webhookendpoint"


class FailingFilter(admin.SimpleListFilter):
    title = "failing"
    parameter_name = "failing"

    def lookups(self, request, model_admin):
        return [("yes", "Failing now"), ("no", "Answering")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(failing_since__isnull=False)
        if self.value() == "no":
            return queryset.filter(failing_since__isnull=True)
        return queryset


def _each(admin_, request, queryset, action, done: str):
    count = 0
    for obj in queryset:
        try:
            action(obj)
            count += 1
        except LedgerXError as exc:
            admin_.message_user(request, f"Could not {done} {obj}: {exc.message}", level=messages.ERROR)
    if count:
        admin_.message_user(request, f"{count} {done}.", level=messages.SUCCESS)


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("id", "type", "created_at")
    list_filter = ("type",)
    ordering = ("-id",)
    search_help_text = "Search by event id (exact)."
    fields = ("id", "type", "created_at", "data", "recipients_list")
    readonly_fields = fields

    def search_condition(self, term):
        pk = term_uuid(term)
        return Q(pk=pk) if pk is not None else None

    @admin.display(description="Seen by (user ids)")
    def recipients_list(self, obj):
        return ", ".join(str(user_id) for user_id in obj.recipients.values_list("user_id", flat=True))


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyAdmin):
    list_display = ("url", "owner", "status", "failing_since", "disabled_reason", "created_at")
    list_filter = ("status", FailingFilter)
    list_select_related = ("owner",)
    ordering = ("-created_at", "-id")
    search_help_text = "Search by endpoint id or owner id (exact)."
    fields = (
        "id", "owner", "url", "events", "description", "status", "disabled_reason", "failing_since", "created_at",
        "previous_secret_expires_at",
    )
    readonly_fields = fields
    actions = ("disable_endpoints", "enable_endpoints")

    def search_condition(self, term):
        pk = term_uuid(term)
        return Q(pk=pk) | Q(owner_id=pk) if pk is not None else None

    def has_manage_permission(self, request) -> bool:
        return request.user.has_perm(PERM_MANAGE)

    @admin.action(description="Disable selected endpoints (no more deliveries)", permissions=["manage"])
    def disable_endpoints(self, request, queryset):
        _each(self, request, queryset, lambda obj: endpoint_update(actor=request.user, endpoint=obj, status="disabled"), "disabled")

    @admin.action(description="Enable selected endpoints (pending deliveries resume)", permissions=["manage"])
    def enable_endpoints(self, request, queryset):
        _each(self, request, queryset, lambda obj: endpoint_update(actor=request.user, endpoint=obj, status="enabled"), "enabled")


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ("id", "event_type", "endpoint", "status", "attempts", "last_status_code", "last_error", "next_attempt_at")
    list_filter = ("status",)
    list_select_related = ("event", "endpoint")
    ordering = ("-id",)
    search_help_text = "Search by delivery, event or endpoint id (exact)."
    fields = (
        "id", "event", "endpoint", "status", "attempts", "next_attempt_at", "last_attempt_at", "last_status_code",
        "last_duration_ms", "last_error", "delivered_at", "claimed_by", "claimed_until", "created_at",
    )
    readonly_fields = fields
    actions = ("resend_deliveries",)

    def search_condition(self, term):
        pk = term_uuid(term)
        return Q(pk=pk) | Q(event_id=pk) | Q(endpoint_id=pk) if pk is not None else None

    def has_manage_permission(self, request) -> bool:
        return request.user.has_perm(PERM_MANAGE)

    @admin.display(description="Event")
    def event_type(self, obj):
        return obj.event.type

    @admin.action(description="Resend selected deliveries now", permissions=["manage"])
    def resend_deliveries(self, request, queryset):
        _each(self, request, queryset, lambda obj: delivery_retry(actor=request.user, delivery=obj), "queued to resend")
