"""System accounts: the funding, payouts and FX pool shards of each currency.

Each role has ``settings.LEDGER_SYSTEM_SHARDS`` rows per currency (the FX
pools ``settings.LEDGER_FX_POOL_SHARDS``) and a movement picks one at random,
so deposits, withdrawals and conversions do not all wait for the lock of one
hot row (``ledger.models``).
"""

import random
import uuid

from django.conf import settings
from django.db import IntegrityError, transaction

from ledger.models import LedgerAccount


def system_shard_count(role: str) -> int:
    """How many rows each currency's system account of ``role`` is split into."""
    if role == LedgerAccount.SystemRole.FX_POOL:
        return max(1, settings.LEDGER_FX_POOL_SHARDS)
    return max(1, settings.LEDGER_SYSTEM_SHARDS)



class SystemAccountMissing(Exception):
    """Internal: the system shards of a currency do not exist yet (see ``system_accounts_ensure``)."""


def system_accounts_ensure(*, currency: str) -> None:
    """Create the shards of every system role of ``currency`` that are missing.

    Runs outside any money transaction (callers catch SystemAccountMissing,
    call this, and retry). The unique constraint on (currency, role, shard)
    makes concurrent first uses converge.
    """
    for role in LedgerAccount.SystemRole.values:
        existing = set(
            LedgerAccount.objects.filter(kind=LedgerAccount.Kind.SYSTEM, currency=currency, system_role=role).values_list(
                "shard", flat=True
            )
        )
        for shard in range(system_shard_count(role)):
            if shard in existing:
                continue
            try:
                with transaction.atomic():
                    LedgerAccount.objects.create(
                        kind=LedgerAccount.Kind.SYSTEM,
                        system_role=role,
                        shard=shard,
                        currency=currency,
                        number=f"SYS-{currency}-{role[:3].upper().rstrip('_')}-{shard:02d}",
                        name=f"System {role} {currency} #{shard}",
                    )
            except IntegrityError:  # created concurrently
                pass


_shard_ids: dict[tuple[str, str], list] = {}


def system_shard_pick(*, currency: str, role: str) -> uuid.UUID:
    """The id of one shard of a system account, chosen at random (no lock taken).

    The ids are read once per process and kept: system accounts are never
    deleted or renumbered. Raises SystemAccountMissing when the currency has no
    shards yet (callers ensure them and retry); a caller whose write then finds
    the id gone (a test database flushed under a long-lived process) calls
    ``system_shards_forget`` and retries.
    """
    ids = _shard_ids.get((currency, role))
    if not ids:
        ids = list(
            LedgerAccount.objects.filter(kind=LedgerAccount.Kind.SYSTEM, currency=currency, system_role=role)
            .order_by("shard")
            .values_list("pk", flat=True)
        )
        if not ids:
            raise SystemAccountMissing(currency)
        _shard_ids[(currency, role)] = ids
    return random.choice(ids)


def system_shards_forget() -> None:
    _shard_ids.clear()
