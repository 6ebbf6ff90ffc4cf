"""Attacks by whoever owns the audit tables, and the signed checkpoints that catch them.

Each attack leaves a chain that is consistent in itself (``verify_audit``
without checkpoints passes, which is the point of the attack); the checkpoint
the sealer signed and shipped before it makes ``verify_audit --checkpoints``
fail. On PostgreSQL the attacker goes around the append-only triggers the way an
owner or superuser can (``session_replication_role = replica``).
"""

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from audit.checkpoints import checkpoint_signature
from audit.models import AuditAction, AuditCheckpoint, AuditRecord, AuditSeal
from audit.services.chain import GENESIS_HASH, RECORD_COLUMNS, record_converter, record_hash
from audit.services.records import audit_record
from audit.services.sealing import audit_seal_pending

pytestmark = pytest.mark.django_db


@pytest.fixture
def sink(tmp_path, settings):
    settings.AUDIT_CHECKPOINT_FILE = str(tmp_path / "checkpoints.jsonl")
    return settings.AUDIT_CHECKPOINT_FILE


@pytest.fixture
def sealed_trail(sink, django_capture_on_commit_callbacks):
    """Five sealed records and the checkpoint of their head, shipped to the sink."""
    records = [
        audit_record(actor=None, action=AuditAction.LOGIN_FAILED, target_type="user", target_id=str(i), data={"n": i})
        for i in range(5)
    ]
    with django_capture_on_commit_callbacks(execute=True):
        assert audit_seal_pending() == 5
    checkpoint = AuditCheckpoint.objects.get()
    assert (checkpoint.seal_seq, checkpoint.record_count) == (5, 5)
    assert checkpoint.head_hash == AuditSeal.objects.get(seq=5).hash
    return records


def _as_owner(*statements) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
        try:
            for sql, params in statements:
                cursor.execute(sql, params)
        finally:
            if connection.vendor == "postgresql":
                cursor.execute("SET session_replication_role = DEFAULT")


def _db_id(record) -> str:
    return str(record.pk) if connection.vendor == "postgresql" else record.pk.hex


def _verify(*args) -> str:
    out = io.StringIO()
    call_command("verify_audit", *args, stdout=out)
    return out.getvalue().strip()


def _verify_fails(*args) -> str:
    with pytest.raises(CommandError) as failure:
        _verify(*args)
    return str(failure.value)


def test_an_untouched_trail_passes_with_its_checkpoints(sealed_trail, sink):
    assert [json.loads(line)["seal_seq"] for line in open(sink)] == [5]
    assert _verify("--checkpoints", sink) == (
        "audit chain intact: 5 sealed records checked, 0 awaiting a seal; "
        "1 signed checkpoint(s) in the database match the chain; "
        f"1 signed checkpoint(s) in {sink} match the chain"
    )


def test_deleting_the_last_records_with_their_seals_is_caught(sealed_trail, sink):
    doomed = [_db_id(record) for record in sealed_trail[3:]]
    _as_owner(
        ("DELETE FROM audit_auditseal WHERE seq > 3", []),
        (f"DELETE FROM audit_auditrecord WHERE id IN ({', '.join(['%s'] * len(doomed))})", doomed),
        ("DELETE FROM audit_auditcheckpoint", []),
    )
    assert _verify().startswith("audit chain intact: 3 sealed records checked")  # consistent in itself
    failure = _verify_fails("--checkpoints", sink)
    assert f"checkpoints BROKEN: {sink} line 1 signed seal #5 at " in failure
    assert failure.endswith(", which is gone: records were removed")


def _rechain_from_genesis() -> None:
    """What an owner does after editing a record: recompute every seal so the chain links again."""
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT s."seq", {RECORD_COLUMNS} FROM "audit_auditseal" s '
            f'JOIN "audit_auditrecord" r ON r."id" = s."record_id" ORDER BY s."seq"'
        )
        rows = cursor.fetchall()
    convert = record_converter(connection)
    prev_hash, updates = GENESIS_HASH, []
    for row in rows:
        digest = record_hash(convert(row[1:]), prev_hash)
        updates.append(("UPDATE audit_auditseal SET prev_hash = %s, hash = %s WHERE seq = %s", [prev_hash, digest, row[0]]))
        prev_hash = digest
    _as_owner(*updates)


