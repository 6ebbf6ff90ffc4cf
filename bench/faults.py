"""Fault runs: a production-like LedgerX under load while a dependency fails.

The stack is the production one and entirely this runner's own: gunicorn from
the repository's ``gunicorn.conf.py`` (DEBUG off, production settings and
password hasher), a PostgreSQL cluster and a redis-server that nobody else
uses (it refuses the shared 5432 and 6379: it kills and restarts what it
runs on). Client threads move money (deposits, and transfers with a PIN);
every refused attempt (503, a 5xx, a dropped connection, a timeout) is retried
with the same body and the same ``Idempotency-Key`` until it gets an answer.
Meanwhile one fault is injected:

- ``worker_kill``: ``kill -9`` of a gunicorn worker, twice;
- ``redis_kill``: ``kill -9`` of redis-server, restarted 8 s later;
- ``pg_restart``: a fast restart of the PostgreSQL cluster;
- ``backend_kill``: ``pg_terminate_backend`` of every application connection, twice.

Each run records every HTTP answer (201, 409, 503 with and without
``Retry-After``, other 5xx, dropped connections), checks that every key moved
money at most once and every key answered 201 exactly once (its idempotency
record), and runs ``verify_ledger`` and ``verify_audit``. A run passes when no
answer was a 500 (or any 5xx but 503), every 503 carried ``Retry-After`` and
the books verify.

    bash scripts/fault-run [worker_kill redis_kill pg_restart backend_kill]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
PYTHON = str(ROOT / ".venv" / "bin" / "python")
FAULTS = ("worker_kill", "redis_kill", "pg_restart", "backend_kill")
SHARED_PORTS = {5432, 6379}  # other engineers' servers: never restarted or killed
PASSWORD = "fault-run passphrase 2026"
PIN = "4826"


@dataclass
class Config:
    pg_host: str = os.environ.get("FAULTS_PGHOST", "127.0.0.1")
    pg_port: int = int(os.environ.get("FAULTS_PGPORT", "5499"))
    pg_cluster: str = os.environ.get("FAULTS_PG_CLUSTER", "15 faults")  # pg_ctlcluster VERSION NAME
    database: str = os.environ.get("FAULTS_DB", "ledgerx_faults")
    redis_port: int = int(os.environ.get("FAULTS_REDIS_PORT", "6399"))
    http_port: int = int(os.environ.get("FAULTS_HTTP_PORT", "8140"))
    workers: int = int(os.environ.get("FAULTS_WORKERS", "2"))
    clients: int = int(os.environ.get("FAULTS_CLIENTS", "8"))
    duration: float = float(os.environ.get("FAULTS_DURATION", "20"))
    fault_at: float = float(os.environ.get("FAULTS_AT", "5"))

    def check(self) -> None:
        if self.pg_port in SHARED_PORTS or self.redis_port in SHARED_PORTS:
            raise SystemExit(f"refusing to run faults on a shared server (ports {sorted(SHARED_PORTS)})")

    @property
    def database_url(self) -> str:
        return f"postgres://postgres@{self.pg_host}:{self.pg_port}/{self.database}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


def psql(config: Config, sql: str, database: str | None = None) -> str:
    out = subprocess.run(
        ["psql", "-h", config.pg_host, "-p", str(config.pg_port), "-U", "postgres", "-d", database or config.database, "-Atqc", sql],
        check=True, capture_output=True, text=True,
    )
    return out.stdout.strip()


class Stack:
    """This run's redis-server and gunicorn, on a freshly migrated database of the private cluster."""

    def __init__(self, config: Config, workdir: Path):
        self.config = config
        self.workdir = workdir
        self.redis: subprocess.Popen | None = None
        self.gunicorn: subprocess.Popen | None = None
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "LEDGERX_", "DATABASE_", "REDIS_", "PYTEST"))},
            "DJANGO_SETTINGS_MODULE": "ledgerx.settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(40),
            "LEDGERX_JWT_SIGNING_KEY": secrets.token_urlsafe(40),
            "LEDGERX_PIN_PEPPER": secrets.token_urlsafe(24),
            "LEDGERX_AUDIT_SIGNING_KEY": secrets.token_urlsafe(32),
            "LEDGERX_AUDIT_CHECKPOINT_FILE": str(workdir / "checkpoints.jsonl"),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "LEDGERX_SSL_REDIRECT": "0",
            "LEDGERX_HSTS_SECONDS": "0",
            "LEDGERX_ACCESS_LOG": "0",
            # The clients measure outages, not the rate limits (8 clients exceed 600/m for 4 users).
            "LEDGERX_AUTH_RATE": "100000/m",
            "LEDGERX_API_RATE": "100000/m",
            "LEDGERX_WORKERS": str(config.workers),
            "LEDGERX_BIND": f"127.0.0.1:{config.http_port}",
            "PROMETHEUS_MULTIPROC_DIR": str(workdir / "metrics"),
            "DATABASE_URL": config.database_url,
            "REDIS_URL": config.redis_url,
        }

    def manage(self, *args: str) -> subprocess.CompletedProcess:
        env = {k: v for k, v in self.env.items() if k != "PROMETHEUS_MULTIPROC_DIR"}  # gunicorn's metrics only
        return subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)

    def redis_start(self) -> None:
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(self.config.redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for _ in range(50):
            if subprocess.run(["redis-cli", "-p", str(self.config.redis_port), "ping"], capture_output=True, text=True).stdout.strip() == "PONG":
                return
            time.sleep(0.1)
        raise RuntimeError("redis-server did not start")

    def redis_kill(self) -> None:
        self.redis.send_signal(signal.SIGKILL)
        self.redis.wait()

    def database_create(self) -> None:
        psql(self.config, f'DROP DATABASE IF EXISTS "{self.config.database}" WITH (FORCE)', database="postgres")
        psql(self.config, f'CREATE DATABASE "{self.config.database}"', database="postgres")
        migrated = self.manage("migrate", "--noinput")
        if migrated.returncode:
            raise RuntimeError(migrated.stderr[-3000:])

    def gunicorn_start(self) -> None:
        self.log = open(self.workdir / "gunicorn.log", "w")
        self.gunicorn = subprocess.Popen(
            [PYTHON, "-m", "gunicorn", "ledgerx.wsgi:application", "-c", "gunicorn.conf.py"],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.config.base}/readyz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not get ready; see {self.workdir / 'gunicorn.log'}")

    def worker_pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.gunicorn.pid)], capture_output=True, text=True).stdout
        return [int(pid) for pid in out.split()]

    def stop(self) -> None:
        if self.gunicorn is not None and self.gunicorn.poll() is None:
            os.killpg(self.gunicorn.pid, signal.SIGTERM)
            try:
                self.gunicorn.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.gunicorn.pid, signal.SIGKILL)
                self.gunicorn.wait()
        if self.redis is not None and self.redis.poll() is None:
            self.redis.terminate()
            self.redis.wait()


