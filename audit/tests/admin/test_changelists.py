"""Changelists run no query over a whole table: no date hierarchy, fixed date ranges on an index."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditRecord
from audit.tests.admin.conftest import changelist_plan
from transactions.models import Transaction
from transactions.tests.helpers import funded_account

pytestmark = pytest.mark.django_db

BIG_TABLES = [
    "accounts_user", "ledger_ledgeraccount", "ledger_journalentry", "ledger_posting",
    "transactions_transaction", "audit_auditrecord", "auditlog_logentry",
]


@pytest.mark.parametrize("model", BIG_TABLES)
def test_no_date_hierarchy_min_max_or_distinct_dates(superuser_client, model):
    funded_account(amount=100)
    with CaptureQueriesContext(connection) as queries:
        response = superuser_client.get(reverse(f"admin:{model}_changelist"))
    assert response.status_code == 200
    assert response.context["cl"].date_hierarchy is None
    for query in queries.captured_queries:
        sql = query["sql"].upper()
        for fragment in ("MIN(", "MAX(", "DISTINCT", "DATE_TRUNC", "DJANGO_DATETIME_TRUNC", "DJANGO_DATETIME_CAST_DATE"):
            assert fragment not in sql, query["sql"]


def _listed_by_range(client, model: str) -> dict:
    url = reverse(f"admin:{model}_changelist")
    return {
        since: {obj.pk for obj in client.get(url, {"since": since}).context["cl"].result_list}
        for since in ("today", "7d", "30d")
    }


def test_transactions_filter_by_fixed_ranges_of_created_at(superuser_client):
    old, new = funded_account(amount=100), funded_account(amount=200)
    old_deposit = Transaction.objects.get(destination_account=old)
    new_deposit = Transaction.objects.get(destination_account=new)
    Transaction.objects.filter(pk=old_deposit.pk).update(created_at=timezone.now() - timedelta(days=10))
    assert _listed_by_range(superuser_client, "transactions_transaction") == {
        "today": {new_deposit.pk}, "7d": {new_deposit.pk}, "30d": {old_deposit.pk, new_deposit.pk}
    }


def test_audit_records_filter_by_fixed_ranges_of_at(superuser_client):
    # Other records exist (the superuser's own); only these two are compared.
    old = AuditRecord.objects.create(at=timezone.now() - timedelta(days=10), action="admin.change", target_type="t", target_id="old")
    new = AuditRecord.objects.create(action="admin.change", target_type="t", target_id="new")
    listed = {since: pks & {old.pk, new.pk} for since, pks in _listed_by_range(superuser_client, "audit_auditrecord").items()}
    assert listed == {"today": {new.pk}, "7d": {new.pk}, "30d": {old.pk, new.pk}}


@pytest.mark.postgres
@pytest.mark.parametrize("model", ["transactions_transaction", "audit_auditrecord"])
def test_the_range_filter_is_planned_on_an_index(superuser_client, model):
    funded_account(amount=100)
    plan = changelist_plan(superuser_client.get(reverse(f"admin:{model}_changelist"), {"since": "7d"}))
    assert "Seq Scan" not in plan, plan
