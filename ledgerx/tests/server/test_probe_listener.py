"""Probes on their own listener answer while every request thread is inside bcrypt.

A real gunicorn (one worker, two threads, the production password hasher at
cost 12) is flooded with more concurrent logins than it has threads; the
readiness probe is then asked on the main port and on the probe port at the
same moment, many times. On the main port it waits behind the queued logins;
on the probe port it answers first, every time or nearly.
"""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.conf import settings

from ledgerx.tests.observability.conftest import free_port

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

LOGIN_THREADS = 8  # four times the worker's threads: every one busy, the rest queued
ROUNDS = 12


def _database_url() -> str:
    db = settings.DATABASES["default"]
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def test_readyz_on_the_probe_port_never_queues_behind_logins(gunicorn_server):
    probe_port = free_port()
    base = gunicorn_server(
        DATABASE_URL=_database_url(),
        LEDGERX_WORKERS="1",
        LEDGERX_THREADS="2",
        LEDGERX_PROBE_BIND=f"127.0.0.1:{probe_port}",
        LEDGERX_AUTH_RATE="100000/m",
        LEDGERX_ACCESS_LOG="0",
    )
    probes = f"http://127.0.0.1:{probe_port}"
    assert requests.get(f"{probes}/healthz", timeout=5).json() == {"status": "ok"}
    assert requests.get(f"{probes}/readyz", timeout=5).status_code == 200
    assert requests.get(f"{probes}/anything", timeout=5).status_code == 404

    stop = threading.Event()
    logins = []

    def log_in_until_stopped(n):
        session = requests.Session()
        while not stop.is_set():
            body = {"email": f"nobody-{n}@example.com", "password": "not the password at all"}
            logins.append(session.post(f"{base}/api/v1/auth/login", json=body, timeout=60).status_code)

    def first_of(urls):
        """Which of the URLs answered first (both asked at the same moment), and every answer's status."""
        done, statuses, lock = [], {}, threading.Lock()

        def ask(url):
            status = requests.get(url, timeout=30).status_code
            with lock:
                done.append(url)
                statuses[url] = status

        with ThreadPoolExecutor(len(urls)) as pool:
            list(pool.map(ask, urls))
        return done[0], statuses

    flood = [threading.Thread(target=log_in_until_stopped, args=(n,)) for n in range(LOGIN_THREADS)]
    for thread in flood:
        thread.start()
    try:
        while len(logins) < LOGIN_THREADS:  # every login thread has had an answer: the queue is full
            threading.Event().wait(0.05)
        rounds = [first_of([f"{base}/readyz", f"{probes}/readyz"]) for _ in range(ROUNDS)]
    finally:
        stop.set()
        for thread in flood:
            thread.join()

    assert set(logins) == {401}  # real bcrypt logins (unknown email: the same hash cost)
    assert [statuses[f"{probes}/readyz"] for _, statuses in rounds] == [200] * ROUNDS
    probe_port_first = sum(1 for first, _ in rounds if first == f"{probes}/readyz")
    assert probe_port_first >= ROUNDS - 2, f"the probe port answered first in only {probe_port_first} of {ROUNDS} rounds"
