"""Every write to the books.

Business services (``transactions.services``) open the database transaction,
lock with ``locking.accounts_lock`` and then call ``postings.entry_post`` /
``postings.holds_adjust``, the Python write path for postings and balances.
New movements on PostgreSQL are written by one SQL function instead
(``transactions.movements``; its only text is
``transactions/engine/sql/movements.sql``), so that a movement is one round
trip and its row locks are held only for the function's own writes; it
follows the same lock order and rules as this package. Holds' commit/void,
reversals and everything on SQLite come through here. Customer accounts are
opened and frozen by ``customer_accounts``; the funding and payouts shards
live in ``system``.

The names below stay importable from the package because modules that other
owners edit import them from here (the movement engine, the idempotency
layer, the ledger admin, the back office and its tests, the bench's scale
phases and bulk loader); everything else imports from the submodules.
"""

from ledger.services.customer_accounts import (
    _account_number_new,
    account_freeze,
    account_open,
    account_rename,
    account_unfreeze,
)
from ledger.services.locking import LockResult, accounts_lock
from ledger.services.postings import balances_save, balances_statement, entry_post, holds_adjust
from ledger.services.system import (
    SystemAccountMissing,
    system_accounts_ensure,
    system_shard_pick,
    system_shards_forget,
)

__all__ = [
    "_account_number_new",  # the bench's bulk loader draws account numbers as the service does
    "LockResult",
    "SystemAccountMissing",
    "account_freeze",
    "account_open",
    "account_rename",
    "account_unfreeze",
    "accounts_lock",
    "balances_save",
    "balances_statement",
    "entry_post",
    "holds_adjust",
    "system_accounts_ensure",
    "system_shard_pick",
    "system_shards_forget",
]
