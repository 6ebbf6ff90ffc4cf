"""What the account and user pages show beyond their own fields: holds, the statement, accounts, money, sessions.

Here rather than in ``ledger.admin`` / ``accounts.admin`` because the panels
read the layers above those apps (a hold is a transaction; a user's money is
in the ledger); ``backoffice.admin`` re-registers the two admins with them.
Every panel is one or a few index ranges with a LIMIT: the statement pages by
keyset on ``ledger_posting_account_idx`` (``?statement_before=<posting id>``),
never OFFSET.
"""

from urllib.parse import quote

from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from accounts.admin import UserAdmin
from backoffice.timeline import OwnerMoneySource, Timeline, request_link, timeline_page, transaction_timeline
from ledger.admin import LedgerAccountAdmin
from ledger.models import LedgerAccount, Posting
from ledger.money import money_display
from transactions.admin import TransactionAdmin
from transactions.models import Transaction

STATEMENT_ROWS = 20
HOLDS_ROWS = 20
USER_ACCOUNTS_ROWS = 50
USER_TRANSACTIONS_ROWS = 20
SESSIONS_ROWS = 10
STATEMENT_PARAM = "statement_before"


def _when(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def _txn_link(pk, text=None) -> str:
    return format_html('<a class="ledgerx-id" href="{}">{}</a>', reverse("admin:transactions_transaction_change", args=[pk]), text or pk)


def _account_link(account) -> str:
    if account is None:
        return "-"
    return format_html('<a href="{}">{}</a>', reverse("admin:ledger_ledgeraccount_change", args=[account.pk]), account.number)


def _table(table_id: str, headers: list[str], rows: list[tuple], empty: str) -> str:
    if not rows:
        return format_html('<p id="{}">{}</p>', table_id, empty)
    head = format_html_join("", "<th>{}</th>", ((header,) for header in headers))
    cells = format_html_join(
        "", "<tr>{}</tr>", ((format_html_join("", "<td>{}</td>", ((cell,) for cell in row)),) for row in rows)
    )
    return format_html('<table id="{}"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>', table_id, head, cells)


def account_holds_panel(account: LedgerAccount) -> str:
    """Open holds reserving this account's money, soonest to expire first (``txn_account_holds_idx``)."""
    if account.pending == 0:  # no open hold reserves anything: nothing to read
        return _table("ledgerx-holds", [], [], "No open holds.")
    holds = (
        Transaction.objects.filter(source_account_id=account.pk, status=Transaction.Status.PENDING)
        .select_related("destination_account")
        .order_by("expires_at")[:HOLDS_ROWS]
    )
    rows = [
        (_txn_link(hold.pk), money_display(hold.amount, hold.currency), _account_link(hold.destination_account),
         _when(hold.created_at), _when(hold.expires_at))
        for hold in holds
    ]
    return _table("ledgerx-holds", ["Hold", "Amount", "To", "Opened (UTC)", "Expires (UTC)"], rows, "No open holds.")


def account_statement_panel(account: LedgerAccount, before: str | None, page_url: str) -> str:
    """Postings newest first with the balance after each; "Older" continues below the last one shown."""
    postings = Posting.objects.filter(account_id=account.pk).select_related("entry").order_by("-id")
    before_id = int(before) if before and before.isdigit() and len(before) <= 18 else None
    if before_id is not None:
        postings = postings.filter(id__lt=before_id)
    page = list(postings[: STATEMENT_ROWS + 1])
    more, page = len(page) > STATEMENT_ROWS, page[:STATEMENT_ROWS]
    rows = [
        (
            _when(posting.created_at),
            format_html("{} {}", posting.entry.ref_type, _txn_link(posting.entry.ref_id)),
            format_html('<span class="num">{}</span>', money_display(posting.amount, posting.currency)),
            format_html('<span class="num">{}</span>', money_display(posting.balance_after, posting.currency)),
        )
        for posting in page
    ]
    table = _table("ledgerx-statement", ["At (UTC)", "Transaction", "Amount", "Balance after"], rows, "No postings yet.")
    links = []
    if before_id is not None:
        links.append(format_html('<a href="{}#ledgerx-statement-panel">Newest</a>', page_url))
    if more:
        links.append(
            format_html('<a href="{}?{}={}#ledgerx-statement-panel" id="ledgerx-statement-older">Older postings ›</a>',
                        page_url, STATEMENT_PARAM, page[-1].id)
        )
    return format_html('{}<p class="paginator">{}</p>', table, format_html_join(" · ", "{}", ((link,) for link in links)))


def user_accounts_panel(user) -> str:
    """The user's newest accounts (``ledger_account_owner_idx``); past ``USER_ACCOUNTS_ROWS``, a link to all of them."""
    accounts = list(LedgerAccount.objects.filter(owner_id=user.pk).order_by("-created_at")[: USER_ACCOUNTS_ROWS + 1])
    more, accounts = len(accounts) > USER_ACCOUNTS_ROWS, accounts[:USER_ACCOUNTS_ROWS]
    activity = reverse("admin:ledgerx_activity")
    rows = [
        (_account_link(account), account.name or "-", account.currency, account.status,
         money_display(account.posted, account.currency), money_display(account.available, account.currency),
         format_html('<a href="{}?q={}">activity</a>', activity, account.number))
        for account in accounts
    ]
    table = _table("ledgerx-user-accounts-table", ["Number", "Name", "Currency", "Status", "Posted", "Available", ""], rows,
                   "No accounts.")
    if not more:
        return table
    return format_html(
        '{}<p class="help" id="ledgerx-user-accounts-more">The newest {} accounts. <a href="{}?q={}">All of the user\'s accounts ›</a></p>',
        table, USER_ACCOUNTS_ROWS, reverse("admin:ledger_ledgeraccount_changelist"), quote(user.email, safe="@"),
    )


def user_transactions_panel(user) -> str:
    """The latest transactions in or out of any of the user's accounts: the money source of their timeline."""
    page = timeline_page(Timeline(kind="user", title="", subject=user, sources=[OwnerMoneySource(user.pk)]), limit=USER_TRANSACTIONS_ROWS)
    rows = [(_when(row.at), row.what, row.status, row.subject, row.amount, row.actor, request_link(row.request_id)) for row in page.rows]
    table = _table("ledgerx-user-transactions", ["At (UTC)", "What", "Status", "Transaction", "Amount", "By", "Request"],
                   rows, "No transactions.")
    more = format_html(' <a href="{}?q={}">All activity ›</a>', reverse("admin:ledgerx_activity"), quote(user.email, safe="@"))
    return format_html("{}{}", table, more)


def user_sessions_panel(user) -> str:
    """API sessions: the user's refresh tokens, newest first (the back office's own sessions are not per user)."""
    now = timezone.now()
    tokens = OutstandingToken.objects.filter(user_id=user.pk).select_related("blacklistedtoken").order_by("-id")[:SESSIONS_ROWS]
    rows = []
    for token in tokens:
        revoked = getattr(token, "blacklistedtoken", None) is not None
        state = "revoked" if revoked else ("expired" if token.expires_at <= now else "active")
        rows.append((_when(token.created_at), _when(token.expires_at), state, format_html("<code>{}</code>", token.jti[:12])))
    return _table("ledgerx-user-sessions", ["Started (UTC)", "Expires (UTC)", "State", "Token id"], rows,
                  "No API sessions (the user never logged in through the API).")


class AccountPageAdmin(LedgerAccountAdmin):
    """The account page with its open holds and its statement, paged by keyset."""

    fields = tuple(name for name in LedgerAccountAdmin.fields if name != "statement")
    readonly_fields = tuple(name for name in LedgerAccountAdmin.readonly_fields if name != "statement")

    def object_panels(self, request, obj) -> list[tuple[str, str, str]]:
        page_url = reverse("admin:ledger_ledgeraccount_change", args=[obj.pk])
        return [
            ("ledgerx-holds-panel", "Open holds", account_holds_panel(obj)),
            ("ledgerx-statement-panel", "Statement (postings, newest first)",
             account_statement_panel(obj, request.GET.get(STATEMENT_PARAM), page_url)),
        ]


class UserPageAdmin(UserAdmin):
    """The user page with their accounts, their latest transactions and their API sessions."""

    def object_panels(self, request, obj) -> list[tuple[str, str, str]]:
        return [
            ("ledgerx-accounts-panel", "Accounts", user_accounts_panel(obj)),
            ("ledgerx-transactions-panel", "Recent transactions", user_transactions_panel(obj)),
            ("ledgerx-sessions-panel", "API sessions", user_sessions_panel(obj)),
        ]


def transaction_activity_panel(txn: Transaction) -> str:
    """The transaction's timeline on its page: its records, its reversal (or original) and approval requests."""
    page = timeline_page(transaction_timeline(txn))
    rows = [
        (_when(row.at), row.what, row.status or "-", row.subject, row.amount or "-", row.actor, row.reason or "-",
         request_link(row.request_id),
         format_html_join(mark_safe("<br>"), "{}", ((line,) for line in row.details)))
        for row in page.rows
    ]
    table = _table("ledgerx-transaction-activity", ["At (UTC)", "What", "Status", "About", "Amount", "By", "Reason", "Request", "Details"],
                   rows, "No activity.")
    more = format_html(' <a href="{}?q={}">Whole timeline ›</a>', reverse("admin:ledgerx_activity"), txn.pk)
    return format_html("{}{}", table, more)


class TransactionPageAdmin(TransactionAdmin):
    """The transaction page with its activity (who made it, who reversed it and why, approvals)."""

    def object_panels(self, request, obj) -> list[tuple[str, str, str]]:
        return [("ledgerx-activity-panel", "Activity", transaction_activity_panel(obj))]
