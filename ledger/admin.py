"""Back office for the books: accounts (freeze/unfreeze with a reason), journal, postings.

Balances are never editable (the model marks them non-editable and only
``ledger.services`` writes them); journal entries and postings are read-only
for everyone. Lists are built for tables of millions of rows: related objects
joined up front, counts capped (``CappedCountPaginator``), exact-match search
on indexed columns.
"""

import re

from django.contrib import admin
from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html

from accounts.models import User
from audit.admin_tools import (
    NO_ROWS,
    PREFIX_USERS_MAX,
    AuditedChangeAdmin,
    CurrencyFilter,
    FixedChoicesFilter,
    IndexedListAdmin,
    ObjectActionsAdmin,
    ReadOnlyAdmin,
    any_column_is,
    reason_action,
    term_int,
    term_prefix,
    term_uuid,
    user_condition,
)
from audit.compliance import PERM_FREEZE
from ledger.models import JournalEntry, LedgerAccount, Posting
from ledger.money import money_display
from ledger.services import account_freeze, account_rename, account_unfreeze



# What ledger.services numbers accounts with: 12 digits (customers), SYS-USD-FUN-03 (system shards).
ACCOUNT_NUMBER = re.compile(r"[0-9]{12}|SYS-[A-Z]{3}-[A-Z]{3}-[0-9]{2}", re.IGNORECASE)
# The start of one (at least PREFIX_MIN characters): "1000004", "sys-usd".
ACCOUNT_NUMBER_PREFIX = re.compile(r"[0-9]{3,11}|SYS-[A-Z0-9-]{0,10}", re.IGNORECASE)


def account_condition(term: str, *columns: str) -> Q | None:
    """Rows whose account ``columns`` (foreign keys) name the account ``term`` gives by number or id.

    The account is resolved first (one lookup by a unique index), so the list
    filters on the foreign key column's own index instead of joining the
    account table. None when ``term`` is neither an account number nor the id
    of an account (the caller may give a UUID another meaning).
    """
    if ACCOUNT_NUMBER.fullmatch(term):
        account_pk = LedgerAccount.objects.filter(number=term.upper()).values_list("pk", flat=True).first()
        if account_pk is None:
            return NO_ROWS
    else:
        candidate = term_uuid(term)
        if candidate is None or not LedgerAccount.objects.filter(pk=candidate).exists():
            return None
        account_pk = candidate
    return any_column_is(account_pk, columns)


@admin.register(LedgerAccount)
class LedgerAccountAdmin(ObjectActionsAdmin, IndexedListAdmin, AuditedChangeAdmin):
    list_display = ("number", "owner", "currency", "kind", "status", "posted_display", "pending_display", "available_display", "created_at")
    list_filter = (CurrencyFilter, "status", "kind")
    search_help_text = (
        "Search by account number or its start (at least 3 digits), account id, or the owner's email "
        "or its start."
    )
    list_select_related = ("owner",)
    raw_id_fields = ("owner",)
    # created_at has no index of its own (only behind owner_id): number is unique, so indexed.
    ordering = ("number",)
    sortable_by = ("number",)
    fields = (
        "number", "name", "owner", "kind", "system_role", "shard", "currency", "status",
        "posted_display", "pending_display", "available_display", "created_at", "activity_links",
    )
    # Only the display name is editable; status changes go through the actions.
    readonly_fields = tuple(name for name in fields if name != "name")
    actions = ("freeze_accounts", "unfreeze_accounts")

    def has_add_permission(self, request) -> bool:
        return False  # accounts are opened through the API (ledger.services.account_open)

    def get_fields(self, request, obj=None):
        # System role and shard mean something only on the system accounts.
        fields = super().get_fields(request, obj)
        if obj is not None and obj.kind != LedgerAccount.Kind.SYSTEM:
            fields = [name for name in fields if name not in ("system_role", "shard")]
        return fields

    @admin.display(description="Activity")
    def activity_links(self, obj: LedgerAccount) -> str:
        activity = reverse("admin:ledgerx_activity")
        postings = reverse("admin:ledger_posting_changelist")
        return format_html(
            '<a href="{}?q={}" id="ledgerx-account-activity">Activity (audit trail and money movements)</a> · '
            '<a href="{}?q={}">All postings</a>',
            activity, obj.number, postings, obj.number,
        )

    def timeline_term(self, obj) -> str:
        return obj.number

    def object_actions(self, request, obj) -> list[tuple[str, str]]:
        if obj.kind == LedgerAccount.Kind.SYSTEM:
            return []
        if obj.status == LedgerAccount.Status.FROZEN:
            return [("unfreeze_accounts", "Unfreeze")]
        return [("freeze_accounts", "Freeze")]

    def search_condition(self, term: str) -> Q | None:
        """An account number or its start, an account id, the owner's email or its start.

        The number prefix is a range of the unique number column's
        ``varchar_pattern_ops`` index; an owner prefix resolves at most
        ``PREFIX_USERS_MAX`` users first, then filters on the owner index.
        """
        if ACCOUNT_NUMBER.fullmatch(term):
            return Q(number=term.upper())
        if ACCOUNT_NUMBER_PREFIX.fullmatch(term):
            return Q(number__startswith=term.upper())
        account_pk = term_uuid(term)
        if account_pk is not None:
            return Q(pk=account_pk)
        condition = user_condition(term, "owner_id")
        if condition is not None:
            return condition
        prefix = term_prefix(term)
        if prefix is None:
            return None
        owners = list(User.objects.filter(email__startswith=prefix).order_by("email").values_list("pk", flat=True)[:PREFIX_USERS_MAX])
        return Q(owner_id__in=owners) if owners else NO_ROWS

    def save_model(self, request, obj, form, change):
        """The name is the only editable field: renamed under the row lock, so the cached account follows."""
        if "name" in form.changed_data:
            account_rename(account=obj, name=obj.name)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_freeze_permission(self, request) -> bool:
        return request.user.has_perm(PERM_FREEZE)

    @admin.display(description="Posted")
    def posted_display(self, obj: LedgerAccount) -> str:
        return money_display(obj.posted, obj.currency)

    @admin.display(description="Pending (holds)")
    def pending_display(self, obj: LedgerAccount) -> str:
        return money_display(obj.pending, obj.currency)

    @admin.display(description="Available")
    def available_display(self, obj: LedgerAccount) -> str:
        return money_display(obj.available, obj.currency)

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


