"""Activity timelines: what happened to an account, a user or a transaction, or within one request.

Design note
-----------
A timeline merges *sources*, each a queryset one index returns newest first:
audit records by target (``audit_target_idx``), by actor (``audit_actor_idx``)
or by request id (``audit_request_idx``); transactions by their source or
destination account (the two keyset indexes; for a user, those of every
account they own, in one statement) or by primary key. A page is
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

from backoffice.timeline.rows import ACCOUNT_TARGETS, AUDIT, MONEY, USER_TARGETS, Row, request_link, target_link, target_names
from backoffice.timeline.sources import (
    PAGE_ROWS,
    Cursor,
    OwnerMoneySource,
    Page,
    Source,
    Timeline,
    account_timeline,
    request_timeline,
    timeline_for,
    timeline_page,
    transaction_timeline,
    user_timeline,
)

__all__ = [
    "ACCOUNT_TARGETS", "AUDIT", "MONEY", "PAGE_ROWS", "USER_TARGETS", "Cursor", "OwnerMoneySource", "Page", "Row", "Source",
    "Timeline",
    "account_timeline", "request_link", "request_timeline", "target_link", "target_names", "timeline_for",
    "timeline_page", "transaction_timeline", "user_timeline",
]
