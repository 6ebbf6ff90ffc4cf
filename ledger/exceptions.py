"""Typed ledger errors; ``ledgerx.api.errors`` renders them in the contract's envelope."""

from ledgerx.exceptions import LedgerXError


class InsufficientFunds(LedgerXError):
    code = "insufficient_funds"
    status = 409
    default_message = "The account's available balance is too low for this amount."


class AccountFrozen(LedgerXError):
    code = "account_frozen"
    status = 409
    default_message = "The account is frozen and can neither send nor receive money."


BALANCE_LIMIT = 2**53 - 1  # the largest integer every JSON client reads exactly


class BalanceLimit(LedgerXError):
    code = "balance_limit"
    status = 409
    default_message = f"This movement would take the account's balance past {BALANCE_LIMIT} minor units."


class CurrencyMismatch(LedgerXError):
    code = "currency_mismatch"
    status = 400
    default_message = "The accounts hold different currencies."


class SameAccount(LedgerXError):
    code = "same_account"
    status = 400
    default_message = "Source and destination are the same account."


class UnbalancedEntry(LedgerXError):
    """A programming error: postings that do not sum to zero per currency."""

    code = "internal_error"
    status = 500
    default_message = "An unexpected error occurred."
