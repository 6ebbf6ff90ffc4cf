"""The refusals of a movement, in the order they are checked.

Like TigerBeetle's ``create_transfers`` result codes, the precedence is part
of the contract: when several rules would refuse a movement, the first one in
``PRECEDENCE`` is the answer, on every database. The request-level refusals
come first (they are decided before any account is looked at), then the
item-level ones, evaluated under the account locks:

1. ``key_bound``        the Idempotency-Key is bound already: replay (or 422 if the request differs)
2. ``in_progress``      the same key is running elsewhere: 409 idempotency_in_progress
3. ``user_suspended``   the actor is not active (checked under FOR SHARE of the user row)
4. ``not_found``        an account is unknown, not a customer account, or not the actor's to debit
5. ``same_account``     a transfer to its own source
6. ``currency_mismatch`` the two sides hold different currencies (a conversion: not the quote's two)
7. ``quote_expired``    a conversion's quote was used already or has expired (checked under its row lock)
8. ``account_frozen:source``       the debited customer account is frozen
9. ``account_frozen:destination``  the credited customer account is frozen
10. ``insufficient_funds`` the debited customer account's available balance is below the amount
11. ``balance_limit``   a balance would pass ``ledger.exceptions.BALANCE_LIMIT``

``key_bound`` is internal (the caller replays); every other code maps to one
typed exception through ``REFUSALS``, used by the Python path and to translate
the SQL function's refusals (SQLSTATE LX000, the code as message).
"""

from accounts.exceptions import UserSuspended
from fx.exceptions import QuoteExpired
from ledger.exceptions import AccountFrozen, BalanceLimit, CurrencyMismatch, InsufficientFunds, SameAccount
from ledgerx.exceptions import LedgerXError, NotFound
from transactions.exceptions import IdempotencyInProgress

PRECEDENCE = (
    "key_bound",
    "in_progress",
    "user_suspended",
    "not_found",
    "same_account",
    "currency_mismatch",
    "quote_expired",
    "account_frozen:source",
    "account_frozen:destination",
    "insufficient_funds",
    "balance_limit",
)


def _frozen(side: str):
    def make() -> AccountFrozen:
        return AccountFrozen(f"The {side} account is frozen and can neither send nor receive money.")

    return make


REFUSALS: dict[str, type[LedgerXError] | object] = {
    "in_progress": IdempotencyInProgress,
    "user_suspended": UserSuspended,
    "not_found": NotFound,
    "same_account": SameAccount,
    "currency_mismatch": CurrencyMismatch,
    "quote_expired": QuoteExpired,
    "account_frozen:source": _frozen("source"),
    "account_frozen:destination": _frozen("destination"),
    "insufficient_funds": InsufficientFunds,
    "balance_limit": BalanceLimit,
}

assert set(REFUSALS) == set(PRECEDENCE) - {"key_bound"}


def refusal(code: str) -> LedgerXError:
    """The exception of a refusal code. Raises KeyError for a code not in ``PRECEDENCE``."""
    return REFUSALS[code]()
