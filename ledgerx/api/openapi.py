"""The OpenAPI schema as the contract SDK generators read: drf-spectacular's postprocessing hook.

The views describe their bodies; this hook adds what a generated client needs
to handle every answer, from the tables the server itself answers from:

- ``OPERATIONS`` names, per operation, the typed errors (``LedgerXError``
  classes, and the movement engine's refusals from
  ``transactions.engine.codes.KIND_REFUSALS``) it can give. The error renderer
  answers with those classes' code and status, so each error response's
  ``code`` enum and description are generated from the same classes; the layers
  every request passes (405, 406, 413, 429, 500, 503, authentication, paging)
  are added here once. An operation missing from the table fails schema
  generation.
- Headers: ``X-Request-ID`` on every request and response, ``Retry-After`` on
  429 and 503, ``WWW-Authenticate`` on 401, ``Location`` on 201,
  ``Idempotency-Key``/``Idempotent-Replayed`` on the money POSTs.
- ``cursor`` and ``page_size`` on every list; constraints the services enforce
  (PIN pattern, currencies, int64 amounts and balances); a summary and
  request/response examples on every operation.
"""

from dataclasses import dataclass

from django.conf import settings

from accounts.exceptions import (
    EmailTaken,
    InvalidCredentials,
    InvalidPin,
    PinNotSet,
    TokenInvalid,
    UserSuspended,
    WeakPin,
)
from accounts.services import PIN_PATTERN
from ledger.exceptions import AccountFrozen, BalanceLimit, InsufficientFunds
from ledgerx.api.middleware import REQUEST_ID_PATTERN
from ledgerx.api.pagination import PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX
from ledgerx.text import NO_NUL_PATTERN
from ledgerx.exceptions import (
    Forbidden,
    InternalError,
    InvalidState,
    LedgerXError,
    MethodNotAllowed,
    NotAcceptable,
    NotAuthenticated,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServiceUnavailable,
    ValidationFailed,
)
from transactions.engine.codes import KIND_REFUSALS, refusal
from transactions.exceptions import IdempotencyKeyRequired, IdempotencyKeyReused
from transactions.idempotency import IDEMPOTENCY_KEY_PATTERN

Errors = tuple[type[LedgerXError], ...]


def _engine(kind: str) -> Errors:
    """The movement engine's refusals for one kind of movement, as their typed errors."""
    return tuple(type(refusal(code)) for code in KIND_REFUSALS[kind])


_KEY = (ValidationFailed, IdempotencyKeyRequired, IdempotencyKeyReused)
_PIN = (PinNotSet, InvalidPin)
# Every back-office action: a reason (400), an admin role (403), an active admin (403), a target (404).
_BACKOFFICE_ACTION = (ValidationFailed, Forbidden, UserSuspended, NotFound, InvalidState)


@dataclass(frozen=True)
class Operation:
    summary: str
    errors: Errors = ()
    list: bool = False  # cursor-paginated: ?cursor (404 when invalid) and ?page_size (400 when invalid)
    created: str | None = None  # what a 201's Location names


