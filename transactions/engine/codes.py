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

# The refusals each kind of movement can meet: a deposit's and a withdrawal's
# other side is a system account (never frozen, never short, never over the
# customer balance limit), and only a transfer names two accounts. The OpenAPI
# schema declares each money endpoint's errors from this table.
KIND_REFUSALS: dict[str, tuple[str, ...]] = {
    "deposit": ("in_progress", "user_suspended", "not_found", "account_frozen:destination", "balance_limit"),
    "withdrawal": ("in_progress", "user_suspended", "not_found", "account_frozen:source", "insufficient_funds"),
    "transfer": tuple(code for code in PRECEDENCE if code not in ("key_bound", "quote_expired")),
    "conversion": tuple(code for code in PRECEDENCE if code != "key_bound"),
}

assert all(set(codes) <= set(REFUSALS) for codes in KIND_REFUSALS.values())


def refusal(code: str) -> LedgerXError:
    """The exception of a refusal code. Raises KeyError for a code not in ``PRECEDENCE``."""
    return REFUSALS[code]()


# An item's refusals whose message says more than its code's default. Both paths use them:
# the Python rules raise them, and the SQL function takes ``ITEM_ERRORS`` to write a
# non-atomic batch's per-item errors (and an atomic one's message) exactly as Python would.
QUOTE_NOT_FOUND = "No such quote."
QUOTE_USED = "The quote was already used; ask for a new one."
QUOTE_CURRENCIES = "The quote converts %s to %s; the accounts hold %s and %s."  # its currencies, then the accounts'

_VARIANTS = {
    "not_found:quote": lambda: NotFound(QUOTE_NOT_FOUND),
    "quote_expired:used": lambda: QuoteExpired(QUOTE_USED),
    "currency_mismatch:quote": lambda: CurrencyMismatch(QUOTE_CURRENCIES),
}

# {code or variant: {"code": the public error code, "message": its message}}: every item-level refusal.
ITEM_ERRORS: dict[str, dict] = {
    name: {"code": error.code, "message": error.message}
    for name, error in (
        [(code, refusal(code)) for code in PRECEDENCE[PRECEDENCE.index("not_found"):]]
        + [(name, make()) for name, make in _VARIANTS.items()]
    )
}


def refusal_variant(name: str, *args) -> LedgerXError:
    """The exception of a refusal or one of its variants (``_VARIANTS``), its message formatted with ``args``."""
    error = _VARIANTS[name]() if name in _VARIANTS else refusal(name)
    if args:
        error.message = error.message % args
        error.args = (error.message,)
    return error