# ---- the faults -------------------------------------------------------------------------------


def _terminate_backends(stack: Stack) -> int:
    return int(psql(stack.config, (
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        f"WHERE datname = '{stack.config.database}' AND pid <> pg_backend_pid()"
    ), database="postgres") or 0)


def inject(fault: str, stack: Stack, notes: list[str]) -> None:
    """Run ``fault`` against the stack (called at ``fault_at`` seconds into the load)."""
    if fault == "worker_kill":
        for _ in range(2):
            pid = random.choice(stack.worker_pids())
            os.kill(pid, signal.SIGKILL)
            notes.append(f"kill -9 worker {pid}")
            time.sleep(4)
    elif fault == "redis_kill":
        stack.redis_kill()
        notes.append("kill -9 redis-server")
        time.sleep(8)
        stack.redis_start()
        notes.append("redis-server restarted")
    elif fault == "pg_restart":
        version, name = stack.config.pg_cluster.split()
        started = time.monotonic()
        subprocess.run(["pg_ctlcluster", version, name, "restart", "-m", "fast"], check=True)
        notes.append(f"pg_ctlcluster {version} {name} restart -m fast ({time.monotonic() - started:.1f} s)")
    elif fault == "backend_kill":
        for _ in range(2):
            notes.append(f"pg_terminate_backend of {_terminate_backends(stack)} connections")
            time.sleep(4)
    else:
        raise ValueError(fault)


