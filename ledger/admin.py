"""Back office for the books: accounts (freeze/unfreeze with a reason), journal, postings.

Balances are never editable (the model marks them non-editable and only
``ledger.services`` writes them); journal entries and postings are read-only
for everyone. Lists are built for tables of millions of rows: related objects
joined up front, counts capped (``CappedCountPaginator``), exact-match search
on indexed columns.
"""

from auditlog.registry import auditlog
from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from audit.admin_tools import AuditedChangeAdmin, CappedCountPaginator, CurrencyFilter, FixedChoicesFilter, ReadOnlyAdmin, reason_action
from audit.compliance import PERM_FREEZE
from ledger.models import JournalEntry, LedgerAccount, Posting
from ledger.money import money_format
from ledger.services import account_freeze, account_rename, account_unfreeze

auditlog.register(LedgerAccount, include_fields=["name", "status"])


def _money(amount: int, currency: str) -> str:
    try:
        return money_format(amount, currency)
    except KeyError:  # a currency since removed from settings: show raw minor units
        return f"{amount} {currency} (minor units)"


@admin.register(LedgerAccount)
class LedgerAccountAdmin(AuditedChangeAdmin):
    list_display = ("number", "owner", "currency", "kind", "status", "posted_display", "pending_display", "available_display", "created_at")
    list_filter = (CurrencyFilter, "status", "kind")
    search_fields = ("=number", "=owner__email")
    list_select_related = ("owner",)
    raw_id_fields = ("owner",)
    ordering = ("-created_at",)
    show_full_result_count = False
    paginator = CappedCountPaginator
    fields = (
        "number", "name", "owner", "kind", "system_role", "shard", "currency", "status",
        "posted_display", "pending_display", "available_display", "created_at",
    )
    # Only the display name is editable; status changes go through the actions.
    readonly_fields = tuple(name for name in fields if name != "name")
    actions = ("freeze_accounts", "unfreeze_accounts")

    def has_add_permission(self, request) -> bool:
        return False  # accounts are opened through the API (ledger.services.account_open)

    def save_model(self, request, obj, form, change):
        """The name is the only editable field: renamed under the row lock, so the cached account follows."""
        if "name" in form.changed_data:
            account_rename(account=obj, name=obj.name)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_freeze_permission(self, request) -> bool:
        return request.user.has_perm(PERM_FREEZE)

    @admin.display(description="Posted", ordering="posted")
    def posted_display(self, obj: LedgerAccount) -> str:
        return _money(obj.posted, obj.currency)

    @admin.display(description="Pending (holds)", ordering="pending")
    def pending_display(self, obj: LedgerAccount) -> str:
        return _money(obj.pending, obj.currency)

    @admin.display(description="Available")
    def available_display(self, obj: LedgerAccount) -> str:
        return _money(obj.available, obj.currency)

    @admin.action(description="Freeze selected accounts (no sending or receiving)", permissions=["freeze"])
    def freeze_accounts(self, request, queryset):
        return reason_action(
            self, request, queryset,
            title="Freeze accounts",
            verb="Freeze",
            service=lambda *, actor, obj, reason: account_freeze(actor=actor, account=obj, reason=reason),
            explanation="A frozen account can neither send nor receive money; its owner can still see it.",
        )

    @admin.action(description="Unfreeze selected accounts", permissions=["freeze"])
    def unfreeze_accounts(self, request, queryset):
        return reason_action(
            self, request, queryset,
            title="Unfreeze accounts",
            verb="Unfreeze",
            service=lambda *, actor, obj, reason: account_unfreeze(actor=actor, account=obj, reason=reason),
            explanation="The accounts will be able to send and receive money again.",
        )


class PostingInline(admin.TabularInline):
    model = Posting
    fields = ("account", "currency", "amount", "balance_after", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("account")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class RefTypeFilter(FixedChoicesFilter):
    title = "recorded movement"
    parameter_name = "ref_type"
    field_name = "ref_type"

    def choices_for(self):
        return [(value, value) for value in ("deposit", "withdrawal", "transfer", "reversal")]


@admin.register(JournalEntry)
class JournalEntryAdmin(ReadOnlyAdmin):
    list_display = ("id", "ref_type", "ref_id", "created_at")
    list_filter = (RefTypeFilter,)
    search_fields = ("=id", "=ref_id")
    date_hierarchy = "created_at"
    ordering = ("-id",)
    inlines = (PostingInline,)


@admin.register(Posting)
class PostingAdmin(ReadOnlyAdmin):
    list_display = ("id", "entry_link", "account", "currency", "amount", "balance_after", "created_at")
    list_filter = (CurrencyFilter,)
    search_fields = ("=entry__id", "=account__number")
    list_select_related = ("account", "entry")
    raw_id_fields = ("entry", "account")
    date_hierarchy = "created_at"
    ordering = ("-id",)

    @admin.display(description="Entry", ordering="entry")
    def entry_link(self, obj: Posting) -> str:
        url = reverse("admin:ledger_journalentry_change", args=[obj.entry_id])
        return format_html('<a href="{}">{}</a>', url, obj.entry_id)
