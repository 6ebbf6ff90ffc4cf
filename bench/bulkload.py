"""Bench-only bulk loader: long histories in seconds, as valid books.

It writes what ``deposit_create`` would write for N deposits (journal entry,
two postings -- the currency's funding shard and the customer account --, the
committed ``deposit`` transaction, the stored balances and versions), but in a
handful of set-based SQL statements instead of N service calls:

* ids are reserved up front from the tables' sequences, so posting ids grow in
  the same order as ``created_at`` (1 ms apart, ending now) and every
  ``balance_after`` is the running balance in id order, as the write path makes it;
* the deferred per-row "entry balances" constraint triggers are skipped for the
  load (``session_replication_role = replica``, as pg_restore does) because
  every entry is balanced by construction -- and ``verify_ledger`` re-checks
  every invariant on the result, which is what the benchmark reports.

Not written: audit records and idempotency records (neither is part of the
books ``verify_ledger`` checks). PostgreSQL only.

``users_load`` writes a crowd of users the same way (one statement each for
the users and their accounts, opened empty): what ``register`` and
``account_open`` would leave, less their audit records.
"""

from __future__ import annotations

import time

LOAD_SQL = r"""
CREATE TEMP TABLE bench_plan ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY random()) AS k,
       a.account_id,
       (1 + floor(random() * 100))::bigint AS amount,
       gen_random_uuid() AS txn_id
  FROM unnest(%(ids)s::uuid[], %(counts)s::int[]) AS a(account_id, n)
  CROSS JOIN LATERAL generate_series(1, a.n) AS g(i);

CREATE TEMP TABLE bench_rows ON COMMIT DROP AS
SELECT p.k, p.account_id, p.amount, p.txn_id,
       (%(shards)s::uuid[])[1 + (p.k %% array_length(%(shards)s::uuid[], 1))] AS shard_id,
       %(ts_end)s::timestamptz - ((%(n)s - p.k) * interval '1 millisecond') AS ts
  FROM bench_plan p;

INSERT INTO ledger_journalentry (id, ref_type, ref_id, created_at)
SELECT %(entry_base)s + r.k, 'deposit', r.txn_id, r.ts FROM bench_rows r ORDER BY r.k;

INSERT INTO ledger_posting (id, entry_id, account_id, currency, amount, balance_after, created_at)
SELECT id, entry_id, account_id, currency, amount, start + SUM(amount) OVER (PARTITION BY account_id ORDER BY id), ts
  FROM (
    SELECT %(posting_base)s + 2 * r.k - 1 AS id, %(entry_base)s + r.k AS entry_id, r.shard_id AS account_id,
           %(currency)s AS currency, -r.amount AS amount, r.ts, sa.posted AS start
      FROM bench_rows r JOIN ledger_ledgeraccount sa ON sa.id = r.shard_id
    UNION ALL
    SELECT %(posting_base)s + 2 * r.k, %(entry_base)s + r.k, r.account_id,
           %(currency)s, r.amount, r.ts, ca.posted
      FROM bench_rows r JOIN ledger_ledgeraccount ca ON ca.id = r.account_id
  ) lines
 ORDER BY id;

INSERT INTO transactions_transaction
    (id, type, status, amount, currency, description, metadata, created_at, committed_at,
     destination_account_id, entry_id, initiated_by_id)
SELECT r.txn_id, 'deposit', 'committed', r.amount, %(currency)s, '', '{}'::jsonb, r.ts, r.ts,
       r.account_id, %(entry_base)s + r.k, a.owner_id
  FROM bench_rows r JOIN ledger_ledgeraccount a ON a.id = r.account_id
 ORDER BY r.k;

UPDATE ledger_ledgeraccount a
   SET posted = a.posted + t.total, version = a.version + t.n
  FROM (SELECT account_id, SUM(amount) AS total, COUNT(*) AS n
          FROM ledger_posting WHERE id > %(posting_base)s GROUP BY account_id) t
 WHERE a.id = t.account_id;
"""


