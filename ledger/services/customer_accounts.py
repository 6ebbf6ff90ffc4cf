"""Customer accounts: opening, naming, freezing.

Account numbers are 12 digits with a Luhn check digit, so a number read out
with a typo is caught before it reaches a query. Every change to what the
account endpoint shows bumps ``version`` under the row lock, so the account
cache follows (``postings.account_cache_after_commit``).
"""

import secrets

from django.conf import settings
from django.db import transaction

from accounts.services import backoffice_actor_check
from audit.models import AuditAction
from audit.services.records import audit_record
from events.models import EventType
from events.services.recording import account_event_record
from ledger.models import LedgerAccount
from ledger.money import currency_supported
from ledger.services.postings import account_cache_after_commit
from ledger.services.system import system_accounts_ensure
from ledgerx.exceptions import InvalidState, ValidationFailed
from ledgerx.text import reason_clean, text_error

_NUMBER_ATTEMPTS = 5


def _luhn_digit(digits: str) -> str:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def _account_number_new() -> str:
    """12 digits: 11 random + a Luhn check digit (catches typos when read out)."""
    body = f"{secrets.randbelow(10**11):011d}"
    return body + _luhn_digit(body)


def _name_check(name) -> None:
    """An account's display name: a string up to the column's length. Raises ValidationFailed."""
    limit = LedgerAccount._meta.get_field("name").max_length
    if not isinstance(name, str) or len(name) > limit:
        raise ValidationFailed(fields={"name": [f"Must be a string of at most {limit} characters."]})
    error = text_error(name)
    if error:
        raise ValidationFailed(fields={"name": [error]})


def account_open(*, actor, owner, currency: str, name: str = "") -> LedgerAccount:
    """Open a customer account for ``owner``.

    Raises ValidationFailed for an unsupported currency or a name over 100 chars.
    """
    if not currency_supported(currency):
        raise ValidationFailed(fields={"currency": [f"Unsupported currency. Use one of: {', '.join(settings.CURRENCIES)}."]})
    _name_check(name)
    system_accounts_ensure(currency=currency)
    for _attempt in range(_NUMBER_ATTEMPTS):
        number = _account_number_new()
        if not LedgerAccount.objects.filter(number=number).exists():
            break
    with transaction.atomic(durable=True):
        account = LedgerAccount.objects.create(
            owner=owner, currency=currency, name=name, number=number, kind=LedgerAccount.Kind.CUSTOMER
        )
        audit_record(
            actor=actor,
            action=AuditAction.ACCOUNT_OPENED,
            target_type="ledger_account",
            target_id=account.pk,
            data={"owner": str(owner.pk), "currency": currency, "number": number, "name": name},
        )
    return account


_STATUS_EVENTS = {LedgerAccount.Status.FROZEN: EventType.ACCOUNT_FROZEN, LedgerAccount.Status.ACTIVE: EventType.ACCOUNT_UNFROZEN}


def _account_status_set(*, actor, account: LedgerAccount, reason: str, new: str, action: AuditAction) -> LedgerAccount:
    reason = reason_clean(reason)
    backoffice_actor_check(actor)
    with transaction.atomic(durable=True):
        locked = LedgerAccount.objects.select_for_update().get(pk=account.pk)
        if locked.kind != LedgerAccount.Kind.CUSTOMER:
            raise InvalidState(f"System accounts cannot be {'frozen' if new == LedgerAccount.Status.FROZEN else 'unfrozen'}.")
        if locked.status == new:
            raise InvalidState(f"The account is already {new}.")
        old = locked.status
        locked.status = new
        locked.version += 1
        locked.save(update_fields=["status", "version"])
        account_cache_after_commit([locked])
        audit_record(
            actor=actor,
            action=action,
            target_type="ledger_account",
            target_id=locked.pk,
            data={"reason": reason, "old_status": old, "new_status": new},
        )
        account_event_record(type=_STATUS_EVENTS[new], account=locked)
    account.status, account.version = locked.status, locked.version
    return locked


def account_rename(*, account: LedgerAccount, name: str) -> LedgerAccount:
    """Give ``account`` a new display name (the back office's only edit of an account).

    Under the row lock, with a version bump like every change to what the
    account endpoint shows, so the cached account follows. Runs in the
    caller's transaction (the admin's change view, which also audits the edit).
    """
    _name_check(name)
    with transaction.atomic():
        locked = LedgerAccount.objects.select_for_update().get(pk=account.pk)
        locked.name = name
        locked.version += 1
        locked.save(update_fields=["name", "version"])
        account_cache_after_commit([locked])
    account.name, account.version = locked.name, locked.version
    return locked


def account_freeze(*, actor, account: LedgerAccount, reason: str) -> LedgerAccount:
    """Freeze: the account can neither send nor receive. Raises InvalidState if already frozen."""
    return _account_status_set(
        actor=actor, account=account, reason=reason, new=LedgerAccount.Status.FROZEN, action=AuditAction.ACCOUNT_FROZEN
    )


def account_unfreeze(*, actor, account: LedgerAccount, reason: str) -> LedgerAccount:
    """Unfreeze. Raises InvalidState if the account is active."""
    return _account_status_set(
        actor=actor, account=account, reason=reason, new=LedgerAccount.Status.ACTIVE, action=AuditAction.ACCOUNT_UNFROZEN
    )