OPERATIONS: dict[str, Operation] = {
    # identity
    "auth_register": Operation("Register a customer", (ValidationFailed, EmailTaken), created="`me`, once logged in"),
    "auth_login": Operation("Log in: an access and a refresh token", (ValidationFailed, InvalidCredentials)),
    "auth_refresh": Operation("Rotate a refresh token", (ValidationFailed, TokenInvalid)),
    "auth_logout": Operation("Revoke a refresh token", (ValidationFailed,)),
    "me_retrieve": Operation("The authenticated user"),
    "me_password_update": Operation("Change the password", (ValidationFailed, InvalidCredentials)),
    "me_pin_update": Operation("Set or replace the transaction PIN", (ValidationFailed, WeakPin, InvalidCredentials)),
    # accounts
    "accounts_list": Operation("List your accounts", list=True),
    "accounts_create": Operation("Open an account", (ValidationFailed,), created="the account"),
    "accounts_retrieve": Operation("Read one of your accounts", (NotFound,)),
    "accounts_balance_as_of": Operation("Posted balance at a moment", (ValidationFailed, NotFound)),
    "accounts_entries": Operation("An account's statement", (NotFound,), list=True),
    # money
    "deposits_create": Operation("Deposit into your account", (*_KEY, *_engine("deposit")), created="the transaction"),
    "withdrawals_create": Operation(
        "Withdraw from your account", (*_KEY, *_PIN, *_engine("withdrawal")), created="the transaction"
    ),
    "transfers_create": Operation(
        "Transfer to any account of the same currency", (*_KEY, *_PIN, *_engine("transfer")), created="the transaction"
    ),
    "batches_create": Operation("Apply a batch of movements", (*_KEY, *_PIN, *_engine("transfer")), created="the batch"),
    "batches_list": Operation("List your batches", list=True),
    "batches_retrieve": Operation("Read one of your batches", (NotFound,)),
    "conversions_create": Operation(
        "Convert between two of your accounts at a quote", (*_KEY, *_PIN, *_engine("conversion")),
        created="the conversion transaction",
    ),
    "fx_quotes_create": Operation(
        "A firm quote for a conversion", (ValidationFailed, InvalidState),
        created="where quotes are made (a quote is used by `POST conversions`, not read back)",
    ),
    "transactions_list": Operation("List your transactions", (ValidationFailed,), list=True),
    "transactions_retrieve": Operation("Read one of your transactions", (NotFound,)),
    "transactions_commit": Operation(
        "Commit a pending hold", (NotFound, Forbidden, UserSuspended, InvalidState, AccountFrozen, BalanceLimit)
    ),
    "transactions_void": Operation("Void a pending hold", (NotFound, Forbidden, InvalidState)),
    # back office
    "admin_accounts_freeze": Operation("Freeze a customer account (admin)", _BACKOFFICE_ACTION),
    "admin_accounts_unfreeze": Operation("Unfreeze a customer account (admin)", _BACKOFFICE_ACTION),
    "admin_transactions_reverse": Operation(
        "Reverse a committed transaction (admin)",
        (*_BACKOFFICE_ACTION, InsufficientFunds, BalanceLimit),
        created="the reversal transaction",
    ),
    "admin_users_suspend": Operation("Suspend a user (admin)", _BACKOFFICE_ACTION),
    "admin_users_reinstate": Operation("Reinstate a suspended user (admin)", _BACKOFFICE_ACTION),
    "admin_approvals_list": Operation("List four-eyes approval requests (admin)", (ValidationFailed, Forbidden), list=True),
    "admin_approvals_approve": Operation(
        "Approve a request and carry out its action (admin)", (*_BACKOFFICE_ACTION, InsufficientFunds, BalanceLimit)
    ),
    "admin_approvals_reject": Operation("Reject a request (admin; the requester may withdraw their own)", _BACKOFFICE_ACTION),
    "admin_audit_list": Operation("List audit records (admin)", (ValidationFailed, Forbidden), list=True),
    "admin_fx_rates_list": Operation("List the FX rates (admin)", (Forbidden,)),
    "admin_fx_rates_set": Operation("Set a currency pair's mid rate and spread (admin)", (ValidationFailed, Forbidden, UserSuspended)),
    # events and webhooks
    "events_list": Operation("List your events", (ValidationFailed,), list=True),
    "events_retrieve": Operation("Read one event", (NotFound,)),
    "webhook_endpoints_list": Operation("List your webhook endpoints", list=True),
    "webhook_endpoints_create": Operation("Add a webhook endpoint", (ValidationFailed,), created="the endpoint"),
    "webhook_endpoints_retrieve": Operation("Read a webhook endpoint", (NotFound,)),
    "webhook_endpoints_update": Operation("Change a webhook endpoint", (ValidationFailed, NotFound)),
    "webhook_endpoints_destroy": Operation("Delete a webhook endpoint", (NotFound,)),
    "webhook_endpoints_rotate_secret": Operation("Rotate a webhook endpoint's secret", (NotFound,)),
    "webhook_deliveries_list": Operation("List an endpoint's deliveries", (NotFound,), list=True),
    "webhook_deliveries_retry": Operation("Retry a delivery now", (NotFound, InvalidState)),
}