# ---- the load ---------------------------------------------------------------------------------


@dataclass
class Tally:
    answers: Counter = field(default_factory=Counter)  # "201", "409", "503", "503-no-retry-after", "500", "conn"
    outcomes: dict = field(default_factory=dict)  # (user index, endpoint, key) -> final status, transaction id
    gave_up: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, what: str) -> None:
        with self.lock:
            self.answers[what] += 1


def _users(config: Config, n: int) -> list[dict]:
    """n users over HTTP: registered, logged in, a PIN, a funded USD account each."""
    users = []
    for index in range(n):
        email = f"fault-{index}@example.com"
        session = requests.Session()
        registered = session.post(f"{config.base}/api/v1/auth/register", json={"email": email, "password": PASSWORD, "full_name": email}, timeout=30)
        assert registered.status_code == 201, registered.text
        token = session.post(f"{config.base}/api/v1/auth/login", json={"email": email, "password": PASSWORD}, timeout=30).json()["access"]
        session.headers["Authorization"] = f"Bearer {token}"
        assert session.put(f"{config.base}/api/v1/me/pin", json={"pin": PIN, "password": PASSWORD}, timeout=30).status_code == 204
        account = session.post(f"{config.base}/api/v1/accounts", json={"currency": "USD"}, timeout=30).json()["id"]
        funded = session.post(f"{config.base}/api/v1/deposits", json={"account": account, "amount": 1_000_000},
                              headers={"Idempotency-Key": f"fund-{index}"}, timeout=30)
        assert funded.status_code == 201, funded.text
        users.append({"token": token, "account": account, "index": index})
    return users


def _one_movement(config: Config, tally: Tally, user: dict, others: list[dict], rng: random.Random) -> None:
    """One deposit or transfer, retried with its key until it is answered (at most 60 s)."""
    key = str(uuid.uuid4())
    if rng.random() < 0.5:
        path, body = "deposits", {"account": user["account"], "amount": rng.randint(1, 5_000)}
    else:
        target = rng.choice(others)
        path = "transfers"
        body = {"source_account": user["account"], "destination_account": target["account"], "amount": rng.randint(1, 5_000), "pin": PIN}
    headers = {"Authorization": f"Bearer {user['token']}", "Idempotency-Key": key}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            response = requests.post(f"{config.base}/api/v1/{path}", json=body, headers=headers, timeout=15)
        except requests.RequestException:
            tally.count("conn")
            time.sleep(0.3)
            continue
        status = response.status_code
        if status == 503:
            tally.count("503" if response.headers.get("Retry-After") else "503-no-retry-after")
            # Honour Retry-After, capped so a run stays short.
            time.sleep(min(float(response.headers.get("Retry-After") or 1), 1.0))
            continue
        if status == 409 and response.json()["error"]["code"] == "idempotency_in_progress":
            tally.count("409-in-progress")  # the earlier attempt's worker died or is still working
            time.sleep(0.5)
            continue
        tally.count(str(status))
        if status >= 500:
            time.sleep(0.3)
            continue
        transaction = response.json().get("id") if status == 201 else None
        with tally.lock:
            tally.outcomes[(user["index"], path, key)] = (status, transaction)
        return
    with tally.lock:
        tally.gave_up += 1
        tally.outcomes[(user["index"], path, key)] = (None, None)


def _load(config: Config, users: list[dict], tally: Tally, stop: threading.Event) -> None:
    def client(n: int):
        rng = random.Random(n)
        user = users[n % len(users)]
        others = [other for other in users if other is not user]
        while not stop.is_set():
            _one_movement(config, tally, user, others, rng)

    def logins():
        """One client logging in over and over: the identity endpoints' answers during the fault (503 when Redis is down)."""
        while not stop.is_set():
            try:
                response = requests.post(f"{config.base}/api/v1/auth/login", json={"email": "fault-0@example.com", "password": PASSWORD}, timeout=15)
            except requests.RequestException:
                tally.count("login conn")
                time.sleep(0.3)
                continue
            status = response.status_code
            if status == 503 and not response.headers.get("Retry-After"):
                tally.count("login 503-no-retry-after")
            else:
                tally.count(f"login {status}")
            time.sleep(0.2)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(config.clients)]
    threads.append(threading.Thread(target=logins))
    for thread in threads:
        thread.start()
    return threads


