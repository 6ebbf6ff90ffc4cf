"""One pass (claim, then send), the periodic work, and the ``manage.py worker`` loop around them."""

import logging
import os
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, InterfaceError, close_old_connections, connection
from django.utils import timezone

from events.models import Delivery, DeliveryWaiter
from events.worker.claiming import deliveries_claim
from events.worker.sending import delivery_attempt
from events.worker.waiting import deliveries_wait, deliveries_wait_end

logger = logging.getLogger("ledgerx.events.worker")


def deliveries_run(*, worker_id: str, limit: int = 100, pool: ThreadPoolExecutor | None = None) -> int:
    """Claim and send one batch of due deliveries; returns how many were attempted.

    Without ``pool`` the deliveries are sent one after the other in this
    thread (tests, SQLite); with it, concurrently (the claim already holds
    each endpoint to ``PER_ENDPOINT``).
    """
    ids = deliveries_claim(worker_id=worker_id, limit=limit)
    if not ids:
        return 0
    # One query for the whole batch, in claim order (oldest due first, then the log's order).
    loaded = Delivery.objects.select_related("event", "endpoint").in_bulk(ids)
    claimed = [loaded[delivery_id] for delivery_id in ids if delivery_id in loaded]
    if pool is None:
        for delivery in claimed:
            delivery_attempt(delivery, worker_id=worker_id)
        return len(ids)

    def send(delivery):
        try:
            delivery_attempt(delivery, worker_id=worker_id)
        except Exception:  # one bad delivery must not stop the batch; its lease expires and it is retried
            logger.exception("delivery %s failed unexpectedly", delivery.pk)
        finally:
            close_old_connections()

    list(pool.map(send, claimed))
    return len(ids)


def deliveries_prune(*, now: datetime | None = None) -> int:
    """Delete finished deliveries older than ``settings.WEBHOOKS_DELIVERY_RETENTION_DAYS`` (events stay).

    Also forgets the waits of workers that died waiting (``DeliveryWaiter``).
    """
    now = now or timezone.now()
    DeliveryWaiter.objects.filter(until__lt=now).delete()
    cutoff = now - timedelta(days=settings.WEBHOOKS_DELIVERY_RETENTION_DAYS)
    return Delivery.objects.filter(created_at__lt=cutoff).exclude(status=Delivery.Status.PENDING).delete()[0]



def _periodic_tasks():
    from audit.services.sealing import audit_seal_pending
    from fx.services import quote_purge
    from transactions.services.holds import hold_expire
    from transactions.services.housekeeping import idempotency_purge

    return [
        ("expire_holds", 60, hold_expire),
        ("seal_audit", 60, lambda: audit_seal_pending(wait=False)),
        ("purge_idempotency", 3600, idempotency_purge),
        ("prune_deliveries", 3600, deliveries_prune),
        ("purge_fx_quotes", 3600, quote_purge),
    ]


class Worker:
    """The ``manage.py worker`` loop: deliveries as they come due, periodic work on its interval."""

    def __init__(self, *, concurrency: int = 8, poll: float = 0.2, batch: int = 100, periodic: bool = True, log=None):
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.concurrency, self.poll, self.batch = concurrency, poll, batch
        self.tasks = _periodic_tasks() if periodic else []
        self.next_run = {name: 0.0 for name, _every, _run in self.tasks}
        self.stopping = threading.Event()
        self.log = log or (lambda message: logger.info(message))
        # Idle: wait for a NOTIFY (PostgreSQL) at most ``poll`` seconds, else just sleep ``poll``.
        self.listen = settings.WEBHOOKS_LISTEN and connection.vendor == "postgresql"

    def periodic_run(self) -> None:
        for name, every, run in self.tasks:
            if time.monotonic() < self.next_run[name]:
                continue
            self.next_run[name] = time.monotonic() + every
            try:
                result = run()
                if result:
                    self.log(f"{name}: {result}")
            except Exception:  # the next interval tries again; the commands stay for operators
                logger.exception("periodic task %s failed", name)

    def run(self, *, once: bool = False) -> None:
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="webhook") if self.concurrency > 1 else None
        try:
            while not self.stopping.is_set():
                self.periodic_run()
                try:
                    sent = deliveries_run(worker_id=self.worker_id, limit=self.batch, pool=pool)
                except Exception:  # e.g. the database restarting: reconnect on the next pass
                    logger.exception("claiming deliveries failed; retrying")
                    close_old_connections()
                    connection.close()
                    sent = 0
                    self.stopping.wait(1)
                if once and not sent:
                    return
                if not sent:
                    self.idle_wait()
        finally:
            if self.listen:
                try:
                    deliveries_wait_end(worker_id=self.worker_id)
                except (DatabaseError, InterfaceError):  # its announcement simply expires
                    pass
            if pool is not None:
                _pool_close(pool, self.concurrency)

    def idle_wait(self) -> None:
        """Nothing was due: wait for a NOTIFY of new deliveries (PostgreSQL) or the poll interval."""
        if not self.listen:
            self.stopping.wait(self.poll)
            return
        try:
            deliveries_wait(worker_id=self.worker_id, timeout=self.poll)
        except (DatabaseError, InterfaceError):  # e.g. the database restarting: poll; the next pass reconnects
            logger.exception("waiting for deliveries failed; polling")
            connection.close()
            self.stopping.wait(self.poll)


def _pool_close(pool: ThreadPoolExecutor, size: int) -> None:
    """Close each pool thread's database connection, then the pool.

    A barrier of ``size`` makes every thread take exactly one of the closing tasks.
    """
    barrier = threading.Barrier(size, timeout=30)

    def close():
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            pass
        connection.close()

    for _ in range(size):
        pool.submit(close)
    pool.shutdown(wait=True)
