"""Identity errors: each carries the contract's stable code and HTTP status."""

from ledgerx.exceptions import LedgerXError


class InvalidCredentials(LedgerXError):
    code = "invalid_credentials"
    status = 401
    default_message = "The email or password is incorrect."


class TokenInvalid(LedgerXError):
    code = "token_invalid"
    status = 401
    default_message = "The token is invalid, expired or revoked."


class PinNotSet(LedgerXError):
    code = "pin_not_set"
    status = 403
    default_message = "Set a transaction PIN before moving money."


class InvalidPin(LedgerXError):
    """Rendered with ``attempts_remaining`` inside the error object."""

    code = "invalid_pin"
    status = 403
    default_message = "The transaction PIN is incorrect."

    def __init__(self, message: str | None = None, *, attempts_remaining: int):
        super().__init__(message, attempts_remaining=attempts_remaining)
        self.attempts_remaining = attempts_remaining


class UserSuspended(LedgerXError):
    code = "user_suspended"
    status = 403
    default_message = "This user is suspended; money cannot be moved until an administrator reinstates it."


class WeakPin(LedgerXError):
    code = "weak_pin"
    status = 400
    default_message = "This PIN is too easy to guess; avoid repeated digits and runs like 1234."


class EmailTaken(LedgerXError):
    code = "email_taken"
    status = 409
    default_message = "A user with this email already exists."