def deposits_load(*, counts: dict, currency: str = "USD") -> tuple[int, float]:
    """Load ``counts[account_id]`` deposits into each customer account; (postings written, seconds).

    Must not run concurrently with anything else writing to the same database.
    """
    from django.db import connection, transaction
    from django.utils import timezone

    from ledger.models import LedgerAccount
    from ledger.services.system import system_accounts_ensure

    system_accounts_ensure(currency=currency)
    shards = [
        str(pk)
        for pk in LedgerAccount.objects.filter(
            kind=LedgerAccount.Kind.SYSTEM, system_role=LedgerAccount.SystemRole.FUNDING, currency=currency
        )
        .order_by("shard")
        .values_list("pk", flat=True)
    ]
    ids = [str(pk) for pk in counts]
    n = sum(counts.values())
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("LOCK TABLE ledger_posting, ledger_journalentry IN EXCLUSIVE MODE")
        reserved = {}
        for table in ("ledger_journalentry", "ledger_posting"):
            per_row = 2 if table == "ledger_posting" else 1
            cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")
            base = cursor.fetchone()[0]
            cursor.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", [table, base + per_row * n])
            reserved[table] = base
        cursor.execute(
            LOAD_SQL,
            {
                "ids": ids,
                "counts": [counts[pk] for pk in counts],
                "shards": shards,
                "n": n,
                "ts_end": timezone.now(),
                "currency": currency,
                "entry_base": reserved["ledger_journalentry"],
                "posting_base": reserved["ledger_posting"],
            },
        )
    with connection.cursor() as cursor:  # what autovacuum would do soon after such a load
        cursor.execute("ANALYZE ledger_posting, ledger_journalentry, ledger_ledgeraccount, transactions_transaction")
    return 2 * n, time.perf_counter() - started


USERS_SQL = r"""
CREATE TEMP TABLE bench_crowd ON COMMIT DROP AS
SELECT g AS k, gen_random_uuid() AS user_id, gen_random_uuid() AS account_id,
       %(ts_end)s::timestamptz - ((%(n)s - g) * interval '1 second') AS ts
  FROM generate_series(1, %(n)s) AS g;

INSERT INTO accounts_user
    (id, password, last_login, is_superuser, email, full_name, role, status, pin_hash, failed_pin_attempts,
     is_staff, is_active, created_at)
SELECT c.user_id, %(password)s, NULL, false, %(prefix)s || lpad(c.k::text, 6, '0') || '@bench.invalid',
       (%(first)s::text[])[1 + c.k %% array_length(%(first)s::text[], 1)] || ' '
       || (%(last)s::text[])[1 + (c.k / array_length(%(first)s::text[], 1)) %% array_length(%(last)s::text[], 1)]
       || ' ' || c.k,
       'user', 'active', '', 0, false, true, c.ts
  FROM bench_crowd c ORDER BY c.k;

INSERT INTO ledger_ledgeraccount
    (id, number, name, kind, system_role, shard, currency, status, posted, pending, version, created_at, owner_id)
SELECT c.account_id, (%(numbers)s::text[])[c.k], '', 'customer', '', 0, %(currency)s, 'active', 0, 0, 0, c.ts, c.user_id
  FROM bench_crowd c ORDER BY c.k;
"""
CROWD_FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "John", "Margaret", "Tony"]
CROWD_LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Backus", "Hamilton", "Hoare"]


def users_load(*, n: int, password_hash: str, prefix: str = "crowd", currency: str = "USD") -> float:
    """``n`` users ``<prefix>NNNNNN@bench.invalid`` ("Ada Lovelace 17" ...), each with one empty account; seconds.

    Account numbers are the service's own (11 random digits and a Luhn digit),
    drawn here and checked against the numbers already taken.
    """
    from django.db import connection, transaction
    from django.utils import timezone

    from ledger.models import LedgerAccount
    from ledger.services import _account_number_new

    started = time.perf_counter()
    taken = set(LedgerAccount.objects.values_list("number", flat=True))
    numbers: list[str] = []
    while len(numbers) < n:
        number = _account_number_new()
        if number not in taken:
            taken.add(number)
            numbers.append(number)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")  # the accounts' owners are the rows above
        cursor.execute(
            USERS_SQL,
            {"n": n, "ts_end": timezone.now(), "password": password_hash, "prefix": prefix, "first": CROWD_FIRST,
             "last": CROWD_LAST, "numbers": numbers, "currency": currency},
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE accounts_user, ledger_ledgeraccount")
    return time.perf_counter() - started
