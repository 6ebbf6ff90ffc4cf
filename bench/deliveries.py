"""``python -m bench deliveries``: webhook delivery throughput and commit-to-receiver latency.

Against the benchmark's database, one ``manage.py worker`` (production settings) and a local
HTTP receiver on 127.0.0.1 that answers 200 at once and notes when each delivery arrives:

1. Throughput: ``BENCH_DELIVERIES`` (2000) deposits are committed while no worker runs (each one
   ``transaction.created`` event, one delivery to the endpoint); then the worker starts. Reported:
   deliveries per second from the first arrival to the last, and from the worker's start.
2. Latency: with the worker idle, ``BENCH_LATENCY_SAMPLES`` (50) deposits 0.1 s apart; for each,
   the time from the deposit's return (its commit) to the receiver reading the request. p50, p99, max.

Prints one JSON object. Money moved: the deposits, into one account of a user of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class _Receiver(BaseHTTPRequestHandler):
    arrivals: dict[str, float] = {}
    lock = threading.Lock()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        arrived = time.monotonic()
        transaction_id = json.loads(body)["data"]["id"]  # the event's transaction
        with self.lock:
            self.arrivals.setdefault(transaction_id, arrived)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def _worker(env_overrides: dict) -> subprocess.Popen:
    from bench import env

    worker_env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "LEDGERX_TESTING"))}
    worker_env.update(env.production_secrets())
    worker_env.update(
        DATABASE_URL=env.database_url(env.BENCH_DB),
        REDIS_URL=os.environ.get("REDIS_URL", env.REDIS_URL),
        DJANGO_SETTINGS_MODULE="ledgerx.settings",
        DJANGO_DEBUG="0",
        LEDGERX_WEBHOOKS_ALLOW_INSECURE="1",  # the receiver is http://127.0.0.1
        **env_overrides,
    )
    return subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "python"), "manage.py", "worker", "--no-periodic"],
        cwd=ROOT, env=worker_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )


def _stop(proc: subprocess.Popen) -> None:
    import signal

    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def _wait_for(ids, deadline_s: float) -> bool:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        with _Receiver.lock:
            if all(i in _Receiver.arrivals for i in ids):
                return True
        time.sleep(0.01)
    return False


def run_deliveries(log=print) -> dict:
    from bench import env

    env.django_setup()
    os.environ.setdefault("LEDGERX_WEBHOOKS_ALLOW_INSECURE", "1")
    from django.conf import settings

    settings.WEBHOOKS_ALLOW_INSECURE = True  # this process creates the endpoint (its URL is checked at save)

    from accounts.services import user_register
    from events.services.endpoints import endpoint_create
    from ledger.services.customer_accounts import account_open
    from transactions.services.money import deposit_create

    count = int(os.environ.get("BENCH_DELIVERIES", 2000))
    samples = int(os.environ.get("BENCH_LATENCY_SAMPLES", 50))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/hook"
    user = user_register(email=f"deliveries-{uuid.uuid4().hex[:8]}@bench.local", password="bench-password-2026", full_name="Deliveries")
    account = account_open(actor=user, owner=user, currency="USD")
    endpoint_create(actor=user, url=url, events=["transaction.created"])

    def deposit() -> str:
        """One committed deposit; the id its delivery is recognised by (its transaction's)."""
        return str(deposit_create(actor=user, account=account, amount=1, idempotency_key=uuid.uuid4().hex).transaction.pk)

    log(f"==> deliveries: {count} events committed with no worker running")
    backlog = [deposit() for _ in range(count)]
    started = time.monotonic()
    worker = _worker({})
    try:
        delivered = _wait_for(backlog, 300)
        arrivals = sorted(_Receiver.arrivals[i] for i in backlog if i in _Receiver.arrivals)
        throughput = {
            "events": count,
            "delivered": len(arrivals),
            "per_s_from_first_arrival": (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else None,
            "per_s_from_worker_start": len(arrivals) / (arrivals[-1] - started) if arrivals else None,
            "all_delivered": delivered,
        }
        log(f"  throughput: {throughput}")
        time.sleep(1.0)  # the worker goes idle (it waits on LISTEN, or polls)
        latencies = []
        for _ in range(samples):
            transaction_id = deposit()
            committed = time.monotonic()
            if _wait_for([transaction_id], 10):
                latencies.append(_Receiver.arrivals[transaction_id] - committed)
            time.sleep(0.1)
    finally:
        _stop(worker)
        server.shutdown()
    latencies.sort()

    def pct(p: float) -> float | None:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 1) if latencies else None

    latency = {"samples": samples, "delivered": len(latencies), "p50_ms": pct(0.5), "p99_ms": pct(0.99),
               "max_ms": round(latencies[-1] * 1000, 1) if latencies else None}
    log(f"  latency commit -> receiver: {latency}")
    return {"throughput": throughput, "latency": latency}


if __name__ == "__main__":
    print(json.dumps(run_deliveries()))
