import hashlib
import json
import threading
import time
import uuid
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from django.db import connection, connections, transaction

from accounts.tests.factories import UserFactory
from audit.models import AuditAction, AuditPending, AuditRecord, AuditSeal
from audit.services import sealing
from audit.services.chain import GENESIS_HASH, record_hash, record_values
from audit.services.records import audit_record
from audit.services.sealing import SEAL_LOCK_KEY, audit_seal_pending
from audit.services.verification import ChainReport, audit_chain_verify
from ledgerx.context import client_ip_var, request_id_var

pytestmark = pytest.mark.django_db


def _expected_hash(record: AuditRecord, prev_hash: str) -> str:
    body = {
        "id": str(record.id),
        "at": record.at.isoformat(timespec="microseconds"),
        "actor": str(record.actor_id) if record.actor_id else None,
        "action": record.action,
        "target_type": record.target_type,
        "target_id": record.target_id,
        "ip": record.ip,
        "request_id": record.request_id,
        "data": record.data,
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical).hexdigest()


def test_audit_record_is_written_unsealed_with_request_context():
    actor = UserFactory()
    tokens = request_id_var.set("req-123"), client_ip_var.set("10.1.2.3")
    try:
        record = audit_record(
            actor=actor, action=AuditAction.ACCOUNT_FROZEN, target_type="ledger_account", target_id=42, data={"reason": "kyc"}
        )
    finally:
        request_id_var.reset(tokens[0])
        client_ip_var.reset(tokens[1])
    stored = AuditRecord.objects.get(pk=record.pk)
    assert (stored.actor_id, stored.action, stored.target_type, stored.target_id) == (
        actor.pk, "account.frozen", "ledger_account", "42"
    )
    assert (stored.ip, stored.request_id, stored.data) == ("10.1.2.3", "req-123", {"reason": "kyc"})
    assert list(AuditPending.objects.values_list("record_id", flat=True)) == [record.pk]
    assert AuditSeal.objects.count() == 0


def test_audit_record_without_request_context_has_no_ip_or_request_id():
    record = audit_record(actor=None, action=AuditAction.HOLD_EXPIRED, target_type="transaction", target_id="t1")
    stored = AuditRecord.objects.get(pk=record.pk)
    assert (stored.actor_id, stored.ip, stored.request_id, stored.data) == (None, None, "", {})


def test_seal_pending_links_records_in_queue_order_with_exact_hashes():
    records = [
        audit_record(actor=None, action=AuditAction.LOGIN_FAILED, target_type="user", target_id=f"u{i}", data={"i": i})
        for i in range(3)
    ]
    assert audit_seal_pending() == 3
    seals = list(AuditSeal.objects.order_by("seq"))
    assert [seal.seq for seal in seals] == [1, 2, 3]
    assert [seal.record_id for seal in seals] == [record.pk for record in records]
    prev = GENESIS_HASH
    for seal in seals:
        stored = AuditRecord.objects.get(pk=seal.record_id)
        assert seal.prev_hash == prev
        assert seal.hash == _expected_hash(stored, prev)
        prev = seal.hash
    assert AuditPending.objects.count() == 0
    # A second run has nothing to do; the next record continues the chain.
    assert audit_seal_pending() == 0
    later = audit_record(actor=None, action=AuditAction.LOGOUT, target_type="user", target_id="u9")
    assert audit_seal_pending() == 1
    seal = AuditSeal.objects.get(record=later)
    assert (seal.seq, seal.prev_hash) == (4, seals[-1].hash)


def test_seal_pending_respects_limit():
    for i in range(5):
        audit_record(actor=None, action=AuditAction.LOGOUT, target_type="user", target_id=str(i))
    assert audit_seal_pending(limit=2) == 2
    assert AuditPending.objects.count() == 3
    assert audit_seal_pending() == 3
    assert list(AuditSeal.objects.values_list("seq", flat=True).order_by("seq")) == [1, 2, 3, 4, 5]


def test_records_are_sealed_after_the_writing_transaction_commits(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        record = audit_record(actor=None, action=AuditAction.PIN_SET, target_type="user", target_id="u1")
        assert AuditSeal.objects.count() == 0  # not before commit
    # The sealing hook, then (the first seal makes a checkpoint due) the checkpoint sink's append.
    assert [callback.__name__ for callback in callbacks] == ["_seal_after_commit", "<lambda>"]
    assert AuditSeal.objects.get(seq=1).record_id == record.pk
    assert AuditPending.objects.count() == 0


def test_data_with_uuids_and_datetimes_is_stored_as_strings_and_hashes_stably():
    import uuid
    from datetime import datetime, timezone

    ident = uuid.uuid4()
    record = audit_record(
        actor=None,
        action=AuditAction.ADMIN_CHANGE,
        target_type="user",
        target_id=ident,
        data={"id": ident, "when": datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)},
    )
    audit_seal_pending()
    assert AuditRecord.objects.get(pk=record.pk).data == {"id": str(ident), "when": "2026-01-02T03:04:05Z"}
    assert audit_chain_verify().ok is True


