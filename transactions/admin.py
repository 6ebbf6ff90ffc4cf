"""Back office for transactions: read-only, postings shown on the page, reversal with a reason.

The reverse action calls ``transactions.services.transaction_reverse`` -- the
same service as ``POST admin/transactions/{id}/reverse`` -- so the same checks
(committed only, not twice, no customer below zero) and audit record apply.
"""

import uuid

from django.contrib import admin
from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from approvals.admin import approval_or_result
from approvals.services import transaction_reverse_requested
from audit.admin_tools import CurrencyFilter, ObjectActionsAdmin, ReadOnlyAdmin, RecentFilter, reason_action, term_uuid
from audit.compliance import PERM_REVERSE
from fx.rounding import rate_text
from ledger.admin import account_condition
from ledger.models import Posting
from ledger.money import money_display
from transactions.models import Batch, Transaction


class CreatedFilter(RecentFilter):
    title = "created"
    field_name = "created_at"  # txn_created_idx


@admin.register(Batch)
class BatchAdmin(ReadOnlyAdmin):
    """Batches as their owner sent them: counts and status, and each item's outcome with its transaction."""

    list_display = ("id", "owner", "status", "atomic", "count", "succeeded", "failed", "created_at")
    list_filter = ("status", "atomic")
    search_help_text = "Search by batch id or the owner's id (exact)."
    list_select_related = ("owner",)
    ordering = ("-created_at", "-id")
    sortable_by = ("created_at",)
    fields = ("id", "owner", "status", "atomic", "count", "succeeded", "failed", "created_at", "items_table")
    readonly_fields = fields

    def search_condition(self, term: str) -> Q | None:
        pk = term_uuid(term)
        return Q(pk=pk) | Q(owner_id=pk) if pk is not None else None

    @admin.display(description="Items")
    def items_table(self, obj: Batch) -> str:
        transactions = {txn.pk: txn for txn in obj.transactions.select_related("source_account", "destination_account")}
        rows = []
        for result in obj.results:
            txn = transactions.get(uuid.UUID(result["transaction"])) if result["transaction"] else None
            if txn is not None:
                url = reverse("admin:transactions_transaction_change", args=[txn.pk])
                what = format_html(
                    '<a href="{}">{} {} {}</a>', url, txn.type, money_display(txn.amount, txn.currency), txn.status
                )
            else:
                what = format_html("{}: {}", result["error"]["code"], result["error"]["message"])
            rows.append((result["index"], result["status"], what))
        return format_html(
            "<table><tr><th>#</th><th>Outcome</th><th>Transaction or refusal</th></tr>{}</table>",
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", rows),
        )


@admin.register(Transaction)
class TransactionAdmin(ObjectActionsAdmin, ReadOnlyAdmin):
    list_display = ("id", "type", "status", "amount_display", "source_account", "destination_account", "created_at")
    list_filter = (CreatedFilter, "type", "status", CurrencyFilter)
    search_help_text = "Search by transaction id, or by account number or id: the transactions in and out of it (exact)."
    list_select_related = ("source_account", "destination_account")
    raw_id_fields = ("source_account", "destination_account", "reverses", "initiated_by", "entry", "batch")
    ordering = ("-created_at", "-id")  # txn_created_idx
    sortable_by = ("created_at",)
    fields = (
        "id", "type", "status", "amount_display", "currency", "conversion_display", "source_account",
        "destination_account", "description", "metadata", "initiated_by", "created_at", "committed_at", "expires_at",
        "reverses", "reversed_by_link", "batch", "entry", "postings_table",
    )
    readonly_fields = fields
    actions = ("reverse_transactions",)

    def timeline_term(self, obj) -> str:
        return str(obj.pk)

    def object_actions(self, request, obj) -> list[tuple[str, str]]:
        if obj.status == Transaction.Status.COMMITTED and obj.type != Transaction.Type.REVERSAL:
            return [("reverse_transactions", "Reverse")]
        return []

    def has_reverse_permission(self, request) -> bool:
        return request.user.has_perm(PERM_REVERSE)

    @admin.display(description="Conversion")
    def conversion_display(self, obj: Transaction) -> str:
        """Both legs and the recorded rate of a conversion (or its reversal); empty otherwise."""
        if obj.source_amount is None:
            return "-"
        text = (
            f"{money_display(obj.source_amount, obj.currency)} -> "
            f"{money_display(obj.destination_amount, obj.destination_currency)} at {rate_text(obj.rate)}"
        )
        return f"{text} (quote {obj.quote_id})" if obj.quote_id else text

    def search_condition(self, term: str) -> Q | None:
        # Each side has its own (account, created_at, id) index: the OR is two index scans.
        condition = account_condition(term, "source_account_id", "destination_account_id")
        if condition is not None:
            return condition
        transaction_pk = term_uuid(term)
        return Q(pk=transaction_pk) if transaction_pk is not None else None

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("source_account", "destination_account", "initiated_by")

    @admin.display(description="Amount")
    def amount_display(self, obj: Transaction) -> str:
        return money_display(obj.amount, obj.currency)

    @admin.display(description="Reversed by")
    def reversed_by_link(self, obj: Transaction) -> str:
        reversal = Transaction.objects.filter(reverses=obj).only("id").first()
        if reversal is None:
            return "-"
        url = reverse("admin:transactions_transaction_change", args=[reversal.pk])
        return format_html('<a href="{}">{}</a>', url, reversal.pk)

    @admin.display(description="Postings")
    def postings_table(self, obj: Transaction) -> str:
        """The journal entry's postings (a pending hold has none yet)."""
        if obj.entry_id is None:
            return "No postings: the transaction has no journal entry (an open or voided hold)."
        postings = Posting.objects.filter(entry_id=obj.entry_id).select_related("account").order_by("id")
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((posting.account, money_display(posting.amount, posting.currency), money_display(posting.balance_after, posting.currency))
             for posting in postings),
        )
        return format_html(
            '<table class="ledgerx-postings"><thead><tr><th>Account</th><th>Amount</th><th>Balance after</th></tr>'
            "</thead><tbody>{}</tbody></table>",
            rows,
        )

    @admin.action(description="Reverse selected transactions", permissions=["reverse"])
    def reverse_transactions(self, request, queryset):
        return reason_action(
            self, request, queryset.select_related("entry"),
            title="Reverse transactions",
            verb="Reverse",
            service=lambda *, actor, obj, reason: transaction_reverse_requested(actor=actor, transaction=obj, reason=reason),
            explanation="Each reversal is a new balanced entry that undoes the original; the original becomes "
            "reversed. Reversals, uncommitted and already reversed transactions are refused, and so is a "
            "reversal that would take a customer account below zero. A reversal at or above the four-eyes "
            "amount of its currency waits in Approvals for a second admin.",
            describe=approval_or_result,
        )
