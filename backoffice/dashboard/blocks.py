"""The dashboard's blocks: each a function of the chosen range returning its template's context.

Every block reads a handful of rows through an index (system accounts only,
the pending rows' partial indexes, the ranges of ``txn_created_idx`` since the
volume rollup's last settled moment, the newest records per action on
``audit_action_idx``, the failing endpoints' partial index). To add a block: write its
function here, its template ``templates/admin/ledgerx/dashboard/<name>.html``,
and add it to ``BLOCKS``.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from accounts.models import User
from approvals.models import ApprovalRequest
from audit.models import AuditAction, AuditRecord, VerificationRun
from backoffice.dashboard.charts import bar_chart, compact
from backoffice.dashboard.volume import daily_volume
from backoffice.timeline import ACCOUNT_TARGETS, USER_TARGETS, target_link
from events.models import WebhookEndpoint
from fx.selectors import pool_positions
from ledger.models import LedgerAccount
from ledger.money import money_display
from transactions.models import Transaction

RANGES = (7, 30, 90)  # days the volume charts can show
LIST_ROWS = 10
# What staff did in the back office (the dashboard's "recent back-office actions").
BACK_OFFICE_ACTIONS = (
    AuditAction.ACCOUNT_FROZEN, AuditAction.ACCOUNT_UNFROZEN, AuditAction.USER_SUSPENDED, AuditAction.USER_REINSTATED,
    AuditAction.TRANSACTION_REVERSED, AuditAction.APPROVAL_REQUESTED, AuditAction.APPROVAL_APPROVED,
    AuditAction.APPROVAL_REJECTED, AuditAction.ADMIN_CHANGE,
)


@dataclass(frozen=True)
class Block:
    name: str  # the template is admin/ledgerx/dashboard/<name>.html
    compute: Callable[[int], dict]

    @property
    def template(self) -> str:
        return f"admin/ledgerx/dashboard/{self.name}.html"


def verifications(days: int) -> dict:
    runs = [
        (VerificationRun.Kind(kind).label, kind, VerificationRun.objects.filter(kind=kind).order_by("-at", "-id").first())
        for kind in VerificationRun.Kind.values
    ]
    return {"runs": [{"label": label, "kind": kind, "run": run} for label, kind, run in runs]}


def totals(days: int) -> dict:
    """Money per currency from the system accounts alone (a few shard rows per currency).

    Every entry sums to zero per currency, so customers hold exactly what came
    in through the funding accounts (which go negative as deposits arrive) less
    what left through the payouts accounts and less what the FX pools hold of
    the currency (conversions): no sum over the customer accounts.
    """
    system: dict = {code: {"funding": 0, "payouts": 0} for code in settings.CURRENCIES}
    for row in (
        LedgerAccount.objects.filter(kind=LedgerAccount.Kind.SYSTEM)
        .values("currency", "system_role").annotate(posted=Sum("posted")).order_by()
    ):
        system.setdefault(row["currency"], {"funding": 0, "payouts": 0})[row["system_role"]] = row["posted"] or 0
    holds = {
        row["currency"]: row
        for row in Transaction.objects.filter(status=Transaction.Status.PENDING).values("currency")
        .annotate(total=Sum("amount"), count=Count("id")).order_by()
    }
    rows = []
    for code in sorted(settings.CURRENCIES):
        deposits, withdrawals = -system.get(code, {}).get("funding", 0), system.get(code, {}).get("payouts", 0)
        converted_out = system.get(code, {}).get(LedgerAccount.SystemRole.FX_POOL, 0)
        hold = holds.get(code, {})
        rows.append({
            "currency": code,
            "deposits": money_display(deposits, code),
            "withdrawals": money_display(withdrawals, code),
            "customer": money_display(deposits - withdrawals - converted_out, code),
            "holds": money_display(hold.get("total") or 0, code),
            "holds_count": hold.get("count", 0),
        })
    return {"rows": rows}


def volume(days: int) -> dict:
    """Money moved and transactions made per UTC day over ``days`` (``volume.daily_volume``: a settled rollup).

    Deposits, withdrawals and transfers made in the range that are committed
    (or reversed since): reversals are corrections, not volume; open and voided
    holds moved nothing.
    """
    today = timezone.now().date()
    day_list = [today - timedelta(days=offset) for offset in range(days - 1, -1, -1)]
    per_currency: dict = {}
    counts: dict = {}
    for (currency, day), (total, count) in daily_volume(days, kept_days=max(RANGES)).items():
        per_currency.setdefault(currency, {})[day] = total
        counts[day] = counts.get(day, 0) + count
    charts = [
        {
            "currency": code,
            "total": money_display(sum(per_currency.get(code, {}).values()), code),
            "svg": bar_chart(
                chart_id=f"ledgerx-volume-{code}", title=f"{code} moved per day, last {days} days", days=day_list,
                values=per_currency.get(code, {}), y_label=code, fmt=lambda amount, code=code: money_display(amount, code),
                tick_fmt=lambda amount, code=code: compact(amount / 10 ** settings.CURRENCIES[code]),
                minimum_step=10 ** settings.CURRENCIES[code],
            ) if per_currency.get(code) else "",
        }
        for code in sorted(settings.CURRENCIES)
    ]
    return {
        "days": days,
        "ranges": RANGES,
        "count": sum(counts.values()),
        "count_svg": bar_chart(
            chart_id="ledgerx-count-chart", title=f"Transactions per day, last {days} days", days=day_list,
            values=counts, y_label="transactions", fmt=lambda value: f"{value:,}", tick_fmt=compact,
        ),
        "charts": charts,
    }


def approvals(days: int) -> dict:
    pending = ApprovalRequest.objects.filter(status=ApprovalRequest.Status.PENDING).select_related("requested_by")
    return {
        "count": pending.count(),
        "rows": list(pending.order_by("-created_at", "-id")[:LIST_ROWS]),
        "queue_url": reverse("admin:approvals_approvalrequest_changelist") + "?status=pending",
    }


def webhooks(days: int) -> dict:
    """Endpoints failing now (a failing streak) or given up on, longest-failing first.

    One range of ``events_endpoint_failing_idx``, partial on exactly this
    condition and in this order, so the healthy endpoints are never read.
    """
    failing = (
        WebhookEndpoint.objects.filter(Q(failing_since__isnull=False) | Q(status=WebhookEndpoint.Status.DISABLED))
        .select_related("owner").order_by("failing_since", "-created_at")
    )
    return {"rows": list(failing[:LIST_ROWS])}


def recent_actions(days: int) -> dict:
    """The newest back-office actions: the newest few per action (``audit_action_idx``), merged."""
    records = []
    for action in BACK_OFFICE_ACTIONS:
        records.extend(AuditRecord.objects.filter(action=action).select_related("actor").order_by("-at", "-id")[:LIST_ROWS])
    records = sorted(records, key=lambda record: (record.at, record.pk), reverse=True)[:LIST_ROWS * 2]
    accounts = {
        str(pk): (number, status) for pk, number, status in LedgerAccount.objects.filter(
            pk__in=[r.target_id for r in records if r.target_type in ACCOUNT_TARGETS]
        ).values_list("pk", "number", "status")
    }
    emails = dict(
        (str(pk), email) for pk, email in User.objects.filter(
            pk__in=[r.target_id for r in records if r.target_type in USER_TARGETS]
        ).values_list("pk", "email")
    )
    names = {**{pk: number for pk, (number, _status) in accounts.items()}, **emails}
    rows = []
    for record in records:
        data = record.data if isinstance(record.data, dict) else {}
        now = accounts.get(record.target_id, (None, None))[1]
        rows.append({
            "at": record.at,
            "action": AuditAction(record.action).label if record.action in AuditAction.values else record.action,
            "target": target_link(record.target_type, record.target_id, names),
            "now": now,
            "actor": format_html('<a href="{}">{}</a>', reverse("admin:accounts_user_change", args=[record.actor_id]), record.actor.email)
            if record.actor else "system",
            "reason": data.get("reason", ""),
        })
    return {"rows": rows}


BLOCKS = [
    Block("verifications", verifications),
    Block("totals", totals),
    Block("fx_pools", lambda days: {"rows": pool_positions()}),
    Block("volume", volume),
    Block("approvals", approvals),
    Block("webhooks", webhooks),
    Block("recent_actions", recent_actions),
]