class PostingAmounts:
    """Posting amounts as money (the columns hold signed minor units: -1250 is -12.50 USD)."""

    @admin.display(description="Amount")
    def amount_display(self, obj: Posting) -> str:
        return money_display(obj.amount, obj.currency)

    @admin.display(description="Balance after")
    def balance_after_display(self, obj: Posting) -> str:
        return money_display(obj.balance_after, obj.currency)


class PostingInline(PostingAmounts, admin.TabularInline):
    model = Posting
    fields = ("account", "amount_display", "balance_after_display", "created_at")
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
    search_help_text = "Search by entry number, or the id of the transaction it records (exact)."
    ordering = ("-id",)
    sortable_by = ("id",)
    inlines = (PostingInline,)

    def search_condition(self, term: str) -> Q | None:
        entry_pk = term_int(term)
        if entry_pk is not None:
            return Q(pk=entry_pk)
        ref_id = term_uuid(term)
        return Q(ref_id=ref_id) if ref_id is not None else None


@admin.register(Posting)
class PostingAdmin(PostingAmounts, ReadOnlyAdmin):
    list_display = ("id", "entry_link", "account", "currency", "amount_display", "balance_after_display", "created_at")
    list_filter = (CurrencyFilter,)
    search_help_text = (
        "Search by account number or id (its postings), entry number, or the id of the transaction an entry "
        "records (exact)."
    )
    list_select_related = ("account", "entry")
    raw_id_fields = ("entry", "account")
    ordering = ("-id",)
    sortable_by = ("id",)
    fields = ("id", "entry", "account", "currency", "amount_display", "balance_after_display", "created_at")
    readonly_fields = fields

    def search_condition(self, term: str) -> Q | None:
        # Before term_int: a 12-digit number is an account number (entry ids will not reach 12 digits).
        condition = account_condition(term, "account_id")
        if condition is not None:
            return condition
        entry_pk = term_int(term)
        if entry_pk is not None:
            return Q(entry_id=entry_pk)
        ref_id = term_uuid(term)
        if ref_id is None:
            return None
        return Q(entry_id__in=list(JournalEntry.objects.filter(ref_id=ref_id).values_list("pk", flat=True)))

    @admin.display(description="Entry")
    def entry_link(self, obj: Posting) -> str:
        url = reverse("admin:ledger_journalentry_change", args=[obj.entry_id])
        return format_html('<a href="{}">{}</a>', url, obj.entry_id)
