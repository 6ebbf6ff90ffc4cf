"""The batch engine on PostgreSQL: ONE call of ``ledgerx_batch_apply`` (``transactions/engine/sql/batches.sql``).

``batch_call`` sends the items as arrays by named arguments
(``engine.postgres.BATCH_PARAMETERS``), in autocommit its own transaction;
``outcome_of`` turns its one result row (the stored response, the changed
accounts' state) into the service's outcome, with the account cache, the
metrics and the audit sealer after commit. The function's refusals become
the exceptions the Python rules raise (``transactions.batches.orm``).
"""

import functools
import json
import uuid
from decimal import Decimal

from django.conf import settings
from django.db import DatabaseError, connection, transaction

from audit.models import AuditAction
from audit.services import audit_seal_after_commit
from events.models import EventType
from events.services import PendingEvent
from ledger.balance_cache import Snapshot, balance_cache_store
from ledger.exceptions import BalanceLimit
from ledger.services import SystemAccountMissing, system_shard_pick
from ledgerx.context import current_client_ip, current_request_id
from ledgerx.fastsql import prepared_cursor
from ledgerx.ids import uuid7
from ledgerx.observability import metrics, tracing
from transactions.batches.items import AUDIT_ACTIONS, BatchItem, BatchItemRefused, BatchOutcome, system_role
from transactions.engine import postgres as engine_call
from transactions.engine.codes import ITEM_ERRORS, refusal
from transactions.idempotency import MoneyOutcome
from transactions.models import Batch, Transaction
from transactions.movements import BALANCE_LIMIT_CONSTRAINT

_CONVERSION_FIELDS = ("source_amount", "destination_amount", "destination_currency", "quote")


class KeyBound(Exception):
    """Internal: the function found the key bound (replay it)."""


# (currency, role) found without shards: not asked again (a query each time) until an item needs one.
no_shards: set = set()


def _shard_candidates(items: list[BatchItem]) -> list:
    """One shard id per configured currency for each system role the items may need (no query once known).

    A currency without shards yet is left out; if an item needs it, the
    function answers system_missing and ``_postgres_run`` creates them.
    """
    roles = {system_role(item) for item in items} - {""}
    shards = []
    for role in sorted(roles):
        for currency in settings.CURRENCIES:
            if (currency, role) in no_shards:
                continue
            try:
                shards.append(system_shard_pick(currency=currency, role=role))
            except SystemAccountMissing:
                no_shards.add((currency, role))
    return shards


def batch_call(*, actor, endpoint, key, fingerprint, items, atomic, batch, guard) -> tuple:
    txn_ids = [uuid7() for _item in items]
    audit_ids = [uuid7() for _item in items]
    event_ids = [uuid7() for _item in items]
    call = engine_call.BatchCall(
        actor=actor, endpoint=endpoint, key=key, fingerprint=fingerprint, batch_id=uuid7() if batch else None,
        atomic=atomic, items=items, txn_ids=txn_ids, audit_ids=audit_ids, event_ids=event_ids,
        batch_event_id=uuid7() if batch else None, shards=_shard_candidates(items), hold_ttl=settings.HOLD_TTL,
        audit_actions=_AUDIT_ACTION_NAMES, errors=ITEM_ERRORS, audit_ip=_audit_context.ip,
        audit_request_id=_audit_context.request_id, lock_key=guard.lock_key, unlock_session=guard.session_locked,
    )
    params = engine_call.batch_call_params(call)
    try:
        with tracing.span("ledgerx.batch", **{"ledgerx.items": len(items)}):
            sent_ns = tracing.now_ns()
            if connection.in_atomic_block:  # tests: inside the test's transaction
                with transaction.atomic(durable=True), prepared_cursor() as cursor:
                    cursor.execute(engine_call.BATCH_CALL_SQL, params)
                    row = cursor.fetchone()
            else:  # autocommit: the one statement is the transaction
                with prepared_cursor() as cursor:
                    cursor.execute(engine_call.BATCH_CALL_SQL, params)
                    row = cursor.fetchone()
            tracing.span_measured("ledgerx.movement.lock_wait", start_ns=sent_ns, duration_ns=row[3] * 1000)
    except DatabaseError as exc:
        _raise_refusal(exc, batch=batch)
        raise
    return row