def test_editing_a_record_and_resealing_everything_after_it_is_caught(sealed_trail, sink):
    _as_owner(("UPDATE audit_auditrecord SET data = %s WHERE id = %s", ['{"n": 99}', _db_id(sealed_trail[1])]))
    _rechain_from_genesis()
    assert AuditRecord.objects.get(pk=sealed_trail[1].pk).data == {"n": 99}
    # The stored checkpoint alone already catches it ...
    assert _verify_fails() == (
        "audit chain intact: 5 sealed records checked, 0 awaiting a seal; "
        "checkpoints BROKEN: database checkpoint #%d: seal #5 no longer has the signed hash: "
        "records up to it were changed or re-chained" % AuditCheckpoint.objects.get().pk
    )
    # ... and when the owner deletes it too, the shipped copy does.
    _as_owner(("DELETE FROM audit_auditcheckpoint", []))
    assert _verify().startswith("audit chain intact: 5 sealed records checked")
    assert _verify_fails("--checkpoints", sink).endswith(
        f"checkpoints BROKEN: {sink} line 1: seal #5 no longer has the signed hash: "
        "records up to it were changed or re-chained"
    )


def test_emptying_the_audit_tables_is_caught(sealed_trail, sink):
    tables = ["audit_auditseal", "audit_auditpending", "audit_auditcheckpoint", "audit_auditrecord"]
    if connection.vendor == "postgresql":
        _as_owner(("SET CONSTRAINTS ALL IMMEDIATE", []), (f"TRUNCATE {', '.join(tables)}", []))
    else:
        _as_owner(*((f"DELETE FROM {table}", []) for table in tables))
    assert AuditRecord.objects.count() == 0
    assert _verify().startswith("audit chain intact: 0 sealed records checked")
    assert "signed seal #5 at" in _verify_fails("--checkpoints", sink)


def test_a_forged_checkpoint_line_is_caught(sealed_trail, sink):
    forged = {"seal_seq": 5, "head_hash": "f" * 64, "record_count": 5, "at": "2026-01-01T00:00:00.000000+00:00"}
    forged["signature"] = checkpoint_signature(forged, key="not-the-key")
    with open(sink, "a") as lines:
        lines.write(json.dumps(forged) + "\n")
    assert _verify_fails("--checkpoints", sink).endswith(
        f"checkpoints BROKEN: {sink} line 2: the signature does not verify (forged, or another key)"
    )


def test_a_checkpoint_is_signed_at_most_once_per_interval_and_only_when_the_head_moved(sealed_trail, settings):
    audit_record(actor=None, action=AuditAction.LOGIN_FAILED, target_type="user", target_id="6")
    audit_seal_pending()
    assert AuditCheckpoint.objects.count() == 1  # the first is younger than the interval
    settings.AUDIT_CHECKPOINT_INTERVAL = 0
    audit_record(actor=None, action=AuditAction.LOGIN_FAILED, target_type="user", target_id="7")
    audit_seal_pending()
    assert list(AuditCheckpoint.objects.order_by("id").values_list("seal_seq", flat=True)) == [5, 7]
    call_command("seal_audit", stdout=io.StringIO())  # nothing new: no checkpoint of the same head
    assert AuditCheckpoint.objects.count() == 2


@pytest.mark.postgres
@pytest.mark.parametrize("table", ["audit_auditrecord", "audit_auditseal", "audit_auditcheckpoint", "ledger_posting"])
def test_postgres_refuses_truncate_of_the_append_only_tables(sealed_trail, table):
    with pytest.raises(DatabaseError, match="append-only: TRUNCATE refused"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET LOCAL ledgerx.allow_truncate = 'off'")
            cursor.execute(f"TRUNCATE {table} CASCADE")
    assert AuditRecord.objects.count() == 5


@pytest.mark.postgres
def test_postgres_refuses_update_and_delete_of_checkpoints(sealed_trail):
    for sql in ("UPDATE audit_auditcheckpoint SET seal_seq = 1", "DELETE FROM audit_auditcheckpoint"):
        with pytest.raises(DatabaseError, match="append-only"):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql)
    assert AuditCheckpoint.objects.get().seal_seq == 5
