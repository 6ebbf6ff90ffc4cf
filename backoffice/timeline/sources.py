"""Which timeline a term names, its sources, and one page of it by keyset (see the package's design note)."""

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import datetime

from django.db import connections
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import User
from approvals.models import ApprovalRequest
from audit.admin_tools import term_email, term_uuid
from audit.models import AuditRecord
from backoffice.timeline.rows import AUDIT, MONEY, page_rows
from ledger.admin import ACCOUNT_NUMBER
from ledger.models import LedgerAccount
from ledger.money import money_display
from transactions.models import Transaction

PAGE_ROWS = 50
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")  # what the request-id middleware accepts


@dataclass(frozen=True)
class Source:
    """One index-ordered stream of a timeline: ``queryset`` newest first by ``(at_field, pk)``.

    Rows older than a cursor ``(at, rank, id)`` in the merged order: at the
    cursor's instant, a source of a lower rank still has all its rows to give,
    one of a higher rank none, one of the same rank those below the id. Each
    condition keeps ``at_field <= cursor.at`` as the index range.
    """

    rank: int
    queryset: QuerySet
    at_field: str

    def page(self, cursor: "Cursor | None", limit: int) -> list:
        """At most ``limit + 1`` rows older than ``cursor``. Raises ValidationError for a cursor id of the wrong shape."""
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


# The newest transactions on either side of any of the owner's accounts, as ids: each account side's
# newest (its keyset index, index-only), merged. ``{older}`` is the cursor's condition or nothing.
_OWNER_MONEY_SQL = """SELECT k.id FROM "ledger_ledgeraccount" a
CROSS JOIN LATERAL (
    (SELECT t.id, t.created_at FROM "transactions_transaction" t
      WHERE t.source_account_id = a.id {older} ORDER BY t.created_at DESC, t.id DESC LIMIT %(n)s)
    UNION ALL
    (SELECT t.id, t.created_at FROM "transactions_transaction" t
      WHERE t.destination_account_id = a.id {older} ORDER BY t.created_at DESC, t.id DESC LIMIT %(n)s)
) k
WHERE a.owner_id = %(owner)s
GROUP BY k.id, k.created_at
ORDER BY k.created_at DESC, k.id DESC
LIMIT %(n)s
"""


@dataclass(frozen=True)
class OwnerMoneySource:
    """Transactions in or out of any account of one owner, however many accounts: a ``Source`` of rank MONEY.

    On PostgreSQL one statement: for each of the owner's accounts
    (``ledger_account_owner_idx``) the newest rows older than the cursor on each
    side's keyset index, at most ``limit + 1`` each, merged and cut to
    ``limit + 1`` (a transfer between two of the owner's accounts counted once).
    Every row of the owner's newest ``limit + 1`` is among its own side's
    newest ``limit + 1``, so the page is exact. SQLite (one file, no LATERAL)
    asks the same of the two sides' conditions ORed.
    """

    owner_id: object
    rank: int = MONEY
    at_field: str = "created_at"

    def page(self, cursor: "Cursor | None", limit: int) -> list:
        """At most ``limit + 1`` rows older than ``cursor`` (``Source.page``'s rules and errors)."""
        older, params = "", {"owner": self.owner_id, "n": limit + 1}
        if cursor is not None:
            params["at"] = cursor.at
            if self.rank > cursor.rank:
                older = "AND t.created_at < %(at)s"
            else:  # MONEY is the highest rank: the same rank, so rows before the cursor's id at its instant
                params["pk"] = Transaction._meta.pk.to_python(cursor.id)
                older = "AND t.created_at <= %(at)s AND (t.created_at < %(at)s OR t.id < %(pk)s)"
        connection = connections[_money().db]
        if connection.vendor != "postgresql":
            sides = Q(source_account__owner_id=self.owner_id) | Q(destination_account__owner_id=self.owner_id)
            return Source(self.rank, _money().filter(sides), self.at_field).page(cursor, limit)
        with connection.cursor() as sql:
            sql.execute(_OWNER_MONEY_SQL.format(older=older), params)
            ids = [row[0] for row in sql.fetchall()]
        return list(_money().filter(pk__in=ids).order_by("-created_at", "-pk")) if ids else []


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
        if moment is None or timezone.is_naive(moment) or rank not in (AUDIT, MONEY) or not isinstance(pk, str):
            return None
        return cls(moment, rank, pk)


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
    if _REQUEST_ID.fullmatch(term) and AuditRecord.objects.filter(request_id=term).exclude(request_id="").exists():
        return request_timeline(term)
    return None


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
    """What the user did (as actor), what was done to them, failed logins to their address, and the money of all their accounts."""
    sources = [
        Source(AUDIT, _audit().filter(actor_id=user.pk), "at"),
        Source(AUDIT, _audit().filter(target_id=str(user.pk)), "at"),
        Source(AUDIT, _audit().filter(target_id=user.email), "at"),
        OwnerMoneySource(user.pk),
    ]
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
    return Page(rows=page_rows(timeline, objects), next_cursor=next_cursor)
