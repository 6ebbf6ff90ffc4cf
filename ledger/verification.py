"""Ledger invariant checks, as SQL aggregates (the database streams; we hold only counts).

Each check is one query that returns the number of breaches and up to
``EXAMPLES`` examples; nothing proportional to the size of the books is
loaded into Python. ``transactions.verification`` adds the checks that need
transactions (holds, idempotency); ``manage.py verify_ledger`` runs them all.
"""

import re
import uuid
from dataclasses import dataclass, field

from django.db import connections

from ledger.models import JournalEntry, LedgerAccount, Posting
from ledgerx.db.replicas import current_read_alias

EXAMPLES = 5

ACCOUNT = LedgerAccount._meta.db_table
ENTRY = JournalEntry._meta.db_table
POSTING = Posting._meta.db_table


@dataclass
class CheckResult:
    name: str
    breaches: int
    examples: list[str] = field(default_factory=list)  # one readable line per example breach

    @property
    def ok(self) -> bool:
        return self.breaches == 0


def run_check(name: str, breach_sql: str, params: tuple = ()) -> CheckResult:
    """``breach_sql`` selects one row per breach; count and sample it in SQL (on the
    database the current read scope names: ``verify_ledger --replica``)."""
    with connections[current_read_alias()].cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM ({breach_sql}) AS breaches", params)
        count = cursor.fetchone()[0]
        examples = []
        if count:
            cursor.execute(f"SELECT * FROM ({breach_sql}) AS breaches LIMIT {EXAMPLES}", params)
            columns = [column[0] for column in cursor.description]
            examples = [_example(columns, row) for row in cursor.fetchall()]
    return CheckResult(name, count, examples)


_HEX_UUID = re.compile(r"[0-9a-f]{32}")


def _example(columns: list[str], row: tuple) -> str:
    """``account 123456789012, account_id 0190...-..., posted 5, ...``: ids written as everywhere else.

    SQLite stores UUIDs as 32 hex digits; they are shown with their dashes.
    """
    parts = []
    for name, value in zip(columns, row):
        if isinstance(value, str) and _HEX_UUID.fullmatch(value):
            value = uuid.UUID(value)
        parts.append(f"{name} {value}")
    return ", ".join(parts)


LEDGER_CHECKS: list[tuple[str, str]] = [
    (
        "every journal entry balances per currency",
        f"SELECT entry_id, currency, SUM(amount) AS total FROM {POSTING} GROUP BY entry_id, currency "
        f"HAVING SUM(amount) <> 0",
    ),
    (
        "every journal entry has at least two postings",
        f"SELECT e.id AS entry_id FROM {ENTRY} e LEFT JOIN {POSTING} p ON p.entry_id = e.id GROUP BY e.id HAVING COUNT(p.id) < 2",
    ),
    (
        "every posting is in its account's currency",
        f"SELECT p.id AS posting_id, a.number AS account, p.currency AS posting_currency, "
        f"a.currency AS account_currency FROM {POSTING} p JOIN {ACCOUNT} a ON a.id = p.account_id "
        f"WHERE p.currency <> a.currency",
    ),
    (
        "every stored posted balance equals the sum of its postings",
        f"SELECT a.number AS account, a.id AS account_id, a.posted AS posted, "
        f"COALESCE(s.total, 0) AS postings_total FROM {ACCOUNT} a "
        f"LEFT JOIN (SELECT account_id, SUM(amount) AS total FROM {POSTING} GROUP BY account_id) s "
        f"ON s.account_id = a.id WHERE a.posted <> COALESCE(s.total, 0)",
    ),
    (
        "every posting's balance_after is the running balance",
        f"SELECT r.id AS posting_id, a.number AS account, r.account_id AS account_id FROM (SELECT id, account_id, "
        f"balance_after - amount - COALESCE(LAG(balance_after) OVER (PARTITION BY account_id ORDER BY id), 0) "
        f"AS drift FROM {POSTING}) r JOIN {ACCOUNT} a ON a.id = r.account_id WHERE r.drift <> 0",
    ),
    (
        "no customer account is negative or over-held",
        f"SELECT number AS account, id AS account_id, posted, pending FROM {ACCOUNT} "
        f"WHERE kind = 'customer' AND (posted < 0 OR pending < 0 OR posted < pending)",
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
