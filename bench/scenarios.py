"""Service-layer scenarios: the same services the API calls, minus the PIN check.

Each scenario is ``make(worker_index, concurrency) -> op`` for ``bench.pool``.
Every op goes through ``transactions.services`` with a fresh idempotency key,
so it pays for the idempotency guard and key lookup (an advisory lock), the
locks, the journal entry, the transaction row, the idempotency record, the
audit record and its after-commit sealing: everything but HTTP and bcrypt.

Bench-only switches (applied in the worker processes only, never in the app):

* PIN check excluded: ``pin_verify`` (``accounts.services``, and the name
  ``transactions.services.money`` imported it under) is replaced by a no-op. The PIN check is one
  bcrypt cost-12 hash (~250 ms of CPU) and is measured separately by the
  ``http_transfer`` scenario against the bcrypt ceiling.
* ``random_noaudit``: a bench-only copy of the movement function without its audit inserts,
  which removes the audit record, its pending-seal row and the after-commit
  sealer. LedgerX has no runtime switch for audit (and should not have one);
  this patch exists only to measure what audit costs (target 4).
"""

from __future__ import annotations

import random

from bench.books import books_load, new_key

SERVICE_SCENARIOS = (
    "random", "hot", "deposit", "hold_commit", "conversion", "random_noaudit", "batch_random", "batch_hot", "batch_1000",
)
# Transfers per op of the batch scenarios: their rates are reported in transfers per second.
BATCH_SIZE = 100
# The largest batch the API takes (``transactions.batches.MAX_ITEMS``): its latency and memory.
BIG_BATCH_SIZE = 1000
TRANSFERS_PER_OP = {
    "batch_random": BATCH_SIZE,
    "batch_hot": BATCH_SIZE,
    "batch_1000": BIG_BATCH_SIZE,
    "http_batch": BATCH_SIZE,
    "http_batch_1000": BIG_BATCH_SIZE,
}


def _pin_check_off() -> None:
    """Replace the PIN check wherever the money services look it up."""
    import accounts.services
    import transactions.batches
    import transactions.services.money

    def pin_verify_skipped(*, user, pin) -> None:
        return None

    accounts.services.pin_verify = pin_verify_skipped
    transactions.batches.pin_verify = pin_verify_skipped
    transactions.services.money.pin_verify = pin_verify_skipped


_originals: dict = {}


def _patch(module, name: str, replacement) -> None:
    """Set ``module.name`` to ``replacement``, or back to its original with ``None``."""
    key = (module.__name__, name)
    _originals.setdefault(key, getattr(module, name))
    setattr(module, name, _originals[key] if replacement is None else replacement)


def _audit_set(*, records: bool = True, sealing: bool = True) -> None:
    """Audit as the app does it (the default), or without its records, or without the after-commit sealing.

    Every factory calls it, so a scenario never inherits another's switch in this process.
    """
    import audit.services.sealing
    import transactions.engine.postgres
    import transactions.services.money

    if not records:
        _noaudit_function_install()
    _patch(transactions.services.money, "transaction_audit", None if records else _audit_unwritten)
    _patch(transactions.engine.postgres, "CALL_SQL", None if records else _NOAUDIT_CALL_SQL())
    _patch(audit.services.sealing, "_seal_after_commit", None if sealing else (lambda: None))


def _audit_unwritten(**kwargs):
    """An audit record the bench-only function below ignores (production code always writes it)."""
    from audit.models import AuditRecord

    return AuditRecord(data={})


_NOAUDIT_FUNCTION = "bench_movement_create_noaudit"


def _NOAUDIT_CALL_SQL() -> str:
    from transactions.engine.postgres import CALL_SQL, FUNCTION

    return CALL_SQL.replace(FUNCTION, _NOAUDIT_FUNCTION)


