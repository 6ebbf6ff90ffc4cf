"""HTTP scenarios against the production server: gunicorn with the repo's gunicorn.conf.py.

``Server`` starts ``gunicorn -c gunicorn.conf.py ledgerx.wsgi`` on 127.0.0.1 and a
free port with the production settings (DEBUG off, bench-only secrets, the bench
database and Redis db 4), waits for /healthz and stops it on exit. The server's
log goes to bench/results/gunicorn.log.

The load generator is ``bench.pool`` (closed loop, one process per client, each
request on a new loopback connection: gunicorn's sync workers close the
connection after every response). Requests carry ``X-Forwarded-Proto: https``
as a TLS-terminating proxy would, since production settings redirect plain HTTP.
Access tokens are minted in-process with the app's own simplejwt settings
(logging in 1000 users over HTTP would trip the login rate limit, by design);
clients rotate over the 999 bench users so the per-user API rate limit
(LEDGERX_API_RATE, 600/min) is not what is measured.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import time
import uuid
from pathlib import Path

from bench import env
from bench.books import BENCH_PIN, books_load
from bench.pool import run_closed_loop
from bench.scenarios import TRANSFERS_PER_OP, batch_payees

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

# What each HTTP scenario requests, and the status that counts as success.
BALANCE_PATH = "/api/v1/accounts/{account}"
# http_statement: the first page of an own account's statement (a read a replica may serve).
STATEMENT_PATH = "/api/v1/accounts/{account}/entries?page_size=20"
# http_transfer_warm: users per client, each proven once before the window. Enough
# that no user nears the per-user API limit (600/min), few enough to warm in seconds.
WARM_USERS_PER_CLIENT = 16
# The server's LEDGERX_PIN_CACHE_SECONDS per scenario: http_transfer measures a
# bcrypt check on every request (cache off), the others the app's default.
PIN_CACHE_FOR = {
    "http_transfer": 0,
    "http_transfer_warm": None,
    "http_transfer_warm_nometrics": None,
    "http_me": None,
    "http_balance": None,
    "http_statement": None,
    "http_batch": None,
    "http_batch_1000": None,
}
# POST batches: the path and the items per request of each batch point (all transfers, one payer).
BATCHES_PATH = "/api/v1/batches"
BATCH_ITEMS = {name: TRANSFERS_PER_OP[name] for name in ("http_batch", "http_batch_1000")}
# Points served by a server with every metric off (``bench.nometrics_settings``).
METRICS_OFF = frozenset({"http_transfer_warm_nometrics"})


class HttpFailure(Exception):
    def __init__(self, status: int, body: bytes):
        self.status = status
        try:
            code = json.loads(body)["error"]["code"]
        except Exception:  # noqa: BLE001 - not our envelope
            code = "?"
        self.code = f"http_{status}_{code}"
        super().__init__(f"HTTP {status}: {body[:300]!r}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_servers_started = 0


def server_port() -> int:
    """BENCH_HTTP_PORT, +1 for each further server of this process; else any free port."""
    global _servers_started
    base = os.environ.get("BENCH_HTTP_PORT")
    _servers_started += 1
    return int(base) + _servers_started - 1 if base else free_port()


class Server:
    """gunicorn on 127.0.0.1:<free port>, production settings, the bench database."""

    def __init__(
        self,
        db_name: str = env.BENCH_DB,
        *,
        pin_cache_seconds: int | None = None,
        metrics: bool = True,
        environ: dict[str, str] | None = None,
    ):
        """``pin_cache_seconds``: LEDGERX_PIN_CACHE_SECONDS of the server (None: the app's default);
        0 makes every PIN check a bcrypt check, as ``http_transfer`` measures. ``metrics=False``:
        no request middleware and no business counting (``bench.nometrics_settings``).
        ``environ``: set last, over everything else (``bench.cluster``: the database URLs of a
        topology, through PgBouncer or not, with replicas or not)."""
        self.db_name = db_name
        self.pin_cache_seconds = pin_cache_seconds
        self.metrics = metrics
        self.environ = dict(environ or {})
        self.port = server_port()
        self.proc: subprocess.Popen | None = None
        self.log_path = RESULTS / "gunicorn.log"

    def __enter__(self) -> "Server":
        server_env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "LEDGERX_TESTING"))}
        server_env.update(env.production_secrets())
        server_env.pop("LEDGERX_LOG_LEVEL", None)  # production default logging, access log included
        server_env.update(
            DATABASE_URL=env.database_url(self.db_name),
            REDIS_URL=os.environ.get("REDIS_URL", env.REDIS_URL),
            DJANGO_SETTINGS_MODULE="ledgerx.settings" if self.metrics else "bench.nometrics_settings",
            DJANGO_DEBUG="0",
            LEDGERX_BIND=f"127.0.0.1:{self.port}",
        )
        if self.pin_cache_seconds is not None:
            server_env["LEDGERX_PIN_CACHE_SECONDS"] = str(self.pin_cache_seconds)
        server_env.update(self.environ)
        RESULTS.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "gunicorn"), "-c", "gunicorn.conf.py", "ledgerx.wsgi"],
            cwd=ROOT,
            env=server_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}; see {self.log_path}")
            try:
                status, _ = request("GET", self.port, "/healthz")
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        self.__exit__(None, None, None)
        raise RuntimeError(f"gunicorn did not answer /healthz within 60 s; see {self.log_path}")

    @property
    def workers(self) -> int:
        import multiprocessing

        return int(os.environ.get("LEDGERX_WORKERS", multiprocessing.cpu_count() + 1))

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()


def request(method: str, port: int, path: str, *, token: str | None = None, body: dict | None = None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        send_headers = {"X-Forwarded-Proto": "https", "Accept": "application/json"}
        if token:
            send_headers["Authorization"] = f"Bearer {token}"
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            send_headers["Content-Type"] = "application/json"
        send_headers.update(headers or {})
        conn.request(method, path, body=payload, headers=send_headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _tokens(users) -> dict:
    from rest_framework_simplejwt.tokens import AccessToken

    return {user.pk: str(AccessToken.for_user(user)) for user in users}


def make_http_op(name: str, port: int):
    def make(index: int, concurrency: int):
        books = books_load()
        tokens = _tokens(books.users.values())
        rng = random.Random(7_000_003 * (index + 1))
        accounts = books.accounts

        def batch(source, size: int):
            """POST batches of ``size`` transfers from ``source`` (atomic, the PIN once); 201 is a success."""
            items = [
                {
                    "type": "transfer",
                    "source_account": str(source.pk),
                    "destination_account": str(d.pk),
                    "amount": rng.randint(1, 100),
                }
                for d in batch_payees(rng, accounts, source, size)
            ]
            status, body = request(
                "POST",
                port,
                BATCHES_PATH,
                token=tokens[source.owner_id],
                body={"items": items, "pin": BENCH_PIN},
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )
            if status != 201:
                raise HttpFailure(status, body)

        def transfer(source, destination):
            status, body = request(
                "POST",
                port,
                "/api/v1/transfers",
                token=tokens[source.owner_id],
                body={
                    "source_account": str(source.pk),
                    "destination_account": str(destination.pk),
                    "amount": rng.randint(1, 100),
                    "pin": BENCH_PIN,
                },
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )
            if status != 201:
                raise HttpFailure(status, body)

        def read(template: str):
            """GET ``template`` (formatted with an account of the token's user); 200 is a success."""

            def op():
                account = rng.choice(accounts)
                status, body = request("GET", port, template.format(account=account.pk), token=tokens[account.owner_id])
                if status != 200:
                    raise HttpFailure(status, body)

            return op

        if name == "http_me":
            op = read("/api/v1/me")
        elif name == "http_balance":
            op = read(BALANCE_PATH)
        elif name == "http_statement":
            op = read(STATEMENT_PATH)
        elif name == "http_transfer":

            def op():
                source, destination = rng.sample(accounts, 2)
                transfer(source, destination)

        elif name in ("http_transfer_warm", "http_transfer_warm_nometrics", *BATCH_ITEMS):
            # This client's own users (disjoint from the other clients'), each of
            # which proves its PIN once here, before the warm-up and the window.
            mine = accounts[index::concurrency][:WARM_USERS_PER_CLIENT]
            for source in mine:
                transfer(source, rng.choice([a for a in accounts if a.pk != source.pk]))

            if name in BATCH_ITEMS:
                size = BATCH_ITEMS[name]

                def op():
                    batch(rng.choice(mine), size)

            else:

                def op():
                    source = rng.choice(mine)
                    destination = rng.choice(accounts)
                    while destination.pk == source.pk:
                        destination = rng.choice(accounts)
                    transfer(source, destination)

        else:
            raise ValueError(name)
        return op

    return make


def bcrypt_check_seconds(samples: int = 5) -> float:
    """Median wall time of one PIN check's bcrypt at the production cost (12)."""
    import bcrypt
    from django.conf import settings

    from accounts.services import _pin_digest

    digest = _pin_digest(BENCH_PIN)
    hashed = bcrypt.hashpw(digest, bcrypt.gensalt(rounds=settings.PIN_BCRYPT_ROUNDS))
    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        assert bcrypt.checkpw(digest, hashed)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run_http_scenario(
    server: Server, name: str, concurrency: int, duration: float, warmup: float, *, log=print, window=None
) -> dict:
    """One HTTP point against ``server``; ``window``: see ``bench.pool.run_closed_loop``."""
    result = run_closed_loop(make_http_op(name, server.port), concurrency, duration, warmup, log=log, window=window)
    return result.summary("ledgerx", name, transfers_per_op=BATCH_ITEMS.get(name, 1))
