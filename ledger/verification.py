"""Ledger invariant checks, as SQL aggregates (the database streams; we hold only counts).

Each check is one query that returns the number of breaches and up to
``EXAMPLES`` examples; nothing proportional to the size of the books is
loaded into Python. ``transactions.verification`` adds the checks that need
transactions (holds, idempotency); ``manage.py verify_ledger`` runs them all.
"""

from dataclasses import dataclass, field

from django.db import connection

from ledger.models import JournalEntry, LedgerAccount, Posting

EXAMPLES = 5

ACCOUNT = LedgerAccount._meta.db_table
ENTRY = JournalEntry._meta.db_table
POSTING = Posting._meta.db_table


@dataclass
class CheckResult:
    name: str
    breaches: int
    examples: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.breaches == 0


def run_check(name: str, breach_sql: str, params: tuple = ()) -> CheckResult:
    """``breach_sql`` selects one row per breach; count and sample it in SQL."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM ({breach_sql}) AS breaches", params)
        count = cursor.fetchone()[0]
        examples = []
        if count:
            cursor.execute(f"SELECT * FROM ({breach_sql}) AS breaches LIMIT {EXAMPLES}", params)
            examples = [tuple(str(value) for value in row) for row in cursor.fetchall()]
    return CheckResult(name, count, examples)


LEDGER_CHECKS: list[tuple[str, str]] = [
    (
        "every journal entry balances per currency",
        f"SELECT entry_id, currency, SUM(amount) AS total FROM {POSTING} GROUP BY entry_id, currency HAVING SUM(amount) <> 0",
    ),
    (
        "every journal entry has at least two postings",
        f"SELECT e.id FROM {ENTRY} e LEFT JOIN {POSTING} p ON p.entry_id = e.id GROUP BY e.id HAVING COUNT(p.id) < 2",
    ),
    (
        "every posting is in its account's currency",
        f"SELECT p.id, p.currency, a.currency FROM {POSTING} p JOIN {ACCOUNT} a ON a.id = p.account_id "
        f"WHERE p.currency <> a.currency",
    ),
    (
        "every stored posted balance equals the sum of its postings",
        f"SELECT a.id, a.posted, COALESCE(s.total, 0) AS total FROM {ACCOUNT} a "
        f"LEFT JOIN (SELECT account_id, SUM(amount) AS total FROM {POSTING} GROUP BY account_id) s "
        f"ON s.account_id = a.id WHERE a.posted <> COALESCE(s.total, 0)",
    ),
    (
        "every posting's balance_after is the running balance",
        f"SELECT id, account_id FROM (SELECT id, account_id, balance_after - amount - COALESCE("
        f"LAG(balance_after) OVER (PARTITION BY account_id ORDER BY id), 0) AS drift FROM {POSTING}) r "
        f"WHERE drift <> 0",
    ),
    (
        "no customer account is negative or over-held",
        f"SELECT id, posted, pending FROM {ACCOUNT} WHERE kind = 'customer' AND (posted < 0 OR pending < 0 OR posted < pending)",
    ),
]


def checks_run(checks: list[tuple[str, str]], progress=None) -> list[CheckResult]:
    """Run (name, breach_sql) checks; ``progress(name)`` is called before each."""
    results = []
    for name, sql in checks:
        if progress:
            progress(name)
        results.append(run_check(name, sql))
    return results


def ledger_checks(progress=None) -> list[CheckResult]:
    return checks_run(LEDGER_CHECKS, progress)