def _noaudit_function_install() -> None:
    """A bench-only copy of the movement function without the audit inserts: audit's cost by difference.

    Made from the engine's one text (``transactions/engine/sql/movements.sql``),
    so it follows every change of the real function except the audit rows.
    """
    from pathlib import Path

    from django.db import connection

    import transactions.engine

    text = (Path(transactions.engine.__file__).parent / "sql" / "movements.sql").read_text()
    start = text.index("    INSERT INTO audit_auditrecord")
    marker = "    INSERT INTO audit_auditpending (record_id) VALUES (p_audit_id);\n"
    text = text[:start] + text[text.index(marker) + len(marker) :]
    text = text.replace("ledgerx_movement_create", _NOAUDIT_FUNCTION)
    # The processes of one point install it at once: one at a time (the statements run as one transaction).
    text = f"SELECT pg_advisory_xact_lock(hashtext('{_NOAUDIT_FUNCTION}'));\n{text}"
    global _noaudit_installed
    if connection.vendor == "postgresql" and not _noaudit_installed:
        with connection.cursor() as cursor:
            cursor.execute(text)
        _noaudit_installed = True


_noaudit_installed = False


def _rng(index: int) -> random.Random:
    return random.Random(1_000_003 * (index + 1))


def make_random(index: int, concurrency: int, *, audit: bool = True):
    from transactions.services.money import transfer_create

    _pin_check_off()
    _audit_set(records=audit)
    books = books_load()
    rng = _rng(index)
    accounts = books.accounts

    def op():
        source, destination = rng.sample(accounts, 2)
        transfer_create(
            actor=books.owner(source),
            source=source,
            destination=destination,
            amount=rng.randint(1, 100),
            pin="",
            idempotency_key=new_key(),
        )

    return op


def make_random_nometrics(index: int, concurrency: int):
    """``random`` without the business metrics' counting after commit: what metrics cost a movement."""
    import ledgerx.observability.metrics

    op = make_random(index, concurrency)
    _patch(ledgerx.observability.metrics, "events_committed", lambda events: None)
    return op


def make_random_noxid(index: int, concurrency: int):
    """``random`` with its events' position written as a constant instead of the writer's transaction id.

    What taking ``pg_current_xact_id()`` in the event INSERTs costs a movement
    (the column and the wider list indexes stay: compare ``random`` with the
    commit before ``events/0003`` for those).
    """
    import events.services.recording

    op = make_random(index, concurrency)
    _patch(events.services.recording, "_XID_IN_STATEMENT", {"xid": "0::bigint"})
    return op


def make_random_noevents(index: int, concurrency: int):
    """``random`` writing no events (no event, recipients or deliveries rows in its statement):
    what the transactional outbox costs a movement."""
    import transactions.movements

    op = make_random(index, concurrency)
    _patch(transactions.movements, "events_statement_ctes", lambda events, **kwargs: ([], [], []))
    return op


def make_random_noaudit(index: int, concurrency: int):
    return make_random(index, concurrency, audit=False)


def make_random_nosealer(index: int, concurrency: int):
    """Profile-only: ``random`` with audit records written but the after-commit sealing off,
    to split audit's cost between the in-transaction insert and the hash chain."""
    op = make_random(index, concurrency)
    _audit_set(sealing=False)
    return op


def make_hot(index: int, concurrency: int):
    from transactions.services.money import transfer_create

    _pin_check_off()
    _audit_set()
    books = books_load()
    rng = _rng(index)

    def op():
        source = rng.choice(books.accounts)
        transfer_create(
            actor=books.owner(source),
            source=source,
            destination=books.hot,
            amount=rng.randint(1, 100),
            pin="",
            idempotency_key=new_key(),
        )

    return op


def make_deposit(index: int, concurrency: int):
    from transactions.services.money import deposit_create

    _audit_set()
    books = books_load()
    rng = _rng(index)

    def op():
        account = rng.choice(books.accounts)
        deposit_create(actor=books.owner(account), account=account, amount=rng.randint(1, 100), idempotency_key=new_key())

    return op


def make_hold_commit(index: int, concurrency: int):
    """One op = a held transfer (pending) and its commit: two transactions."""
    from transactions.services.holds import hold_commit
    from transactions.services.money import transfer_create

    _pin_check_off()
    _audit_set()
    books = books_load()
    rng = _rng(index)

    def op():
        source, destination = rng.sample(books.accounts, 2)
        actor = books.owner(source)
        outcome = transfer_create(
            actor=actor,
            source=source,
            destination=destination,
            amount=rng.randint(1, 100),
            pin="",
            idempotency_key=new_key(),
            hold=True,
        )
        hold_commit(actor=actor, transaction=outcome.transaction)

    return op


