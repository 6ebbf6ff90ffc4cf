"""Checks that tie the books to transactions: holds, conversions and idempotency."""

from ledger.verification import ACCOUNT, POSTING, CheckResult, checks_run, ledger_checks
from transactions.models import Batch, IdempotencyRecord, Transaction

TXN = Transaction._meta.db_table
IDEM = IdempotencyRecord._meta.db_table
BATCH = Batch._meta.db_table

TRANSACTION_CHECKS: list[tuple[str, str]] = [
    (
        "every stored pending balance equals the sum of its open holds",
        f"SELECT a.number AS account, a.id AS account_id, a.pending AS pending, "
        f"COALESCE(h.total, 0) AS open_holds_total FROM {ACCOUNT} a "
        f"LEFT JOIN (SELECT source_account_id, SUM(amount) AS total FROM {TXN} WHERE status = 'pending' "
        f"GROUP BY source_account_id) h ON h.source_account_id = a.id WHERE a.pending <> COALESCE(h.total, 0)",
    ),
    (
        "committed and reversed transactions have an entry; pending and voided ones none",
        f"SELECT id AS transaction_id, status FROM {TXN} WHERE (status IN ('committed', 'reversed')) <> (entry_id IS NOT NULL)",
    ),
    (
        "every reversed transaction has exactly one reversal",
        f"SELECT t.id AS transaction_id FROM {TXN} t LEFT JOIN {TXN} r ON r.reverses_id = t.id "
        f"WHERE (t.status = 'reversed') <> (r.id IS NOT NULL)",
    ),
    (
        "every conversion's entry moves its recorded amounts on its two accounts",
        f"SELECT t.id AS transaction_id, t.source_amount, t.destination_amount FROM {TXN} t "
        f"LEFT JOIN {POSTING} ps ON ps.entry_id = t.entry_id AND ps.account_id = t.source_account_id "
        f"LEFT JOIN {POSTING} pd ON pd.entry_id = t.entry_id AND pd.account_id = t.destination_account_id "
        f"WHERE t.type = 'conversion' AND t.entry_id IS NOT NULL "
        f"AND (COALESCE(ps.amount, 0) <> -t.source_amount OR COALESCE(pd.amount, 0) <> t.destination_amount)",
    ),
    (
        "each idempotency key maps to at most one transaction",
        f"SELECT user_id, endpoint, key FROM {IDEM} GROUP BY user_id, endpoint, key "
        f"HAVING COUNT(DISTINCT transaction_id) > 1",
    ),
    (
        "each transaction is bound to at most one idempotency key",
        f"SELECT transaction_id FROM {IDEM} WHERE transaction_id IS NOT NULL GROUP BY transaction_id HAVING COUNT(*) > 1",
    ),
    (
        "each batch's transactions are the ones its results name",
        f"SELECT b.id AS batch_id, b.succeeded, COUNT(t.id) AS transactions FROM {BATCH} b "
        f"LEFT JOIN {TXN} t ON t.batch_id = b.id GROUP BY b.id, b.succeeded HAVING COUNT(t.id) <> b.succeeded",
    ),
]


def books_verify(progress=None) -> list[CheckResult]:
    """All ledger and transaction checks; ``progress(name)`` is called before each."""
    return ledger_checks(progress) + checks_run(TRANSACTION_CHECKS, progress)
