"""Money movement: deposits, withdrawals, transfers, holds, conversions, reversals.

Every service here follows one shape: validate the input's shape (no
queries, ``inputs``), check the PIN (bcrypt, in its own transaction, before
any lock), then in ONE ``transaction.atomic(durable=True)``: lock the actor's
user row (FOR SHARE) and every ledger account touched (one ``SELECT ... FOR
UPDATE`` in primary-key order, ``ledger.services.locking.accounts_lock``),
check status, currency and available balance under the lock, write the
journal entry / holds (``ledger.services.postings``), the transaction row,
the idempotency record and the audit record (``auditing``). Balance caches
refresh on commit.

Idempotency: the creating services (``money``) take the raw
``idempotency_key`` (the ``Idempotency-Key`` header) and return a
``MoneyOutcome`` (transaction, response status and body, replayed flag); the
key is checked and the request fingerprint computed there from the service's
own arguments without the PIN (``transactions.idempotency``). The API layer
only renders the outcome. ``holds`` ends holds, ``reversals`` undoes
committed transactions, ``housekeeping`` forgets old keys.

The names below stay importable from the package because modules that other
owners edit import them from here (the approvals services, the back office's
tests); everything else imports from the submodules.
"""

from transactions.services.holds import hold_commit, hold_void
from transactions.services.money import deposit_create, transfer_create
from transactions.services.reversals import reversal_write, transaction_reverse

__all__ = ["deposit_create", "hold_commit", "hold_void", "reversal_write", "transaction_reverse", "transfer_create"]