# ---- after the run ----------------------------------------------------------------------------


def _exactly_once(stack: Stack, tally: Tally) -> dict:
    """Every key answered 201 has one idempotency record with its transaction; no key moved money twice."""
    keys = {key: outcome for (_, _, key), outcome in tally.outcomes.items()}
    rows = psql(stack.config, "SELECT key, transaction_id FROM transactions_idempotencyrecord WHERE key NOT LIKE 'fund-%'")
    stored: dict[str, list[str]] = {}
    for line in filter(None, rows.splitlines()):
        key, _, transaction = line.partition("|")
        stored.setdefault(key, []).append(transaction)
    committed = {key for key, (status, _) in keys.items() if status == 201}
    return {
        "keys": len(keys),
        "keys_201": len(committed),
        "keys_with_two_records": sum(1 for records in stored.values() if len(records) > 1),
        "201_without_its_transaction": sum(1 for key in committed if stored.get(key) != [keys[key][1]]),
        "transactions_for_keys_not_201": sum(1 for key, records in stored.items() if key not in committed and any(records)),
    }


def run(fault: str, config: Config) -> dict:
    config.check()
    workdir = Path(tempfile.mkdtemp(prefix=f"ledgerx-fault-{fault}-"))
    stack = Stack(config, workdir)
    notes: list[str] = []
    tally = Tally()
    try:
        stack.redis_start()
        stack.database_create()
        stack.gunicorn_start()
        users = _users(config, 4)
        stop = threading.Event()
        threads = _load(config, users, tally, stop)
        time.sleep(config.fault_at)
        inject(fault, stack, notes)
        time.sleep(max(0.0, config.duration - config.fault_at))
        stop.set()
        for thread in threads:
            thread.join()
        ledger = stack.manage("verify_ledger")
        audit = stack.manage("verify_audit", "--checkpoints", str(workdir / "checkpoints.jsonl"))
        once = _exactly_once(stack, tally)
    finally:
        stack.stop()
    answers = dict(tally.answers)
    server_errors = sum(count for what, count in answers.items() if what.split()[-1][:1] == "5" and what.split()[-1] != "503")
    result = {
        "fault": fault,
        "notes": notes,
        "requests": sum(answers.values()),
        "server_errors": server_errors,
        "answers": answers,
        "movements": len(tally.outcomes),
        "gave_up": tally.gave_up,
        "exactly_once": once,
        "verify_ledger": {"exit": ledger.returncode, "output": (ledger.stdout + ledger.stderr).strip().splitlines()[-1:]},
        "verify_audit": {"exit": audit.returncode, "output": (audit.stdout + audit.stderr).strip().splitlines()[-1:]},
        "workdir": str(workdir),
    }
    result["passed"] = (
        server_errors == 0
        and answers.get("503-no-retry-after", 0) == 0
        and answers.get("login 503-no-retry-after", 0) == 0
        and tally.gave_up == 0
        and ledger.returncode == 0
        and audit.returncode == 0
        and once["keys_with_two_records"] == 0
        and once["201_without_its_transaction"] == 0
        and once["transactions_for_keys_not_201"] == 0
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("faults", nargs="*", help=f"any of {', '.join(FAULTS)} (default: all)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "faults.jsonl")
    args = parser.parse_args(argv)
    unknown = set(args.faults) - set(FAULTS)
    if unknown:
        parser.error(f"unknown fault(s): {', '.join(sorted(unknown))}")
    config = Config()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    failed = 0
    for fault in args.faults or FAULTS:
        result = run(fault, config)
        result["at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with open(args.out, "a") as out:
            out.write(json.dumps(result) + "\n")
        print(json.dumps(result, indent=2), flush=True)
        failed += not result["passed"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