# What every request can meet, whatever the operation: the method (405) and the
# Accept header (406) are checked before the view, rate limits (429) apply to
# every operation, and the database can fail (503) or the code (500).
_EVERYWHERE: Errors = (MethodNotAllowed, NotAcceptable, RateLimited, InternalError, ServiceUnavailable)
_AUTHENTICATED: Errors = (NotAuthenticated, TokenInvalid)
_LIST: Errors = (ValidationFailed, NotFound)  # page_size, cursor
_WITH_BODY = ("post", "put", "patch")

_WHY = {
    "validation_error": "a malformed body or a bad field or parameter (see `fields`)",
    "not_found": "no such object, or not yours",
}
_LIST_WHY = {
    "validation_error": f"`page_size` is not an integer from 1 to {PAGE_SIZE_MAX}",
    "not_found": "the cursor is invalid",
}


def _why(kind: type[LedgerXError], operation: Operation) -> str:
    """When ``kind`` answers this operation, for its error response's description."""
    why = _WHY.get(kind.code) or kind.default_message.rstrip(".")
    if not operation.list or kind.code not in _LIST_WHY:
        return why
    return f"{why}, or {_LIST_WHY[kind.code]}" if kind in operation.errors else _LIST_WHY[kind.code]



_HEADERS = {
    "X-Request-ID": {
        "description": "The request's id, in logs and audit records: the request's own `X-Request-ID` when it is "
        "1-128 characters of `A-Z a-z 0-9 . _ : -`, else a new UUID.",
        "required": True,
        "schema": {"type": "string", "pattern": REQUEST_ID_PATTERN},
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    },
    "WWW-Authenticate": {
        "description": "`Bearer`: send `Authorization: Bearer <access token>`.",
        "required": True,
        "schema": {"type": "string", "enum": ["Bearer"]},
    },
    "Location": {
        "description": "The path of what was created.",
        "required": True,
        "schema": {"type": "string"},
    },
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored response of an earlier request with the same key "
        "(byte for byte); absent on a first answer.",
        "schema": {"type": "string", "enum": ["true"]},
    },
}


def _header(name: str) -> dict:
    return {"$ref": f"#/components/headers/{name}"}


def _camel(code: str) -> str:
    return "".join(part.capitalize() for part in code.split("_"))


def _errors_by_status(operation: Operation, *, authenticated: bool, method: str) -> dict[int, dict[str, str]]:
    """status -> {code: why}, in declaration order: every error this operation can answer."""
    kinds: list[type[LedgerXError]] = list(operation.errors)
    if operation.list:
        kinds += _LIST
    if authenticated:
        kinds += _AUTHENTICATED
    if method in _WITH_BODY:
        kinds.append(PayloadTooLarge)
    kinds += _EVERYWHERE
    statuses: dict[int, dict[str, str]] = {}
    for kind in kinds:
        statuses.setdefault(kind.status, {}).setdefault(kind.code, _why(kind, operation))
    return dict(sorted(statuses.items()))


def _error_component(codes: list[str], *, batch: bool) -> tuple[str, dict]:
    name = ("BatchItem" if batch else "") + "Or".join(_camel(code) for code in codes)
    name = name if name.endswith("Error") else name + "Error"
    error = {
        "type": "object",
        "required": ["code", "message"],
        "properties": {
            "code": {"type": "string", "enum": codes},
            "message": {"type": "string", "description": "For people; may change. Branch on `code`."},
        },
    }
    if "validation_error" in codes:
        error["properties"]["fields"] = {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
            "description": "Only on validation_error: field name -> messages.",
        }
    if "invalid_pin" in codes:
        error["properties"]["attempts_remaining"] = {
            "type": "integer",
            "minimum": 0,
            "description": "Only on invalid_pin: wrong PINs left before suspension.",
        }
    if batch:
        error["properties"]["index"] = {
            "type": "integer",
            "minimum": 0,
            "description": "An atomic batch's refused item (its position in `items`).",
        }
    return name, {"type": "object", "required": ["error"], "properties": {"error": error}}


def _error_example(code: str, why: str) -> dict:
    error = {"code": code, "message": why[:1].upper() + why[1:] + "."}
    if code == "validation_error":
        error["fields"] = {"amount": ["Must be greater than 0 and at most 1000000000000000."]}
    if code == "invalid_pin":
        error["attempts_remaining"] = 2
    return {"error": error}


# --- examples -------------------------------------------------------------------------------

