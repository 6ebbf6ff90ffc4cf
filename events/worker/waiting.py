"""PostgreSQL: an idle worker waits for a NOTIFY of new deliveries instead of only polling."""

from datetime import timedelta

from django.db import connection
from django.utils import timezone

from events.models import DeliveryWaiter

WAKE_CHANNEL = "ledgerx_deliveries"
WAIT_GRACE = timedelta(seconds=1)  # a waiter stays announced a little past its wait: the next pass


def deliveries_wait(*, worker_id: str, timeout: float) -> bool:
    """PostgreSQL: wait up to ``timeout`` seconds for a NOTIFY of a new delivery; True if one came.

    The worker LISTENs on its own connection, then announces that it waits
    (``DeliveryWaiter``): only then does the database notify (trigger of
    ``events/0006``), since PostgreSQL serializes the commits of notifying
    transactions and a busy system, whose workers never wait, should not pay
    for that. A notification is only a hint to look now; a delivery committed
    around the announcement may go unannounced and waits for the timeout, as
    with polling alone. Raises DatabaseError when the connection fails.
    """
    until = timezone.now() + timedelta(seconds=timeout) + WAIT_GRACE
    with connection.cursor() as cursor:
        cursor.execute(f"LISTEN {WAKE_CHANNEL}")
        cursor.execute(
            'INSERT INTO "events_deliverywaiter" ("worker_id", "until") VALUES (%s, %s) '
            'ON CONFLICT ("worker_id") DO UPDATE SET "until" = EXCLUDED."until"',
            [worker_id, until],
        )
    with connection.wrap_database_errors:
        for _notify in connection.connection.notifies(timeout=timeout, stop_after=1):
            return True
    return False


def deliveries_wait_end(*, worker_id: str) -> None:
    """The worker stops waiting for good (it is shutting down): writers need not notify it any more."""
    DeliveryWaiter.objects.filter(worker_id=worker_id).delete()
