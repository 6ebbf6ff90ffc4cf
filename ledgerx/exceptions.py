"""The root of LedgerX's typed errors.

Every business error is a subclass carrying a stable ``code`` and HTTP
``status``; one exception handler (``ledgerx.api.errors``) renders them in the
contract's envelope. Domain modules raise these and never import DRF.
"""

from typing import Any


class LedgerXError(Exception):
    code: str = "internal_error"
    status: int = 500
    default_message: str = "An unexpected error occurred."

    def __init__(self, message: str | None = None, *, fields: dict[str, list[str]] | None = None, **extra: Any):
        self.message = message or self.default_message
        self.fields = fields
        # Extra keys rendered inside the error object, e.g. attempts_remaining.
        self.extra = extra
        super().__init__(self.message)


class ValidationFailed(LedgerXError):
    code = "validation_error"
    status = 400
    default_message = "The request is invalid."


class NotFound(LedgerXError):
    code = "not_found"
    status = 404
    default_message = "Not found."


class Forbidden(LedgerXError):
    code = "forbidden"
    status = 403
    default_message = "You do not have permission to perform this action."


class InvalidState(LedgerXError):
    code = "invalid_state"
    status = 409
    default_message = "The object is not in a state that allows this action."


class ServiceUnavailable(LedgerXError):
    code = "service_unavailable"
    status = 503
    default_message = "A dependency is unavailable; try again shortly."


class RateLimited(LedgerXError):
    code = "rate_limited"
    status = 429
    default_message = "Too many requests."

    def __init__(self, retry_after: int, message: str | None = None):
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))


# The HTTP layer's own answers. Nothing in the domain raises them: the error
# renderer (``ledgerx.api.errors``) answers with their code and status, and the
# OpenAPI schema (``ledgerx.api.openapi``) declares them from the same classes.


class NotAuthenticated(LedgerXError):
    code = "not_authenticated"
    status = 401
    default_message = "Authentication credentials were not provided."


class MethodNotAllowed(LedgerXError):
    code = "method_not_allowed"
    status = 405
    default_message = "The path does not support this method."


class NotAcceptable(LedgerXError):
    code = "not_acceptable"
    status = 406
    default_message = "The Accept header names no type the API serves (it serves application/json)."


class PayloadTooLarge(LedgerXError):
    code = "payload_too_large"
    status = 413
    default_message = "The request body is too large."


class InternalError(LedgerXError):
    """The default of ``LedgerXError``, named: what an unexpected failure answers."""