_EXAMPLE_STRINGS = {
    "email": "ada@example.com",
    "password": "analytical-engine-1843",
    "current_password": "analytical-engine-1843",
    "new_password": "difference-engine-1822",
    "full_name": "Ada Lovelace",
    "pin": "4826",
    "currency": "USD",
    "name": "main",
    "description": "Invoice 1843",
    "reason": "Customer asked in ticket 4711",
    "number": "1000000001",
    "url": "https://example.com/ledgerx-webhooks",
    "access": "eyJhbGciOiJIUzI1NiJ9.access",
    "refresh": "eyJhbGciOiJIUzI1NiJ9.refresh",
    "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "rate": "0.9210",
    "mid": "0.9250",
}
_EXAMPLE_FORMATS = {
    "uuid": "0192f1a4-7c3e-7d2a-9b1e-3f5c6a7b8c9d",
    "date-time": "2026-11-24T12:00:00Z",
    "uri": "https://api.example.com/api/v1/transactions?cursor=eyJkIjoibmV4dCJ9",
    "email": "ada@example.com",
    "ipv4": "203.0.113.7",
}


def _example(schema: dict, components: dict, name: str = "", depth: int = 0):
    """A value of ``schema`` for the docs, by the field's name and format."""
    if "$ref" in schema:
        return _example(components[schema["$ref"].rsplit("/", 1)[1]], components, name, depth)
    for combined in ("allOf", "oneOf", "anyOf"):
        if combined in schema:
            return _example(schema[combined][0], components, name, depth)
    if "enum" in schema:
        return next((value for value in schema["enum"] if value is not None), None)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        if depth > 4:
            return {}
        properties = schema.get("properties", {})
        return {key: _example(value, components, key, depth + 1) for key, value in properties.items()}
    if kind == "array":
        if name in ("results", "items") and depth <= 4:
            return [_example(schema.get("items", {}), components, "", depth + 1)]
        return []
    if kind == "integer":
        if name in ("amount", "posted", "available", "balance_after", "source_amount", "destination_amount"):
            return 1050
        if name == "page_size":
            return 50
        return max(schema.get("minimum", 0), 0)
    if kind == "boolean":
        return schema.get("default", False)
    if kind == "string":
        if schema.get("format") in _EXAMPLE_FORMATS:
            return _EXAMPLE_FORMATS[schema["format"]]
        return _EXAMPLE_STRINGS.get(name, "string")
    return None


# --- the hook -------------------------------------------------------------------------------


# The request fields that set a new password, checked against AUTH_PASSWORD_VALIDATORS.
_NEW_PASSWORD_FIELDS = {("RegisterInputRequest", "password"), ("PasswordChangeInputRequest", "new_password")}


def _password_policy() -> tuple[int | None, str]:
    """The minimum length and the rules' own help texts, from the validators that enforce them."""
    from django.contrib.auth.password_validation import MinimumLengthValidator, get_default_password_validators

    validators = get_default_password_validators()
    minimum = next((v.min_length for v in validators if isinstance(v, MinimumLengthValidator)), None)
    return minimum, " ".join(str(v.get_help_text()) for v in validators)


def _request_components(result: dict) -> None:
    """Constraints the services enforce, and optional request fields generators keep optional.

    openapi-typescript makes a property with a ``default`` required, so a request
    field's default moves into its description.
    """
    schemas = result["components"]["schemas"]
    password_min, password_rules = _password_policy()
    for name, schema in schemas.items():
        for key, prop in schema.get("properties", {}).items():
            # Every request string is refused with a NUL in it (DRF's fields, ``ledgerx.text.text_error``).
            if name.endswith("Request") and prop.get("type") == "string" and not {"format", "enum", "pattern"} & set(prop):
                prop["pattern"] = NO_NUL_PATTERN
            if (name, key) in _NEW_PASSWORD_FIELDS:
                if password_min:
                    prop["minLength"] = password_min
                prop["description"] = password_rules
            if key == "pin":
                prop["pattern"] = f"^{PIN_PATTERN}$"
            if key == "currency" and name.endswith("Request"):
                prop["enum"] = sorted(settings.CURRENCIES)
            if prop.get("type") == "integer" and key in ("amount", "posted", "pending", "available", "balance_after"):
                prop["format"] = "int64"
            if name.endswith("Request") and "default" in prop and key not in schema.get("required", []):
                default = prop.pop("default")
                text = repr(default).replace("'", '"') if not isinstance(default, bool) else str(default).lower()
                note = f"Default: {text}." if default not in ({}, []) else "Default: empty."
                prop["description"] = f"{prop.get('description', '').rstrip()} {note}".strip()
    # The one integer of an output whose range is the input's.
    for name in ("TransactionOutput",):
        if name in schemas:
            schemas[name]["properties"]["amount"].update(minimum=1, maximum=settings.MAX_AMOUNT)


