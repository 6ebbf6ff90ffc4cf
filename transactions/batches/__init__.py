"""Batches: many movements of one user in one request, under one lock, in one commit.

``batch_create`` applies deposits, withdrawals, transfers (holds too) and
currency conversions in the order given, each seeing the balances the earlier
ones left; ``conversion_run`` is the same engine with one conversion item
(``POST conversions``: no batch row, the transaction as the answer):

1. The whole request first, in the order singles follow: the idempotency key
   (a bound key replays the stored batch, another body is 422), the in-flight
   guard (409 ``idempotency_in_progress``), the PIN once for the whole batch
   when any item debits (``accounts.services.pin_verify``: a wrong PIN counts
   once and applies nothing).
2. One durable transaction: every account any item touches -- with one
   funding or payouts shard per currency -- locked by ONE ``SELECT ... FOR
   UPDATE`` in primary-key order (``ledger.services.accounts_lock``), so
   crossing batches and singles never deadlock; the actor's status read under
   the same statement (a suspended user moves nothing).
3. Each item, against the locked rows in memory, refused by the first rule it
   breaks, in the order of the single endpoints: the accounts exist, are
   customer accounts and the debited one is the caller's (``not_found``) ->
   not the same account (``same_account``) -> one currency
   (``currency_mismatch``) -> a conversion's quote unused and unexpired
   (``quote_expired``) -> source not frozen -> destination not frozen
   (``account_frozen``) -> funds (``insufficient_funds``) -> the credited
   balance stays within ``BALANCE_LIMIT`` (``balance_limit``). A refused item
   changes nothing in memory, so a non-atomic batch needs no savepoint per
   item; an atomic batch stops at the first refusal and nothing is written.
   A conversion (``fx``) is one entry of four postings, balanced per currency:
   the source account pays its currency's FX pool shard, the destination
   currency's FX pool shard pays the destination account, at the amounts of
   the caller's quote, whose row is locked (``SELECT ... FOR UPDATE``, after
   the accounts) and marked used in the same transaction.
4. The rows of every applied item written set-based: entries, postings
   (each with its account's balance after it), transactions, audit records
   and their sealing queue rows, one balance UPDATE for every account, one
   UPDATE of the quotes used, the batch, its one idempotency record and the
   events. Every item is booked at one moment read under the locks (the
   database clock on PostgreSQL), which is each transaction's
   ``committed_at`` and its postings' ``created_at``:
   ``balance?as_of=<committed_at>`` includes the whole batch.

On PostgreSQL steps 1 (but a PIN that is not proven from the cache) to 4
are ONE call of ``ledgerx_batch_apply`` (``transactions/engine/sql/batches.sql``,
called by named arguments from ``engine.postgres.BATCH_PARAMETERS``), in
autocommit its own transaction (``_postgres_run``, ``batches.postgres``). It
builds the stored response itself, so the first answer and a replay are the
same JSON. On SQLite the same rules run in Python, in the same order
(``batches.orm``), and raise the same exceptions; the refusals' messages
come from one table (``engine.codes.ITEM_ERRORS``) on both. The package:
``items`` (the shapes), ``orm`` (the Python rules and writes), ``postgres``
(the call and its outcome); this module holds the request-level steps.

The account cache and the audit sealer run after commit.
"""

import functools

from django.db import IntegrityError, connection, transaction

from accounts.services import pin_proven, pin_verify
from ledger.services import SystemAccountMissing, system_accounts_ensure, system_shards_forget
from ledgerx.exceptions import ValidationFailed
from transactions.batches import orm
from transactions.batches import postgres as engine
from transactions.batches.items import (
    CONVERSION_ENDPOINT,
    ENDPOINT,
    MAX_ITEMS,
    BatchItem,
    BatchItemRefused,
    BatchOutcome,
)
from transactions.exceptions import IdempotencyKeyReused
from transactions.idempotency import (
    MoneyOutcome,
    _in_flight_guard,
    _record_find,
    _replay as _money_replay,
    idempotency_key_validate,
    request_fingerprint,
)
from transactions.models import Batch, Transaction

__all__ = ["MAX_ITEMS", "ENDPOINT", "CONVERSION_ENDPOINT", "BatchItem", "BatchOutcome", "BatchItemRefused",
           "batch_create", "conversion_run"]


def batch_create(
    *, actor, items: list[BatchItem], atomic: bool = True, pin: str | None = None, idempotency_key: str
) -> BatchOutcome:
    """Apply ``items`` in order for ``actor``; see the module docstring.

    Raises ValidationFailed (no items, too many, a PIN missing), the
    idempotency errors, the PIN errors, UserSuspended, and (atomic) the first
    refused item's error as BatchItemRefused.
    """
    idempotency_key_validate(idempotency_key)
    if not 1 <= len(items) <= MAX_ITEMS:
        raise ValidationFailed(fields={"items": [f"Send 1 to {MAX_ITEMS} items."]})
    needs_pin = any(item.type != Transaction.Type.DEPOSIT for item in items)
    if needs_pin and not isinstance(pin, str):
        raise ValidationFailed(
            fields={"pin": ["A PIN is required when an item is a withdrawal, a transfer or a conversion."]}
        )
    fingerprint = request_fingerprint(ENDPOINT, {"atomic": atomic, "items": [item.canonical() for item in items]})
    replay = functools.partial(_replay, actor, idempotency_key, fingerprint)
    if connection.vendor == "postgresql":
        return _postgres_run(
            actor=actor, endpoint=ENDPOINT, key=idempotency_key, fingerprint=fingerprint, items=items, atomic=atomic,
            batch=True, pin=pin if needs_pin else None, replay=replay,
        )

    def apply(currencies):
        try:
            run = orm.items_run(actor=actor, items=items, atomic=atomic, currencies=currencies)
        except orm.Refused as refused:
            raise BatchItemRefused(index=refused.index, error=refused.error) from None
        return orm.batch_write(actor=actor, run=run, atomic=atomic, count=len(items), key=idempotency_key,
                            fingerprint=fingerprint)

    return _engine_run(
        actor=actor, endpoint=ENDPOINT, key=idempotency_key, items=items, pin=pin if needs_pin else None,
        apply=apply, replay=replay,
    )


