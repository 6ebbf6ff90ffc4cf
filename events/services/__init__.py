"""Events and webhook endpoints: what the outbox is written with, and the endpoints' changes.

``recording`` writes events in the transaction of the change they record
(its module note says how, on each database); ``representations`` are the
objects as the API shows them, which events carry; ``addresses`` is where a
webhook may be sent; ``endpoints`` are the owners' changes to their endpoints.

The names below stay importable from the package because modules that other
owners edit import them from here (the movement engine, the accounts
services, the events admin); everything else imports from the submodules.
"""

from events.services.endpoints import delivery_retry, endpoint_update
from events.services.recording import (
    PendingEvent,
    events_statement_ctes,
    events_write,
    pending_event,
    transaction_event,
    user_event_record,
)

__all__ = [
    "PendingEvent",
    "delivery_retry",
    "endpoint_update",
    "events_statement_ctes",
    "events_write",
    "pending_event",
    "transaction_event",
    "user_event_record",
]
