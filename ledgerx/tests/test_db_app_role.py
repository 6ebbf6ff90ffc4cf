"""The application's database role cannot change what is append-only, and can still move money."""

import io

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from audit.models import AuditAction, AuditRecord
from audit.services.records import audit_record
from audit.services.sealing import audit_seal_pending
from ledger.tests.factories import customer_account
from transactions.tests.helpers import user_with_pin

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]
ROLE = "ledgerx_sec_app_test"  # roles are cluster-wide: named after this checkout's database


@pytest.fixture
def as_app_role():
    """The role created and granted by the command, then this connection acting as it (rolled back after)."""
    call_command("db_app_role", ROLE, stdout=io.StringIO())
    audit_record(actor=None, action=AuditAction.LOGIN_FAILED, target_type="user", target_id="x")
    audit_seal_pending()
    with connection.cursor() as cursor:
        cursor.execute(f"SET ROLE {ROLE}")
    yield
    with connection.cursor() as cursor:
        cursor.execute("RESET ROLE")


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_auditrecord SET target_id = 'y'",
        "DELETE FROM audit_auditrecord",
        "TRUNCATE audit_auditrecord CASCADE",
        "DELETE FROM audit_auditseal",
        "UPDATE audit_auditcheckpoint SET seal_seq = 0",
        "DELETE FROM ledger_posting",
        "TRUNCATE ledger_journalentry CASCADE",
        "ALTER TABLE audit_auditrecord DISABLE TRIGGER USER",
        "DROP TRIGGER audit_auditrecord_append_only ON audit_auditrecord",
        "SET session_replication_role = replica",
    ],
)
def test_the_app_role_is_refused_every_way_around_the_append_only_rule(as_app_role, statement):
    with pytest.raises(DatabaseError, match="permission denied|must be owner"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)
    assert AuditRecord.objects.filter(target_id="x").count() == 1


def test_the_app_role_moves_money_writes_audit_and_seals(as_app_role):
    from transactions.services.money import deposit_create

    owner = user_with_pin()
    account = customer_account(owner=owner)
    deposit_create(actor=owner, account=account, amount=700, idempotency_key="app-role-1")
    assert audit_seal_pending() >= 1
    account.refresh_from_db()
    assert account.posted == 700
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone() == (ROLE,)
