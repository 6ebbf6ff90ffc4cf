"""Correctness on the scaled-out topology: two app servers behind haproxy, PgBouncer in
transaction pooling mode, a streaming replica serving the read-only work.

Counted from the app servers' own metrics (``ledgerx_replica_reads_total``), so a
test cannot pass by never using the replica.
"""

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.cluster.conftest import PIN, cluster, manage

pytestmark = pytest.mark.cluster

REPLICA_READS = 'ledgerx_replica_reads_total{target="replica"}'
PRIMARY_READS = 'ledgerx_replica_reads_total{target="primary"}'


def _ready(base: str) -> dict:
    return requests.get(f"{base}/readyz", timeout=10).json()


def _wait_replica(topology, label: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if all(_ready(app)["checks"].get("replica1") == label for app in topology.apps):
            return
        time.sleep(0.2)
    raise AssertionError(f"replica never became {label}: {[_ready(app) for app in topology.apps]}")


@pytest.fixture
def delayed_replica(topology):
    """The replica applies WAL 300 ms late: behind every write, yet within LEDGERX_REPLICA_MAX_LAG."""
    cluster("replica-delay", "300ms")
    try:
        yield
    finally:
        cluster("replica-delay", "0")


def test_a_write_through_one_app_server_is_always_read_back_through_the_other(topology, customer, delayed_replica):
    writer_app, reader_app = topology.apps[0], topology.apps[1]
    me, bystander = customer(), customer()
    assert bystander.deposit(writer_app, 7).status_code == 201
    time.sleep(1)  # the bystander's deposit is replayed: their reads can use the replica
    replica_before = topology.metric(reader_app, REPLICA_READS)
    primary_before = topology.metric(reader_app, PRIMARY_READS)
    balance = 0
    for i in range(500):
        reply = me.deposit(writer_app, i + 1)
        assert reply.status_code == 201, reply.text
        balance += i + 1
        page = me.get(reader_app, f"accounts/{me.account}/entries?page_size=1")
        assert page.status_code == 200, page.text
        newest = [(line["transaction_id"], line["balance_after"]) for line in page.json()["results"]]
        assert newest == [(reply.json()["id"], balance)], f"stale statement at write {i}"
        listed = [txn["id"] for txn in me.get(reader_app, f"transactions?account={me.account}&page_size=1").json()["results"]]
        assert listed == [reply.json()["id"]], f"stale transaction list at write {i}"
        # The account cache is shared: the writer stored the new state before answering.
        assert me.get(reader_app, f"accounts/{me.account}").json()["balance"]["posted"] == balance, f"stale account at {i}"
        if i % 50 == 0:
            other = bystander.get(reader_app, f"accounts/{bystander.account}/entries").json()["results"]
            assert [line["balance_after"] for line in other] == [7]
    replica_reads = topology.metric(reader_app, REPLICA_READS) - replica_before
    primary_reads = topology.metric(reader_app, PRIMARY_READS) - primary_before
    # Reads right after a write went to the primary (the replica was 300 ms behind them; one
    # that follows a stall longer than that may find the replica caught up, and use it); the
    # bystander's, who wrote nothing since, to the replica.
    assert primary_reads >= 500, (primary_reads, replica_reads)
    assert replica_reads >= 10, (primary_reads, replica_reads)


def test_the_replica_stopped_mid_load_costs_no_request(topology, customer):
    people = [customer() for _ in range(4)]
    for person in people:
        assert person.deposit(topology.lb, 100).status_code == 201
    time.sleep(1)
    replica_before = sum(topology.metric(app, REPLICA_READS) for app in topology.apps)
    stop = threading.Event()
    failures: list[str] = []
    counts = {"reads": 0, "writes": 0}
    deposited = {person.account: 100 for person in people}

    def load(person):
        while not stop.is_set():
            reply = person.get(topology.lb, f"accounts/{person.account}/entries?page_size=5")
            counts["reads"] += 1
            if reply.status_code != 200:
                failures.append(f"read {reply.status_code} {reply.text[:200]}")
            reply = person.deposit(topology.lb, 1)
            counts["writes"] += 1
            if reply.status_code != 201:
                failures.append(f"write {reply.status_code} {reply.text[:200]}")
            else:
                deposited[person.account] += 1

    threads = [threading.Thread(target=load, args=(person,)) for person in people]
    try:
        for thread in threads:
            thread.start()
        time.sleep(2)
        cluster("replica-stop")
        _wait_replica(topology, "down")
        time.sleep(2)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        cluster("replica-start")
    assert failures == []
    assert counts["reads"] > 20
    assert sum(topology.metric(app, REPLICA_READS) for app in topology.apps) > replica_before  # it was in use
    ready = _ready(topology.apps[0])
    assert ready["status"] in {"degraded", "ok"}
    _wait_replica(topology, "ok")
    for person in people:
        lines = person.get(topology.lb, f"accounts/{person.account}/entries?page_size=1").json()["results"]
        assert lines[0]["balance_after"] == deposited[person.account]


def test_readyz_says_degraded_while_the_replica_is_down(topology):
    cluster("replica-stop")
    try:
        _wait_replica(topology, "down")
        reply = requests.get(f"{topology.lb}/readyz", timeout=10)
        assert reply.status_code == 200
        assert reply.json()["status"] == "degraded"
    finally:
        cluster("replica-start")
    _wait_replica(topology, "ok")


def test_parallel_withdrawals_through_the_balancer_never_overdraw(topology, customer):
    person = customer()
    assert person.deposit(topology.lb, 1000).status_code == 201

    def withdraw(_):
        return person.post(topology.lb, "withdrawals", {"account": person.account, "amount": 100, "pin": PIN}).status_code

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(withdraw, range(20)))
    assert sorted(codes) == [201] * 10 + [409] * 10
    account = person.get(topology.lb, f"accounts/{person.account}").json()
    assert account["balance"]["posted"] == 0


