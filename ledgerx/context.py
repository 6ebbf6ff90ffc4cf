"""Per-request context (request id, client IP) visible to logs and audit records.

Middleware sets it at the edge; services read it without taking a request
argument, so the same service writes the same audit record whether it is called
from the API, the admin or a management command (where both are None).
"""

from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
client_ip_var: ContextVar[str | None] = ContextVar("client_ip", default=None)
user_id_var: ContextVar[str | None] = ContextVar("user_id", default=None)


def current_request_id() -> str | None:
    return request_id_var.get()


def current_client_ip() -> str | None:
    return client_ip_var.get()
