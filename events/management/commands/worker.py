"""manage.py worker: deliver webhooks and run LedgerX's periodic work (see ``events.worker``).

Run any number of them, on any machines, against the same database; none is
needed for money to move. ``scripts/run`` starts one beside the server.
"""

import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from prometheus_client import start_http_server

from events.worker.loop import Worker


class Command(BaseCommand):
    help = "Deliver due webhooks and run the periodic work (hold expiry, audit sealing, purges) until stopped."

    def add_arguments(self, parser):
        parser.add_argument("--concurrency", type=int, default=8, help="Deliveries in flight at once (default 8).")
        parser.add_argument("--poll", type=float, default=0.2, help="Seconds between looks when idle (default 0.2).")
        parser.add_argument("--batch", type=int, default=100, help="Deliveries claimed per pass (default 100).")
        parser.add_argument("--no-periodic", action="store_true", help="Deliver only (another worker runs the chores).")
        parser.add_argument("--once", action="store_true", help="Run until nothing is due, then exit.")

    def handle(self, *args, concurrency, poll, batch, no_periodic, once, **options):
        if concurrency < 1 or batch < 1 or poll <= 0:
            raise CommandError("--concurrency and --batch must be positive, --poll greater than 0.")

        def log(message):
            self.stdout.write(message)
            self.stdout.flush()

        worker = Worker(concurrency=concurrency, poll=poll, batch=batch, periodic=not no_periodic, log=log)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: worker.stopping.set())
        if settings.WORKER_METRICS_PORT:
            # The worker's own counters (deliveries, latency) on an internal port, for Prometheus.
            start_http_server(settings.WORKER_METRICS_PORT, addr=settings.WORKER_METRICS_ADDR)
            log(f"metrics on {settings.WORKER_METRICS_ADDR}:{settings.WORKER_METRICS_PORT}/metrics")
        log(f"worker {worker.worker_id} started")
        worker.run(once=once)
        log(f"worker {worker.worker_id} stopped")