def test_one_key_sent_to_both_app_servers_at_once_moves_money_once(topology, customer):
    person = customer()
    key = str(uuid.uuid4())

    def send(i):
        return person.deposit(topology.apps[i % 2], 250, key=key)

    with ThreadPoolExecutor(10) as pool:
        replies = list(pool.map(send, range(10)))
    ids = {reply.json()["id"] for reply in replies if reply.status_code == 201}
    assert len(ids) == 1
    assert {reply.status_code for reply in replies} <= {201, 409}
    lines = person.get(topology.lb, f"accounts/{person.account}/entries").json()["results"]
    assert [line["amount"] for line in lines] == [250]


def test_parallel_wrong_pins_across_app_servers_count_three_then_suspend(topology, customer):
    person = customer()
    assert person.deposit(topology.lb, 1000).status_code == 201

    def guess(i):
        reply = person.post(topology.apps[i % 2], "withdrawals", {"account": person.account, "amount": 1, "pin": "0000"})
        return reply.status_code, reply.json()["error"]["code"]

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(guess, range(8)))
    assert sum(1 for outcome in outcomes if outcome == (403, "invalid_pin")) == 3
    assert all(outcome in {(403, "invalid_pin"), (403, "user_suspended")} for outcome in outcomes)
    right = person.post(topology.lb, "withdrawals", {"account": person.account, "amount": 1, "pin": PIN})
    assert (right.status_code, right.json()["error"]["code"]) == (403, "user_suspended")


def test_an_app_server_killed_mid_load_loses_nothing_and_doubles_nothing(topology, customer):
    people = [customer() for _ in range(4)]
    stop = threading.Event()
    failures: list[str] = []
    committed = {person.account: 0 for person in people}
    retried = []

    def load(person):
        while not stop.is_set():
            key = str(uuid.uuid4())
            for _ in range(100):  # a client that retries with the same key until it has an answer
                try:
                    reply = person.deposit(topology.lb, 1, key=key)
                except requests.ConnectionError:
                    retried.append(key)
                    time.sleep(0.1)
                    continue
                if reply.status_code == 201:
                    committed[person.account] += 1
                    break
                if reply.status_code in (409, 502, 503, 504):
                    retried.append(key)
                    time.sleep(0.1)
                    continue
                failures.append(f"{reply.status_code} {reply.text[:200]}")
                break
            else:
                failures.append(f"key {key} never answered")

    threads = [threading.Thread(target=load, args=(person,)) for person in people]
    try:
        for thread in threads:
            thread.start()
        time.sleep(2)
        cluster("app-kill", "1")
        time.sleep(4)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
        cluster("up")
    assert failures == []
    assert sum(committed.values()) > 20
    for person in people:
        account = person.get(topology.lb, f"accounts/{person.account}").json()
        # Every key answered 201 once moved money once: nothing lost, nothing doubled.
        assert account["balance"]["posted"] == committed[person.account]
    # Two app servers sealed the audit chain side by side (one sealer at a time): it is intact.
    audit = manage("verify_audit")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    for args in (["verify_ledger"], ["verify_ledger", "--replica"]):
        result = manage(*args)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "0 breached" in result.stdout
    assert "reading from replica1" in result.stdout  # the --replica run read the replica's copy


def test_crossing_transfers_across_app_servers_neither_deadlock_nor_lose_money(topology, customer):
    alice, bob = customer(), customer()
    assert alice.deposit(topology.lb, 500).status_code == 201
    assert bob.deposit(topology.lb, 500).status_code == 201

    def send(i):
        payer, payee = (alice, bob) if i % 2 else (bob, alice)
        body = {"source_account": payer.account, "destination_account": payee.account, "amount": 10, "pin": PIN}
        return payer.post(topology.apps[i % 2], "transfers", body).status_code

    with ThreadPoolExecutor(12) as pool:
        codes = list(pool.map(send, range(40)))
    assert codes == [201] * 40
    balances = [person.get(topology.lb, f"accounts/{person.account}").json()["balance"]["posted"] for person in (alice, bob)]
    assert balances == [500, 500]
