"""Activity timelines: what happened to an account, a user or a transaction, or within one request.

Design note
-----------
A timeline merges *sources*, each a queryset one index returns newest first:
audit records by target (``audit_target_idx``), by actor (``audit_actor_idx``)
or by request id (``audit_request_idx``); transactions by their source or
destination account (the two keyset indexes) or by primary key. A page is
read by keyset: every source gives at most ``limit + 1`` rows older than the
cursor, the rows are merged by their key ``(at, rank, id)`` newest first, and
the first ``limit`` form the page; the key of the last one is the next
cursor. No OFFSET and no COUNT: a deep page costs what the first one does,
and every query is an index range scan with a LIMIT.

Money rows are transactions (deposits, withdrawals, transfers, holds,
reversals) with, on an account's timeline, the signed amount and the balance
after from the account's posting. The audit records of the transactions on a
page (their creation, a hold's commit, the reversal's record with its reason)
are read by ``target_id IN (the page's ids)`` and folded into the money row:
its actor, reason and request id come from them, and an audit row of the same
transaction that a source also returned is not shown twice. A reversal is its
own money row (it moves money on the same accounts) and is folded into the
original's row too, so the original's timeline shows who reversed it and why.
"""

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html

from accounts.models import User
from approvals.models import ApprovalRequest
from audit.admin_tools import term_email, term_uuid
from audit.models import AuditAction, AuditRecord
from ledger.admin import ACCOUNT_NUMBER
from ledger.models import LedgerAccount, Posting
from ledger.money import money_display
from transactions.models import Transaction

PAGE_ROWS = 50
# A user's timeline reads the money of at most this many of their accounts (newest first).
USER_ACCOUNTS_MAX = 20
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")  # what the request-id middleware accepts

# Key ranks: at the same instant an audit record sorts before (below) the money it describes.
AUDIT, MONEY = 0, 1


@dataclass(frozen=True)
class Source:
    rank: int
    queryset: QuerySet
    at_field: str

    def page(self, cursor: "Cursor | None", limit: int) -> list:
        rows = self.queryset
        if cursor is not None:
            at = self.at_field
            if self.rank < cursor.rank:
                rows = rows.filter(**{f"{at}__lte": cursor.at})
            elif self.rank > cursor.rank:
                rows = rows.filter(**{f"{at}__lt": cursor.at})
            else:
                pk = self.queryset.model._meta.pk.to_python(cursor.id)
                rows = rows.filter(**{f"{at}__lte": cursor.at}).filter(Q(**{f"{at}__lt": cursor.at}) | Q(pk__lt=pk))
        return list(rows.order_by(f"-{self.at_field}", "-pk")[: limit + 1])


@dataclass(frozen=True)
class Cursor:
    at: datetime
    rank: int
    id: str

    def encode(self) -> str:
        raw = json.dumps([self.at.isoformat(), self.rank, self.id]).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> "Cursor | None":
        """The cursor a page's "Older" link carries, or None if it is not one."""
        try:
            at, rank, pk = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            moment = parse_datetime(at)
        except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
            return None
        if moment is None or rank not in (AUDIT, MONEY) or not isinstance(pk, str):
            return None
        return cls(moment, rank, pk)


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


@dataclass
class Timeline:
    kind: str  # "account", "user", "transaction", "request"
    title: str
    subject: object
    sources: list
    account: LedgerAccount | None = None  # the account whose signed amounts and balances money rows show


@dataclass
class Page:
    rows: list
    next_cursor: str | None


# --- Which timeline a search term names ------------------------------------------------------


def timeline_for(term: str) -> Timeline | None:
    """The timeline a term names: an account number, an email, an id (transaction, user, account) or a request id.

    Each step is one lookup by a unique index (the account's number, the
    user's email, a primary key); a term that names nothing else is taken as
    a request id (its records by ``audit_request_idx``). None when the term
    cannot be any of these.
    """
    term = term.strip()
    if not term:
        return None
    if ACCOUNT_NUMBER.fullmatch(term):
        account = LedgerAccount.objects.select_related("owner").filter(number=term.upper()).first()
        return account_timeline(account) if account else None
    email = term_email(term)
    if email is not None:
        user = User.objects.filter(email=email).first()
        return user_timeline(user) if user else None
    pk = term_uuid(term)
    if pk is not None:
        txn = Transaction.objects.filter(pk=pk).first()
        if txn is not None:
            return transaction_timeline(txn)
        user = User.objects.filter(pk=pk).first()
        if user is not None:
            return user_timeline(user)
        account = LedgerAccount.objects.select_related("owner").filter(pk=pk).first()
        if account is not None:
            return account_timeline(account)
    return request_timeline(term) if _REQUEST_ID.fullmatch(term) else None


def _audit() -> QuerySet:
    return AuditRecord.objects.select_related("actor")


def _money() -> QuerySet:
    return Transaction.objects.select_related("source_account", "destination_account", "initiated_by")


def account_timeline(account: LedgerAccount) -> Timeline:
    return Timeline(
        kind="account",
        title=f"Account {account.number} ({account.currency})",
        subject=account,
        account=account,
        sources=[
            Source(AUDIT, _audit().filter(target_id=str(account.pk)), "at"),
            Source(MONEY, _money().filter(source_account_id=account.pk), "created_at"),
            Source(MONEY, _money().filter(destination_account_id=account.pk), "created_at"),
        ],
    )