FX_CURRENCY = "NGN"
FX_ACCOUNTS_PER_WORKER = 50


def make_conversion(index: int, concurrency: int):
    """One op = a quote (USD -> NGN, 1-100 cents) and its conversion between two accounts of one random user.

    The real client flow: ``fx.services.quote_create`` then
    ``transactions.services.money.conversion_create`` (the batch engine with one
    conversion item). Each worker opens an NGN account beside up to 50 of
    the books' USD accounts (its own share, so workers never open the same
    ones) and sets a fresh USD/NGN rate, all before the measured window.
    """
    from fx.services import quote_create, rate_set
    from ledger.models import LedgerAccount
    from ledger.services.customer_accounts import account_open
    from transactions.services.money import conversion_create

    _pin_check_off()
    _audit_set()
    books = books_load()
    rng = _rng(index)
    rate_set(actor=None, base=books.accounts[0].currency, quote=FX_CURRENCY, mid="1500", spread_bps=50, source="bench")
    pairs = []
    for source in books.accounts[index::max(1, concurrency)][:FX_ACCOUNTS_PER_WORKER]:
        name = f"fx-{source.name}"
        owner = books.owner(source)
        destination = LedgerAccount.objects.filter(owner=owner, currency=FX_CURRENCY, name=name).first()
        if destination is None:
            destination = account_open(actor=owner, owner=owner, currency=FX_CURRENCY, name=name)
        pairs.append((owner, source, destination))

    def op():
        owner, source, destination = rng.choice(pairs)
        quote = quote_create(
            actor=owner, source_currency=source.currency, destination_currency=FX_CURRENCY, source_amount=rng.randint(1, 100)
        )
        conversion_create(
            actor=owner, quote_id=quote.pk, source=source, destination=destination, pin="", idempotency_key=new_key()
        )

    return op


def batch_payees(rng: random.Random, accounts: list, source, n: int) -> list:
    """``n`` payees other than ``source``: distinct while the books have that many, then repeated.

    A 1000-item batch on the 999 regular accounts pays every other account once and
    a few twice, so it locks as many accounts as the books can give it.
    """
    if n < len(accounts):
        return [a for a in rng.sample(accounts, n + 1) if a.pk != source.pk][:n]
    others = [a for a in accounts if a.pk != source.pk]
    return rng.sample(others, len(others)) + rng.choices(others, k=n - len(others))


def _make_batch(index: int, *, hot: bool, size: int = BATCH_SIZE):
    from transactions.batches import BatchItem, batch_create

    _pin_check_off()
    _audit_set()
    books = books_load()
    rng = _rng(index)

    def op():
        # Items debit only the caller's accounts: one payer per batch, as in a payroll or a payout run.
        source = rng.choice(books.accounts)
        if hot:
            destinations = [books.hot] * size
        else:
            destinations = batch_payees(rng, books.accounts, source, size)
        items = [
            BatchItem(type="transfer", source_account=source.pk, destination_account=d.pk, amount=rng.randint(1, 100))
            for d in destinations
        ]
        batch_create(actor=books.owner(source), items=items, pin="", idempotency_key=new_key())

    return op


def make_batch_random(index: int, concurrency: int):
    """One op = a batch of 100 transfers from one random payer to 100 random payees."""
    return _make_batch(index, hot=False)


def make_batch_hot(index: int, concurrency: int):
    """One op = a batch of 100 transfers from one random payer, every one to the hot account."""
    return _make_batch(index, hot=True)


def make_batch_1000(index: int, concurrency: int):
    """One op = an atomic batch of 1000 transfers (the most one request may carry) from one random payer."""
    return _make_batch(index, hot=False, size=BIG_BATCH_SIZE)


SCENARIO_FACTORIES = {
    "batch_random": make_batch_random,
    "batch_hot": make_batch_hot,
    "batch_1000": make_batch_1000,
    "random": make_random,
    "hot": make_hot,
    "deposit": make_deposit,
    "hold_commit": make_hold_commit,
    "conversion": make_conversion,
    "random_noaudit": make_random_noaudit,
    "random_nometrics": make_random_nometrics,
    "random_noxid": make_random_noxid,
    "random_noevents": make_random_noevents,
    "random_nosealer": make_random_nosealer,
}