def _parameters(op: dict, operation: Operation) -> None:
    params = [param for param in op.get("parameters", []) if param.get("name") not in ("cursor", "page_size")]
    if operation.list:
        params += [
            {
                "name": "cursor",
                "in": "query",
                "description": "Opaque: the `next` or `previous` link's value. An invalid one answers 404.",
                "schema": {"type": "string"},
            },
            {
                "name": "page_size",
                "in": "query",
                "description": f"Items per page, 1-{PAGE_SIZE_MAX} (default {PAGE_SIZE_DEFAULT}); anything else answers 400.",
                "schema": {"type": "integer", "minimum": 1, "maximum": PAGE_SIZE_MAX, "default": PAGE_SIZE_DEFAULT},
            },
        ]
    for param in params:
        if param.get("name") == "Idempotency-Key":
            param["schema"] = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": IDEMPOTENCY_KEY_PATTERN}
    params.append(
        {
            "name": "X-Request-ID",
            "in": "header",
            "description": "Your id for this request: echoed in the response when it is 1-128 characters of "
            "`A-Z a-z 0-9 . _ : -`, else replaced by a new UUID.",
            "schema": {"type": "string"},
        }
    )
    op["parameters"] = params


def postprocess(result, generator, request, public):
    """drf-spectacular POSTPROCESSING_HOOKS entry: see the module docstring."""
    components = result.setdefault("components", {})
    components.setdefault("headers", {}).update(_HEADERS)
    _request_components(result)
    schemas = components["schemas"]
    for path, methods in result["paths"].items():
        for method, op in methods.items():
            operation_id = op["operationId"]
            operation = OPERATIONS.get(operation_id)
            if operation is None:
                raise LookupError(f"{operation_id} ({method.upper()} {path}) is not in ledgerx.api.openapi.OPERATIONS")
            op["summary"] = operation.summary
            _parameters(op, operation)
            authenticated = any(requirement for requirement in op.get("security", []))
            responses = {code: body for code, body in op["responses"].items() if int(code) < 400}
            for code, body in responses.items():
                headers = body.setdefault("headers", {})
                if "Idempotent-Replayed" in headers:
                    headers["Idempotent-Replayed"] = _header("Idempotent-Replayed")
                if code == "201":
                    headers["Location"] = {**_header("Location")}
                    body["description"] = f"Created; `Location` names {operation.created}."
                headers["X-Request-ID"] = _header("X-Request-ID")
                body["description"] = body.get("description") or "OK."
                content = body.get("content", {}).get("application/json")
                if content and "schema" in content:
                    content["example"] = _example(content["schema"], schemas)
            statuses = _errors_by_status(operation, authenticated=authenticated, method=method)
            for status, found in statuses.items():
                codes = list(found)
                # An atomic batch answers a refused item's own error, with its index.
                batch = operation_id == "batches_create" and status in (400, 404, 409)
                name, schema = _error_component(codes, batch=batch)
                schemas.setdefault(name, schema)
                headers = {"X-Request-ID": _header("X-Request-ID")}
                if status in (429, 503):
                    headers["Retry-After"] = _header("Retry-After")
                if status == 401:
                    headers["WWW-Authenticate"] = _header("WWW-Authenticate")
                responses[str(status)] = {
                    "description": "; ".join(f"`{code}`: {why}" for code, why in found.items()) + ".",
                    "headers": headers,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": f"#/components/schemas/{name}"},
                            "examples": {code: {"value": _error_example(code, why)} for code, why in found.items()},
                        }
                    },
                }
            op["responses"] = responses
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body and "schema" in body:
                body["example"] = _example(body["schema"], schemas)
    return result