def user_timeline(user: User) -> Timeline:
    """What the user did (as actor), what was done to them, failed logins to their address, and their accounts' money."""
    accounts = list(
        LedgerAccount.objects.filter(owner=user).order_by("-created_at").values_list("pk", flat=True)[:USER_ACCOUNTS_MAX]
    )
    sources = [
        Source(AUDIT, _audit().filter(actor_id=user.pk), "at"),
        Source(AUDIT, _audit().filter(target_id=str(user.pk)), "at"),
        Source(AUDIT, _audit().filter(target_id=user.email), "at"),
    ]
    for account_pk in accounts:
        sources.append(Source(MONEY, _money().filter(source_account_id=account_pk), "created_at"))
        sources.append(Source(MONEY, _money().filter(destination_account_id=account_pk), "created_at"))
    return Timeline(kind="user", title=f"User {user.email}", subject=user, sources=sources)


def transaction_timeline(txn: Transaction) -> Timeline:
    """The transaction and its reversal (money), their records and those of approval requests about it."""
    reversal = Transaction.objects.filter(reverses_id=txn.pk).values_list("pk", flat=True).first()
    original = txn.reverses_id
    related = [pk for pk in (txn.pk, reversal, original) if pk is not None]
    approvals = list(ApprovalRequest.objects.filter(target_id__in=related).values_list("pk", flat=True)[:20])
    targets = [str(pk) for pk in [*related, *approvals]]
    return Timeline(
        kind="transaction",
        title=f"Transaction {txn.pk} ({txn.type}, {money_display(txn.amount, txn.currency)})",
        subject=txn,
        sources=[
            Source(AUDIT, _audit().filter(target_id__in=targets), "at"),
            Source(MONEY, _money().filter(pk__in=related), "created_at"),
        ],
    )


def request_timeline(request_id: str) -> Timeline:
    return Timeline(
        kind="request",
        title=f"Request {request_id}",
        subject=request_id,
        sources=[Source(AUDIT, _audit().filter(request_id=request_id).exclude(request_id=""), "at")],
    )


# --- One page ---------------------------------------------------------------------------------


def timeline_page(timeline: Timeline, *, cursor: Cursor | None = None, limit: int = PAGE_ROWS) -> Page:
    """The ``limit`` newest rows older than ``cursor``, and the cursor of the page after, if any."""
    fetched: dict[tuple, object] = {}
    for source in timeline.sources:
        for obj in source.page(cursor, limit):
            at = getattr(obj, source.at_field)
            fetched.setdefault((at, source.rank, obj.pk), obj)  # one record found by two sources is one row
    keys = sorted(fetched, reverse=True)
    page_keys = keys[:limit]
    next_cursor = None
    if len(keys) > limit:
        at, rank, pk = page_keys[-1]
        next_cursor = Cursor(at, rank, str(pk)).encode()
    objects = [fetched[key] for key in page_keys]
    return Page(rows=_rows(timeline, objects), next_cursor=next_cursor)


def _rows(timeline: Timeline, objects: list) -> list[Row]:
    transactions = [obj for obj in objects if isinstance(obj, Transaction)]
    txn_ids = {str(txn.pk) for txn in transactions}
    reversals = {
        str(rev.reverses_id): rev for rev in Transaction.objects.filter(reverses_id__in=[txn.pk for txn in transactions])
    }
    folded_ids = txn_ids | {str(rev.pk) for rev in reversals.values()}
    records_by_target: dict[str, list[AuditRecord]] = {}
    if folded_ids:
        for record in _audit().filter(target_id__in=folded_ids).order_by("at", "id"):
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
    names = _target_names(records)

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
        return "-"
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


def _money_row(txn: Transaction, timeline: Timeline, records_by_target: dict, reversals: dict, postings: dict) -> Row:
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
        row.amount = money_display(sign * txn.amount, txn.currency)
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


def _target_names(records: list[AuditRecord]) -> dict[str, str]:
    """Account numbers and user emails for the page's targets: one lookup by primary key each kind."""
    accounts = [r.target_id for r in records if r.target_type == "ledger_account" and term_uuid(r.target_id)]
    users = [r.target_id for r in records if r.target_type == "user" and term_uuid(r.target_id)]
    names = {str(pk): number for pk, number in LedgerAccount.objects.filter(pk__in=accounts).values_list("pk", "number")}
    names.update({str(pk): email for pk, email in User.objects.filter(pk__in=users).values_list("pk", "email")})
    return names


_TARGET_PAGES = {
    "transaction": "admin:transactions_transaction_change",
    "ledger_account": "admin:ledger_ledgeraccount_change",
    "user": "admin:accounts_user_change",
    "approval": "admin:approvals_approvalrequest_change",
}


def target_link(target_type: str, target_id: str, names: dict) -> str:
    page = _TARGET_PAGES.get(target_type)
    if page is None or term_uuid(target_id) is None:
        return format_html("{} {}", target_type.replace("_", " "), target_id)
    text = names.get(target_id, target_id)
    return format_html(
        '{} <a class="ledgerx-id" href="{}">{}</a>', target_type.replace("_", " "), reverse(page, args=[target_id]), text
    )


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
        format_html('record <a class="ledgerx-id" href="{}">{}</a>', reverse("admin:audit_auditrecord_change", args=[record.pk]), record.pk)
    )
    return row


def cursor_from(text: str | None) -> Cursor | None:
    return Cursor.decode(text) if text else None
