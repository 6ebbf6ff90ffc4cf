import io
import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, connections, transaction

from audit.models import AuditAction, AuditPending, AuditRecord, AuditSeal, VerificationRun
from audit.services.records import audit_record
from audit.services.sealing import audit_seal_pending


def _records(count: int) -> list[AuditRecord]:
    return [
        audit_record(actor=None, action=AuditAction.LOGIN_FAILED, target_type="user", target_id=str(i), data={"n": i})
        for i in range(count)
    ]


def _tamper(sql: str, params: list) -> None:
    """Change a row the way a database superuser could: around the append-only triggers."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
        try:
            cursor.execute(sql, params)
        finally:
            if connection.vendor == "postgresql":
                cursor.execute("SET session_replication_role = DEFAULT")


@pytest.mark.django_db
def test_verify_audit_passes_seals_pending_and_records_the_run():
    _records(3)
    out = io.StringIO()
    call_command("verify_audit", stdout=out)
    assert out.getvalue().strip() == (
        "audit chain intact: 3 sealed records checked, 0 awaiting a seal; 1 signed checkpoint(s) in the database match the chain"
    )
    run = VerificationRun.objects.get()
    assert (run.kind, run.ok, run.summary) == ("audit", True, out.getvalue().strip())
    assert AuditSeal.objects.count() == 3


@pytest.mark.django_db
def test_verify_audit_on_an_empty_trail_passes():
    out = io.StringIO()
    call_command("verify_audit", stdout=out)
    assert out.getvalue().strip() == (
        "audit chain intact: 0 sealed records checked, 0 awaiting a seal; 0 signed checkpoint(s) in the database match the chain"
    )


@pytest.mark.django_db
def test_verify_audit_names_the_first_tampered_record_and_fails():
    records = _records(4)
    audit_seal_pending()
    _tamper("UPDATE audit_auditrecord SET data = %s WHERE id = %s", ['{"n": 99}', records[1].pk.hex if connection.vendor != "postgresql" else str(records[1].pk)])
    assert AuditRecord.objects.get(pk=records[1].pk).data == {"n": 99}
    with pytest.raises(CommandError) as failure:
        call_command("verify_audit", stdout=io.StringIO())
    assert str(failure.value) == (
        f"audit chain BROKEN: record {records[1].pk} (seal #2): content does not match its hash (1 records checked before it)"
    )
    run = VerificationRun.objects.get()
    assert (run.kind, run.ok) == ("audit", False)


@pytest.mark.django_db
def test_verify_audit_detects_a_changed_ip_in_a_record_sealed_by_the_sealer():
    from ledgerx.context import client_ip_var

    token = client_ip_var.set("2001:db8::7")
    try:
        records = _records(3)
    finally:
        client_ip_var.reset(token)
    assert audit_seal_pending() == 3
    call_command("verify_audit", stdout=io.StringIO())  # sealed by the sealer's reader, verified as intact
    _tamper(
        "UPDATE audit_auditrecord SET ip = %s WHERE id = %s",
        ["2001:db8::8", records[2].pk.hex if connection.vendor != "postgresql" else str(records[2].pk)],
    )
    with pytest.raises(CommandError) as failure:
        call_command("verify_audit", stdout=io.StringIO())
    assert str(failure.value) == (
        f"audit chain BROKEN: record {records[2].pk} (seal #3): content does not match its hash (2 records checked before it)"
    )


@pytest.mark.django_db
def test_verify_audit_detects_a_relinked_seal():
    records = _records(3)
    audit_seal_pending()
    _tamper("UPDATE audit_auditseal SET prev_hash = %s WHERE seq = 3", ["f" * 64])
    with pytest.raises(CommandError) as failure:
        call_command("verify_audit", stdout=io.StringIO())
    assert f"record {records[2].pk} (seal #3): prev_hash does not link to #2" in str(failure.value)


@pytest.mark.django_db
def test_verify_audit_detects_a_removed_seal():
    _records(3)
    audit_seal_pending()
    _tamper("DELETE FROM audit_auditseal WHERE seq = 2", [])
    with pytest.raises(CommandError) as failure:
        call_command("verify_audit", stdout=io.StringIO())
    assert "seq 2 is missing (next seal is #3)" in str(failure.value)


@pytest.mark.django_db
def test_seal_audit_command_seals_stragglers():
    _records(2)
    out = io.StringIO()
    call_command("seal_audit", stdout=out)
    assert out.getvalue().strip() == "sealed 2 audit record(s)"
    assert AuditPending.objects.count() == 0


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditrecord SET target_id = 'x'",
        "DELETE FROM audit_auditrecord",
        "UPDATE audit_auditseal SET hash = 'x'",
        "DELETE FROM audit_auditseal",
    ],
)
def test_postgres_refuses_update_and_delete_of_records_and_seals(sql):
    _records(1)
    audit_seal_pending()
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    assert AuditRecord.objects.filter(target_id="0").count() == 1
    assert AuditSeal.objects.filter(seq=1).exclude(hash="x").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_never_fork_the_chain():
    """8 threads x 25 committed transactions, each sealing on commit: one chain, no gap, nothing lost."""
    threads_count, per_thread = 8, 25
    barrier = threading.Barrier(threads_count)
    errors = []

    def writer(worker: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                with transaction.atomic(durable=True):
                    audit_record(
                        actor=None, action=AuditAction.TRANSFER_CREATED, target_type="transaction",
                        target_id=f"{worker}-{i}", data={"worker": worker, "i": i},
                    )
        except Exception as exc:  # surfaced below; a thread cannot fail the test itself
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    total = threads_count * per_thread
    assert AuditRecord.objects.count() == total
    # Stragglers (committed while another sealer held the lock) are what seal_audit is for.
    audit_seal_pending(wait=True)
    assert list(AuditSeal.objects.order_by("seq").values_list("seq", flat=True)) == list(range(1, total + 1))
    assert AuditSeal.objects.values("record").distinct().count() == total
    out = io.StringIO()
    call_command("verify_audit", stdout=out)
    assert out.getvalue().strip().startswith(f"audit chain intact: {total} sealed records checked, 0 awaiting a seal; ")
    assert out.getvalue().strip().endswith(" signed checkpoint(s) in the database match the chain")