def conversion_run(*, actor, item: BatchItem, pin: str, idempotency_key: str, fingerprint: str) -> MoneyOutcome:
    """The engine with one conversion item (``POST conversions``): the same locks, checks and writes as a batch's.

    No batch row: the answer is the conversion's transaction, bound to the key
    of the ``conversions`` endpoint. Raises what ``batch_create`` raises, the
    refusal as itself (no ``index``).
    """
    idempotency_key_validate(idempotency_key)

    def replay():
        record = _record_find(user=actor, endpoint=CONVERSION_ENDPOINT, key=idempotency_key)
        return None if record is None else _money_replay(record, fingerprint)

    if connection.vendor == "postgresql":
        return _postgres_run(
            actor=actor, endpoint=CONVERSION_ENDPOINT, key=idempotency_key, fingerprint=fingerprint, items=[item],
            atomic=True, batch=False, pin=pin, replay=replay,
        )

    def apply(currencies):
        try:
            run = orm.items_run(actor=actor, items=[item], atomic=True, currencies=currencies)
        except orm.Refused as refused:
            raise refused.error from None
        return orm.single_write(actor=actor, run=run, key=idempotency_key, fingerprint=fingerprint)

    return _engine_run(
        actor=actor, endpoint=CONVERSION_ENDPOINT, key=idempotency_key, items=[item], pin=pin, apply=apply, replay=replay
    )


def _engine_run(*, actor, endpoint: str, key: str, items: list[BatchItem], pin: str | None, apply, replay):
    """SQLite: the request-level steps around ``apply`` (one durable transaction), in the order singles follow.

    The key (a bound key replays through ``replay``), the in-flight guard, the
    PIN once (``pin`` None: no item debits), the system shards made sure of;
    a key bound meanwhile by a duplicate that won replays too.
    """
    guard = _in_flight_guard(actor, endpoint, key)
    try:
        if guard.claim_and_probe(user=actor, endpoint=endpoint, key=key):
            replayed = replay()
            if replayed is not None:
                return replayed
        if pin is not None:
            pin_verify(user=actor, pin=pin)
        currencies = orm.currencies_of(items)
        for currency, roles in orm.system_needs(items, currencies).items():
            orm.system_shards_ready(currency, roles)
        try:
            for attempt in (1, 2):
                try:
                    with transaction.atomic(durable=True):
                        return apply(currencies)
                except SystemAccountMissing as missing:
                    # The shard ids this process remembered are gone (a test database flushed
                    # under it): forget them, make sure the shards exist, try once more.
                    if attempt == 2:
                        raise
                    system_shards_forget()
                    system_accounts_ensure(currency=missing.args[0])
        except IntegrityError:
            # The key was bound meanwhile by a duplicate that won: ours rolled back.
            replayed = replay()
            if replayed is None:
                raise
            return replayed
    finally:
        guard.release()


# --- PostgreSQL: ONE call of ledgerx_batch_apply (transactions/engine/sql/batches.sql) ----------


def _postgres_run(
    *, actor, endpoint: str, key: str, fingerprint: str, items: list[BatchItem], atomic: bool, batch: bool,
    pin: str | None, replay,
):
    """The request on PostgreSQL: the PIN as singles check it, then one call of the function (its own transaction).

    A PIN proven from the cache (``pin_proven``) needs no step of its own: the
    function claims the key first. Otherwise the key is claimed and probed
    (a bound key replays without bcrypt), then ``pin_verify``. The function
    refuses in ``engine.codes`` order; its refusals become the same
    exceptions the SQLite path raises.
    """
    guard = _in_flight_guard(actor, endpoint, key)
    try:
        if pin is not None and not pin_proven(user=actor, pin=pin):
            if guard.claim_and_probe(user=actor, endpoint=endpoint, key=key):
                replayed = replay()
                if replayed is not None:
                    return replayed
            pin_verify(user=actor, pin=pin)
        else:
            guard.claim()
        for attempt in (1, 2):
            try:
                row = engine.batch_call(actor=actor, endpoint=endpoint, key=key, fingerprint=fingerprint,
                                        items=items, atomic=atomic, batch=batch, guard=guard)
            except engine.KeyBound:
                replayed = replay()
                if replayed is None:
                    raise AssertionError("the key was bound, yet its record is gone") from None
                return replayed
            except SystemAccountMissing as missing:
                # A needed shard is missing (a currency's first use) or its id is stale (a test
                # database flushed under this process): make sure of them, try once more.
                if attempt == 2:
                    raise
                system_shards_forget()
                engine.no_shards.clear()
                system_accounts_ensure(currency=missing.args[0])
                continue
            except IntegrityError:
                # The key was bound meanwhile by a duplicate that won: ours rolled back.
                replayed = replay()
                if replayed is None:
                    raise
                return replayed
            guard.written()
            return engine.outcome_of(actor=actor, row=row, atomic=atomic, batch=batch)
        raise AssertionError("unreachable")
    finally:
        guard.release()


def _replay(actor, key: str, fingerprint: str) -> BatchOutcome | None:
    record = _record_find(user=actor, endpoint=ENDPOINT, key=key)
    if record is None:
        return None
    if record.fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    batch = Batch.objects.get(pk=record.response_body["id"])
    return BatchOutcome(batch=batch, status=record.response_status, body=record.response_body, replayed=True)
