"""Typed errors of currency conversion."""

from ledgerx.exceptions import LedgerXError


class QuoteExpired(LedgerXError):
    code = "quote_expired"
    status = 409
    default_message = "The quote has expired or was already used; ask for a new one."