def test_verify_reports_intact_chain_and_counts():
    for i in range(4):
        audit_record(actor=None, action=AuditAction.LOGOUT, target_type="user", target_id=str(i))
    report = audit_chain_verify()
    assert (report.ok, report.checked, report.first_break, report.unsealed) == (True, 4, None, 0)
    assert report.summary == "audit chain intact: 4 sealed records checked, 0 awaiting a seal"


def test_verify_without_sealing_counts_pending_records_as_awaiting():
    audit_record(actor=None, action=AuditAction.LOGOUT, target_type="user", target_id="1")
    report = audit_chain_verify(seal_first=False)
    assert (report.ok, report.checked, report.unsealed) == (True, 0, 1)


def test_verify_names_a_record_that_is_neither_sealed_nor_queued():
    record = audit_record(actor=None, action=AuditAction.LOGOUT, target_type="user", target_id="1")
    AuditPending.objects.filter(record=record).delete()  # the queue is not protected; losing a row is a break
    report = audit_chain_verify()
    assert report.ok is False
    assert report.first_break == f"record {record.pk} is neither sealed nor queued for sealing"


@pytest.mark.django_db(transaction=True)
def test_a_record_written_outside_a_transaction_is_sealed_when_it_commits():
    """In autocommit (a failed login) the sealing hook used to run before the record was inserted."""
    record = audit_record(actor=None, action=AuditAction.LOGIN_FAILED, target_type="email", target_id="x@example.com")
    assert AuditSeal.objects.filter(record_id=record.pk).exists()
    assert not AuditPending.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_background_sealer_seals_committed_records_without_the_writer_waiting(settings):
    import time

    from django.db import transaction

    settings.AUDIT_SEAL_IN_BACKGROUND = True
    for i in range(5):
        with transaction.atomic():
            audit_record(actor=None, action=AuditAction.LOGOUT, target_type="user", target_id=str(i))
    deadline = time.monotonic() + 10
    while AuditPending.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert AuditPending.objects.count() == 0
    assert list(AuditSeal.objects.order_by("seq").values_list("seq", flat=True)) == [1, 2, 3, 4, 5]
    report = audit_chain_verify(seal_first=False)
    assert (report.ok, report.checked) == (True, 5)
    # Once idle the sealer closes its connection (the test database can then be dropped).
    from audit.services.sealing import _background_sealer

    assert _background_sealer.idle.wait(timeout=5)


def test_sealer_hashes_each_record_exactly_as_the_orm_loads_it():
    """The sealer reads records with a plain cursor, no models: its hashes must be what a loaded record hashes to."""
    actor = UserFactory()
    cases = [
        ("10.1.2.3", actor, {"amount": 10**15, "nested": {"b": [1, 2.5, None, True], "a": "naïve €"}}),
        ("2001:db8::1", actor, {"z": 1, "a": {"y": "x", "b": ""}}),
        ("::ffff:10.0.0.1", None, {}),
        (None, None, {"when": datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc), "id": uuid.uuid4(), "price": Decimal("12.30")}),
    ]
    records = []
    for ip, who, data in cases:
        token = client_ip_var.set(ip)
        try:
            records.append(
                audit_record(actor=who, action=AuditAction.ADMIN_CHANGE, target_type="user", target_id=uuid.uuid4(), data=data)
            )
        finally:
            client_ip_var.reset(token)
    assert audit_seal_pending() == len(cases)
    prev = GENESIS_HASH
    seals = list(AuditSeal.objects.order_by("seq"))
    assert [seal.record_id for seal in seals] == [record.pk for record in records]
    for seal in seals:
        stored = AuditRecord.objects.get(pk=seal.record_id)
        assert (seal.prev_hash, seal.hash) == (prev, _expected_hash(stored, prev))
        assert record_hash(record_values(stored), prev) == seal.hash
        prev = seal.hash
    assert audit_chain_verify(seal_first=False) == ChainReport(True, len(cases), None, 0)


def _wait_until_sealed(deadline_seconds: float) -> float:
    """Poll until the queue is empty; returns the seconds it took (the deadline if it never emptied)."""
    started = time.monotonic()
    while AuditPending.objects.exists() and time.monotonic() - started < deadline_seconds:
        time.sleep(0.01)
    return time.monotonic() - started


