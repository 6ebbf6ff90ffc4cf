"""The rows of a timeline page: a money row per transaction (its records folded in), an audit row per record.

Everything a page shows beyond its rows is read here in a few lookups by
index for the whole page (never per row): the page's transactions' records
(``target_id IN``), their reversals (unique ``reverses``), the account's
postings of their entries, the accounts and users the records name.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.urls import reverse
from django.utils.html import format_html

from accounts.models import User
from audit.admin_tools import term_uuid
from audit.models import AuditAction, AuditRecord
from ledger.models import LedgerAccount, Posting
from ledger.money import money_display
from transactions.models import Transaction

# Key ranks: at the same instant an audit record sorts before (below) the money it describes.
AUDIT, MONEY = 0, 1


@dataclass
class Row:
    at: datetime
    rank: int
    pk: object
    kind: str  # "audit" or "money"
    what: str
    subject: str = ""  # HTML: links to what the row is about
    amount: str = ""
    balance_after: str = ""
    status: str = ""
    actor: str = "-"  # HTML
    reason: str = ""
    request_id: str = ""
    details: list = field(default_factory=list)  # HTML lines
    target_id: str = ""

    @property
    def key(self) -> tuple:
        return (self.at, self.rank, self.pk)


def page_rows(timeline, objects: list) -> list[Row]:
    """The rows of ``objects`` (a page's transactions and audit records, newest first) on ``timeline``."""
    transactions = [obj for obj in objects if isinstance(obj, Transaction)]
    txn_ids = {str(txn.pk) for txn in transactions}
    reversals = {
        str(rev.reverses_id): rev for rev in Transaction.objects.filter(reverses_id__in=[txn.pk for txn in transactions])
    }
    folded_ids = txn_ids | {str(rev.pk) for rev in reversals.values()}
    records_by_target: dict[str, list[AuditRecord]] = {}
    if folded_ids:
        for record in AuditRecord.objects.select_related("actor").filter(target_id__in=folded_ids).order_by("at", "id"):
            records_by_target.setdefault(record.target_id, []).append(record)
    postings = {}
    if timeline.account is not None:
        entries = [txn.entry_id for txn in transactions if txn.entry_id is not None]
        # By the entry's index only (two or three postings per entry): a condition on the
        # account too could make the planner walk the account's whole posting history instead.
        for posting in Posting.objects.filter(entry_id__in=entries).order_by():
            if posting.account_id == timeline.account.pk:
                postings[posting.entry_id] = posting
    records = [obj for obj in objects if isinstance(obj, AuditRecord)]
    names = target_names(records)

    rows = []
    for obj in objects:
        if isinstance(obj, Transaction):
            rows.append(_money_row(obj, timeline, records_by_target, reversals, postings))
        elif obj.target_id in txn_ids:
            continue  # shown inside its transaction's money row
        else:
            rows.append(_audit_row(obj, names))
    return rows


def _user_link(user) -> str:
    if user is None:
        return "system"
    return format_html('<a href="{}">{}</a>', reverse("admin:accounts_user_change", args=[user.pk]), user.email)


def _account_link(account) -> str:
    if account is None:
        return "outside"  # the money came from or went to the outside world (the system accounts)
    return format_html(
        '<a href="{}">{}</a>', reverse("admin:ledger_ledgeraccount_change", args=[account.pk]), account.number
    )


def _txn_link(pk) -> str:
    return format_html(
        '<a class="ledgerx-id" href="{}">{}</a>', reverse("admin:transactions_transaction_change", args=[pk]), pk
    )


def request_link(request_id: str) -> str:
    if not request_id:
        return "-"
    return format_html(
        '<a class="ledgerx-id" href="{}?q={}">{}</a>', reverse("admin:ledgerx_activity"), request_id, request_id
    )


def _label(action: str) -> str:
    try:
        return AuditAction(action).label
    except ValueError:
        return action


def _reason(record: AuditRecord) -> str:
    data = record.data if isinstance(record.data, dict) else {}
    return str(data.get("reason") or "")


def _money_row(txn: Transaction, timeline, records_by_target: dict, reversals: dict, postings: dict) -> Row:
    own = records_by_target.get(str(txn.pk), [])
    reversal = reversals.get(str(txn.pk))
    created = own[0] if own else None
    what = "Hold" if txn.expires_at is not None else txn.get_type_display()
    row = Row(
        at=txn.created_at,
        rank=MONEY,
        pk=txn.pk,
        kind="money",
        what=what,
        status=txn.status,
        actor=_user_link(created.actor if created else txn.initiated_by),
        request_id=created.request_id if created else "",
        target_id=str(txn.pk),
    )
    sides = format_html("{} → {}", _account_link(txn.source_account), _account_link(txn.destination_account))
    row.subject = format_html("{}<br>{}", _txn_link(txn.pk), sides)
    account = timeline.account
    if account is not None:
        sign = -1 if txn.source_account_id == account.pk else 1
        row.amount = ("+" if sign > 0 else "") + money_display(sign * txn.amount, txn.currency)
        posting = postings.get(txn.entry_id)
        row.balance_after = money_display(posting.balance_after, posting.currency) if posting else ""
    else:
        row.amount = money_display(txn.amount, txn.currency)
    reasons = [_reason(record) for record in own if _reason(record)]
    if txn.reverses_id is not None:
        row.details.append(format_html("reverses {}", _txn_link(txn.reverses_id)))
    for record in own[1:]:
        row.details.append(format_html("{} {} by {}", record.at.strftime("%Y-%m-%d %H:%M:%S"), _label(record.action), _user_link(record.actor)))
    if reversal is not None:
        rev_records = records_by_target.get(str(reversal.pk), [])
        by = rev_records[0] if rev_records else None
        line = format_html(
            "reversed by {} at {} by {}", _txn_link(reversal.pk), reversal.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            _user_link(by.actor if by else reversal.initiated_by),
        )
        row.details.append(line)
        if by is not None and _reason(by):
            reasons.append(f"reversal: {_reason(by)}")
    row.reason = "; ".join(reasons) or txn.description
    return row


def target_names(records: list[AuditRecord]) -> dict[str, str]:
    """Account numbers and user emails for the page's targets: one lookup by primary key each kind."""
    accounts = [r.target_id for r in records if r.target_type in ACCOUNT_TARGETS and term_uuid(r.target_id)]
    users = [r.target_id for r in records if r.target_type in USER_TARGETS and term_uuid(r.target_id)]
    names = {str(pk): number for pk, number in LedgerAccount.objects.filter(pk__in=accounts).values_list("pk", "number")}
    names.update({str(pk): email for pk, email in User.objects.filter(pk__in=users).values_list("pk", "email")})
    return names


# Services name targets "ledger_account", "user" ...; admin edits (``admin.change``) by model label.
ACCOUNT_TARGETS = ("ledger_account", "ledger.ledgeraccount")
USER_TARGETS = ("user", "accounts.user")
_TARGET_PAGES = {
    "transaction": "admin:transactions_transaction_change",
    "transactions.transaction": "admin:transactions_transaction_change",
    **{name: "admin:ledger_ledgeraccount_change" for name in ACCOUNT_TARGETS},
    **{name: "admin:accounts_user_change" for name in USER_TARGETS},
    "approval": "admin:approvals_approvalrequest_change",
}


def target_link(target_type: str, target_id: str, names: dict) -> str:
    page = _TARGET_PAGES.get(target_type)
    kind = {**dict.fromkeys(ACCOUNT_TARGETS, "account"), **dict.fromkeys(USER_TARGETS, "user")}.get(target_type, target_type.replace("_", " "))
    if page is None or term_uuid(target_id) is None:
        return format_html("{} {}", kind, target_id)
    if target_id in names:  # an account number or an email: never broken across lines
        return format_html('{} <a href="{}">{}</a>', kind, reverse(page, args=[target_id]), names[target_id])
    return format_html('{} <a class="ledgerx-id" href="{}">{}</a>', kind, reverse(page, args=[target_id]), target_id)


def _audit_row(record: AuditRecord, names: dict) -> Row:
    data = record.data if isinstance(record.data, dict) else {}
    row = Row(
        at=record.at,
        rank=AUDIT,
        pk=record.pk,
        kind="audit",
        what=_label(record.action),
        subject=target_link(record.target_type, record.target_id, names),
        actor=_user_link(record.actor),
        reason=_reason(record),
        request_id=record.request_id,
        target_id=record.target_id,
    )
    if record.action == AuditAction.ADMIN_CHANGE:
        for name in data.get("changed", []):
            row.details.append(format_html("{}: {} → {}", name, data.get("old", {}).get(name), data.get("new", {}).get(name)))
    if data.get("reverses"):
        row.details.append(format_html("reverses {}", _txn_link(data["reverses"])))
    if record.ip:
        row.details.append(format_html("from {}", record.ip))
    row.details.append(
        format_html(
            '<a href="{}" title="audit record {}">record {}…</a>',
            reverse("admin:audit_auditrecord_change", args=[record.pk]), record.pk, str(record.pk)[:8],
        )
    )
    return row
