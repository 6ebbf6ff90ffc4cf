"""Changelists run no query over a whole table: no date hierarchy, fixed date ranges on an index."""

import re
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
    "transactions_transaction", "audit_auditrecord", "approvals_approvalrequest",
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


# --- Sorting ---------------------------------------------------------------------------------

# The columns each list may be sorted by (each an index's leading column) and its default order.
SORTING = {
    "accounts_user": ({"email"}, ["email"]),
    "ledger_ledgeraccount": ({"number"}, ["number"]),
    "ledger_journalentry": ({"id"}, ["-id"]),
    "ledger_posting": ({"id"}, ["-id"]),
    "transactions_transaction": ({"created_at"}, ["-created_at", "-id"]),
    "audit_auditrecord": ({"at"}, ["-at", "-id"]),
    "approvals_approvalrequest": ({"created_at"}, ["-created_at", "-id"]),
}


def _order_by(client, model: str, params: dict) -> list:
    response = client.get(reverse(f"admin:{model}_changelist"), params)
    assert response.status_code == 200
    return list(response.context["cl"].queryset.query.order_by)


@pytest.mark.parametrize("model", BIG_TABLES)
def test_only_indexed_columns_sort_the_list_even_from_a_hand_written_url(superuser_client, model):
    """sortable_by alone only hides the header links; ?o=2 on postings sorted by account through a join."""
    funded_account(amount=100)
    if model == "approvals_approvalrequest":  # an empty list draws no headers
        import uuid

        from accounts.tests.factories import AdminFactory
        from approvals.models import ApprovalRequest

        ApprovalRequest.objects.create(action="user.reinstate", target_id=uuid.uuid4(), requested_by=AdminFactory(), reason="x")
    sortable, default = SORTING[model]
    response = superuser_client.get(reverse(f"admin:{model}_changelist"))
    cl = response.context["cl"]
    assert list(cl.queryset.query.order_by) == default
    headers = response.content.decode()
    for index, name in enumerate(cl.list_display):
        for direction in ("", "-"):
            order_by = _order_by(superuser_client, model, {"o": f"{direction}{index}"})
            if name in sortable:
                tie = f"{direction}id"  # the tie-break follows the column's direction
                assert order_by in ([f"{direction}{name}", tie], [f"{direction}{name}"]), (name, order_by)
            else:
                assert order_by == default, (name, order_by)
        linked = re.search(rf'href="\?o=(?:[-0-9.]*\.)?-?{index}[".]', headers) is not None
        assert linked == (name in sortable), name


@pytest.mark.postgres
@pytest.mark.parametrize("model", BIG_TABLES)
def test_every_order_a_list_offers_is_an_index_order(superuser_client, model):
    funded_account(amount=100)
    url = reverse(f"admin:{model}_changelist")
    cl = superuser_client.get(url).context["cl"]
    orders = [{}] + [
        {"o": f"{direction}{index}"}
        for index, name in enumerate(cl.list_display) if name in SORTING[model][0]
        for direction in ("", "-")
    ]
    for params in orders:
        plan = changelist_plan(superuser_client.get(url, params), sort=False)
        assert "Seq Scan" not in plan and "->  Sort  " not in plan, f"{model} {params}:\n{plan}"