@pytest.mark.django_db(transaction=True)
def test_background_sealer_retries_a_busy_lock_without_further_commits(settings, monkeypatch):
    """Liveness: a record committed while another process seals is sealed about one interval after that
    sealer finishes, although nothing else commits; the background sealer only ever tries the lock."""
    settings.AUDIT_SEAL_IN_BACKGROUND = True
    settings.AUDIT_SEAL_INTERVAL = interval = 0.1
    busy, tried, calls = threading.Event(), threading.Event(), []
    real_lock = sealing.sealer_lock

    def lock(*, wait: bool) -> bool:
        calls.append(wait)
        if busy.is_set():
            tried.set()
            return False
        return real_lock(wait=wait)

    monkeypatch.setattr(sealing, "sealer_lock", lock)
    busy.set()
    with transaction.atomic():
        record = audit_record(actor=None, action=AuditAction.LOGOUT, target_type="user", target_id="u1")
    assert tried.wait(timeout=5)
    time.sleep(2 * interval)  # retries meanwhile find the lock still busy
    assert list(AuditPending.objects.values_list("record_id", flat=True)) == [record.pk]
    busy.clear()  # the other sealer is done (it never saw the record); no further commit
    elapsed = _wait_until_sealed(5)
    assert AuditPending.objects.count() == 0
    assert elapsed < interval + 1.0  # about one interval; the second is slack for a loaded machine
    assert calls.count(True) == 0 and calls.count(False) >= 3
    assert AuditSeal.objects.get().record_id == record.pk
    assert audit_chain_verify(seal_first=False) == ChainReport(True, 1, None, 0)
    assert sealing._background_sealer.idle.wait(timeout=5)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_background_sealer_never_queues_behind_another_sealer(settings):
    """Another process holds the sealer's advisory lock: this process's sealer does not wait on it, and seals
    the record committed meanwhile about one interval after the lock is released, with no further commit."""
    settings.AUDIT_SEAL_IN_BACKGROUND = True
    settings.AUDIT_SEAL_INTERVAL = interval = 0.1
    holding, release = threading.Event(), threading.Event()

    def other_sealer() -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SEAL_LOCK_KEY])
                holding.set()
                release.wait(timeout=10)
        finally:
            connections.close_all()

    other = threading.Thread(target=other_sealer)
    other.start()
    try:
        assert holding.wait(timeout=5)
        with transaction.atomic():
            record = audit_record(actor=None, action=AuditAction.LOGOUT, target_type="user", target_id="u1")
        time.sleep(4 * interval)  # the sealer has woken and tried (more than once)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
            assert cursor.fetchone()[0] == 0  # nobody queues for the lock
        assert list(AuditPending.objects.values_list("record_id", flat=True)) == [record.pk]
    finally:
        release.set()
        other.join()
    elapsed = _wait_until_sealed(5)
    assert AuditPending.objects.count() == 0
    assert elapsed < interval + 1.0
    assert audit_chain_verify(seal_first=False) == ChainReport(True, 1, None, 0)
    assert sealing._background_sealer.idle.wait(timeout=5)


@pytest.mark.postgres
def test_seals_table_maintains_only_the_indexes_the_chain_needs():
    """Every seal pays for each index on its table: the seq key and the one-seal-per-record key, nothing on the hash."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'audit_auditseal' ORDER BY indexname")
        definitions = [row[0] for row in cursor.fetchall()]
    assert definitions == [
        "CREATE UNIQUE INDEX audit_auditseal_pkey ON public.audit_auditseal USING btree (seq)",
        "CREATE UNIQUE INDEX audit_auditseal_record_id_key ON public.audit_auditseal USING btree (record_id)",
    ]


@pytest.mark.postgres
def test_queue_row_costs_one_index_and_no_foreign_key_check():
    """Every money movement writes a queue row: keyed by the record id alone, with no check that locks the record."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'audit_auditpending'")
        definitions = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'audit_auditpending'::regclass AND contype = 'f'"
        )
        foreign_keys = cursor.fetchall()
    assert [definition.split(" USING ")[1] for definition in definitions] == ["btree (record_id)"]
    assert foreign_keys == []


def test_records_written_in_one_millisecond_are_chained_in_the_order_they_were_written():
    records = [
        audit_record(actor=None, action=AuditAction.LOGOUT, target_type="user", target_id=str(i)) for i in range(200)
    ]
    assert audit_seal_pending() == 200
    sealed = list(AuditSeal.objects.order_by("seq").values_list("record_id", flat=True))
    assert sealed == [record.pk for record in records]
