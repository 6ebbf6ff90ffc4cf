"""Back office for transactions: read-only, postings shown on the page, reversal with a reason.

The reverse action calls ``transactions.services.transaction_reverse`` -- the
same service as ``POST admin/transactions/{id}/reverse`` -- so the same checks
(committed only, not twice, no customer below zero) and audit record apply.
"""

import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib import admin
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from approvals.admin import approval_or_result
from approvals.services import transaction_reverse_requested
from audit.admin_tools import CurrencyFilter, ObjectActionsAdmin, ReadOnlyAdmin, RecentFilter, reason_action, term_uuid
from audit.compliance import PERM_REVERSE
from audit.models import AuditAction, AuditRecord, Dashboard, VerificationRun
from ledger.admin import account_condition
from ledger.models import LedgerAccount, Posting
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
        "id", "type", "status", "amount_display", "currency", "source_account", "destination_account",
        "description", "metadata", "initiated_by", "created_at", "committed_at", "expires_at",
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


# --- Dashboard ---------------------------------------------------------------------------
# Lives here because it reads every layer (accounts, ledger, transactions, audit)
# and ``transactions`` is the top of the dependency order.

DASHBOARD_DAYS = 30
DASHBOARD_CACHE_SECONDS = 60
_BAR_AREA = (720, 160)  # chart width, height in px


def _volume_chart(days: list, per_day: dict, currency: str) -> str:
    """An inline SVG bar chart (no CDN, no JavaScript) of daily committed volume in ``currency``."""
    width, height = _BAR_AREA
    peak = max([per_day.get(day, 0) for day in days] + [1])
    slot = width / len(days)
    bars = []
    for index, day in enumerate(days):
        amount = per_day.get(day, 0)
        bar = round(height * amount / peak, 1)
        label = f"{day.isoformat()}: {money_display(amount, currency)}"
        bars.append(
            format_html(
                '<rect x="{}" y="{}" width="{}" height="{}" class="bar"><title>{}</title></rect>',
                round(index * slot + 1, 1), round(height - bar, 1), round(slot - 2, 1), bar, label,
            )
        )
    return format_html(
        '<svg class="ledgerx-chart" role="img" aria-label="Daily volume {}" viewBox="0 0 {} {}" width="{}" height="{}">'
        '<line x1="0" y1="{}" x2="{}" y2="{}" class="axis"/>{}</svg>',
        currency, width, height + 18, width, height + 18, height, width, height,
        format_html_join("", "{}", ((bar,) for bar in bars)),
    ) + format_html(
        '<div class="ledgerx-chart-axis"><span>{}</span><span>peak {}</span><span>{}</span></div>',
        days[0].isoformat(), money_display(peak if peak > 1 else 0, currency), days[-1].isoformat(),
    )


def dashboard_data() -> dict:
    """Everything the dashboard shows, in a handful of aggregate queries (cached for a minute)."""
    cached = cache.get("ledgerx:admin:dashboard")
    if cached is not None:
        return cached
    totals = {code: {"customer": 0, "funding": 0, "payouts": 0, "holds": 0, "holds_count": 0} for code in settings.CURRENCIES}
    for row in LedgerAccount.objects.values("currency", "kind", "system_role").annotate(posted=Sum("posted")):
        bucket = totals.setdefault(row["currency"], {"customer": 0, "funding": 0, "payouts": 0, "holds": 0, "holds_count": 0})
        key = "customer" if row["kind"] == LedgerAccount.Kind.CUSTOMER else row["system_role"]
        bucket[key] = bucket.get(key, 0) + (row["posted"] or 0)
    for row in (
        Transaction.objects.filter(status=Transaction.Status.PENDING)
        .values("currency")
        .annotate(total=Sum("amount"), count=Count("id"))
    ):
        totals[row["currency"]]["holds"] = row["total"] or 0
        totals[row["currency"]]["holds_count"] = row["count"]

    today = timezone.now().date()
    days = [today - timedelta(days=offset) for offset in range(DASHBOARD_DAYS - 1, -1, -1)]
    since = timezone.now() - timedelta(days=DASHBOARD_DAYS)
    volume: dict = {}
    counts: dict = {}
    for row in (
        Transaction.objects.filter(
            committed_at__gte=since,
            type__in=[Transaction.Type.DEPOSIT, Transaction.Type.WITHDRAWAL, Transaction.Type.TRANSFER],
        )
        .filter(Q(status=Transaction.Status.COMMITTED) | Q(status=Transaction.Status.REVERSED))
        .annotate(day=TruncDate("committed_at"))
        .values("currency", "day")
        .annotate(total=Sum("amount"), count=Count("id"))
    ):
        volume.setdefault(row["currency"], {})[row["day"]] = row["total"]
        counts[row["day"]] = counts.get(row["day"], 0) + row["count"]

    recent = {}
    for key, action in (
        ("freezes", AuditAction.ACCOUNT_FROZEN),
        ("suspensions", AuditAction.USER_SUSPENDED),
        ("reversals", AuditAction.TRANSACTION_REVERSED),
    ):
        recent[key] = [
            {"at": record.at, "actor": record.actor.email if record.actor else "system", "target": record.target_id,
             "reason": (record.data or {}).get("reason", "")}
            for record in AuditRecord.objects.filter(action=action).select_related("actor").order_by("-at")[:10]
        ]
    verifications = {
        kind: VerificationRun.objects.filter(kind=kind).order_by("-at", "-id").first()
        for kind in VerificationRun.Kind.values
    }
    data = {
        "totals": [
            {
                "currency": code,
                "customer": money_display(values["customer"], code),
                "funding": money_display(values["funding"], code),
                "payouts": money_display(values["payouts"], code),
                "holds": money_display(values["holds"], code),
                "holds_count": values["holds_count"],
            }
            for code, values in sorted(totals.items())
            if code in settings.CURRENCIES
        ],
        "charts": [
            {"currency": code, "svg": _volume_chart(days, volume.get(code, {}), code),
             "total": money_display(sum(volume.get(code, {}).values()), code)}
            for code in sorted(settings.CURRENCIES)
        ],
        "transactions_30d": sum(counts.values()),
        "batches_30d": Batch.objects.filter(created_at__gte=since).count(),
        "recent": recent,
        "verifications": [
            {"kind": VerificationRun.Kind(kind).label, "run": run} for kind, run in verifications.items()
        ],
        "generated_at": timezone.now(),
    }
    cache.set("ledgerx:admin:dashboard", data, DASHBOARD_CACHE_SECONDS)
    return data


class DashboardAdmin(admin.ModelAdmin):
    """The back-office dashboard, listed in the admin index under "Audit trail" as "Dashboard"."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": "Back-office dashboard",
            "subtitle": None,
            "opts": self.model._meta,
            **dashboard_data(),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/ledgerx/dashboard.html", context)


admin.site.register(Dashboard, DashboardAdmin)