def _raise_refusal(exc: DatabaseError, *, batch: bool) -> None:
    """The function's refusals (SQLSTATE LX000: the code as message; an item's index as detail, its message as hint)."""
    cause = exc.__cause__
    if getattr(cause, "sqlstate", None) == "23514" and cause.diag.constraint_name == BALANCE_LIMIT_CONSTRAINT:
        raise BalanceLimit() from None
    if getattr(cause, "sqlstate", None) != "LX000":
        return
    code, detail, hint = cause.diag.message_primary, cause.diag.message_detail, cause.diag.message_hint
    if code == "key_bound":
        raise KeyBound() from None
    if code == "system_missing":
        raise SystemAccountMissing(detail) from None
    try:
        error = refusal(code)
    except KeyError:
        raise AssertionError(f"unknown refusal from {engine_call.BATCH_FUNCTION}: {code!r}") from exc
    if detail is None:  # a request-level refusal
        raise error from None
    if hint:
        error.message = hint
        error.args = (hint,)
    if batch:
        raise BatchItemRefused(index=int(detail), error=error) from None
    raise error from None


def outcome_of(*, actor, row: tuple, atomic: bool, batch: bool):
    body, changed, booked, _lock_wait_us = row
    body = json.loads(body) if isinstance(body, str) else body
    changed = json.loads(changed) if isinstance(changed, str) else changed
    snapshots = {uuid.UUID(pk): Snapshot(*state) for pk, *state in changed}
    if batch:
        made = [result["transaction"] for result in body["results"] if result["transaction"] is not None]
        events = [PendingEvent(type=EventType.TRANSACTION_CREATED, data=data, user_ids=()) for data in made]
        events.append(PendingEvent(type=EventType.BATCH_CREATED, data=body, user_ids=()))
    else:
        made = [body]
        events = [PendingEvent(type=EventType.TRANSACTION_CREATED, data=body, user_ids=())]
    if made:
        audit_seal_after_commit()
    transaction.on_commit(functools.partial(metrics.events_committed, events))
    transaction.on_commit(lambda: balance_cache_store(snapshots))
    if not batch:
        return MoneyOutcome(transaction=_transaction_of(actor, body, booked), status=201, body=body, replayed=False)
    outcome = Batch(
        id=uuid.UUID(body["id"]), owner=actor, atomic=atomic, status=body["status"], count=body["count"],
        succeeded=body["succeeded"], failed=body["failed"], created_at=booked,
        results=[{**result, "transaction": result["transaction"]["id"] if result["transaction"] else None}
                 for result in body["results"]],
    )
    outcome._state.adding, outcome._state.db = False, connection.alias
    return BatchOutcome(batch=outcome, status=201, body=body, replayed=False)


def _transaction_of(actor, body: dict, booked) -> Transaction:
    """The written transaction as a model instance, from its representation (no query)."""
    txn = Transaction(
        id=uuid.UUID(body["id"]), type=body["type"], status=body["status"], amount=body["amount"],
        currency=body["currency"], description=body["description"], metadata=body["metadata"],
        source_account_id=body["source_account"] and uuid.UUID(body["source_account"]),
        destination_account_id=body["destination_account"] and uuid.UUID(body["destination_account"]),
        initiated_by=actor, created_at=booked, committed_at=booked if body["committed_at"] else None,
        **{name: body[name] for name in _CONVERSION_FIELDS[:3] if name in body},
    )
    if "quote" in body:
        txn.quote_id = uuid.UUID(body["quote"])
        txn.rate = Decimal(body["rate"])
    txn._state.adding, txn._state.db = False, connection.alias
    return txn


class _AuditContext:
    """The request's client IP and id, as ``audit_record_unsaved`` records them."""

    @property
    def ip(self):
        ip = current_client_ip()
        return ip if ip not in (None, "unknown") else None

    @property
    def request_id(self) -> str:
        return current_request_id() or ""


_audit_context = _AuditContext()
_AUDIT_ACTION_NAMES = {**{str(kind): str(action) for kind, action in AUDIT_ACTIONS.items()}, "hold": str(AuditAction.HOLD_CREATED)}
