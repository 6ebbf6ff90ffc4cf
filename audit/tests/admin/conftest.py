import pytest
from django.contrib.auth.models import Group
from django.db import connection

from accounts.tests.factories import UserFactory
from audit.compliance import GROUP_NAME


@pytest.fixture
def superuser_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def compliance_user(db):
    user = UserFactory(email="compliance@example.com", is_staff=True)
    user.groups.add(Group.objects.get(name=GROUP_NAME))
    return user


@pytest.fixture
def compliance_client(client, compliance_user):
    client.force_login(compliance_user)
    return client


def action_post(client, url: str, action: str, pks, **extra):
    """POST the changelist's action form (first step), or the confirmation page (with confirm='yes')."""
    data = {"action": action, "_selected_action": [str(pk) for pk in pks], "index": "0", **extra}
    return client.post(url, data)


def changelist_plan(response, *, sort: bool = True) -> str:
    """EXPLAIN (PostgreSQL) of the query behind a changelist response's page, sequential scans priced out.

    A test table is small enough that the planner would scan it anyway; with
    ``enable_seqscan`` off it still falls back to a Seq Scan when no index can
    serve the query, which is what the callers catch. With ``sort=False`` full
    sorts are priced out too: a "Sort" left in the plan means no index gives
    the list's order. SET LOCAL ends with the test's transaction.
    """
    cl = response.context["cl"]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        if not sort:
            cursor.execute("SET LOCAL enable_sort = off")
    return cl.queryset[: cl.list_per_page].explain()
