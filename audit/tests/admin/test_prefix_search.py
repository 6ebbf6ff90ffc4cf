"""Search people can use: the start of an email or account number, a name in any case, each on an index."""

import pytest
from django.urls import reverse

from accounts.tests.factories import UserFactory
from audit.tests.admin.conftest import changelist_plan
from ledger.tests.factories import customer_account

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(db):
    ada = UserFactory(email="customer003@example.com", full_name="Ada Lovelace")
    grace = UserFactory(email="customer030@example.com", full_name="Grace Hopper")
    other = UserFactory(email="zed@example.org", full_name="Adam Smith")
    return {"ada": ada, "grace": grace, "other": other, "ada_usd": customer_account(owner=ada), "grace_usd": customer_account(owner=grace)}


def _found(client, model, term):
    response = client.get(reverse(f"admin:{model}_changelist"), {"q": term})
    assert response.status_code == 200
    return response, {obj.pk for obj in response.context["cl"].result_list}


@pytest.mark.parametrize(
    "term, expected",
    [
        ("customer003", {"ada"}),
        ("CUSTOMER0", {"ada", "grace"}),
        ("customer003@example.com", {"ada"}),
        ("ada lov", {"ada"}),
        ("ADA", {"ada", "other"}),  # "Ada Lovelace" and "Adam Smith": the name's start, any case
        ("grace h", {"grace"}),
        ("lovelace", set()),  # the start of a name, not any part of it
        ("nobody", set()),
    ],
)
def test_users_by_the_start_of_an_email_or_a_name(superuser_client, people, term, expected):
    _response, pks = _found(superuser_client, "accounts_user", term)
    assert pks == {people[name].pk for name in expected}


def test_accounts_by_the_start_of_a_number_or_of_the_owners_email(superuser_client, people):
    ada_usd, grace_usd = people["ada_usd"], people["grace_usd"]
    _response, pks = _found(superuser_client, "ledger_ledgeraccount", ada_usd.number[:9])
    assert ada_usd.pk in pks
    assert all(number.startswith(ada_usd.number[:9]) for number in
               type(ada_usd).objects.filter(pk__in=pks).values_list("number", flat=True))
    _response, pks = _found(superuser_client, "ledger_ledgeraccount", ada_usd.number)
    assert pks == {ada_usd.pk}
    _response, pks = _found(superuser_client, "ledger_ledgeraccount", "customer0")
    assert pks == {ada_usd.pk, grace_usd.pk}
    _response, pks = _found(superuser_client, "ledger_ledgeraccount", "sys-usd-fun")
    assert len(pks) >= 1 and all(
        number.startswith("SYS-USD-FUN") for number in type(ada_usd).objects.filter(pk__in=pks).values_list("number", flat=True)
    )


def test_the_hint_says_what_each_box_searches(superuser_client, people):
    users = superuser_client.get(reverse("admin:accounts_user_changelist")).content.decode()
    assert "the start of an email or of a name, any case" in users
    accounts = superuser_client.get(reverse("admin:ledger_ledgeraccount_changelist")).content.decode()
    assert "account number or its start" in accounts


@pytest.mark.postgres
@pytest.mark.parametrize(
    "model, term, index",
    [
        ("accounts_user", "customer00", "accounts_user_email_"),
        ("accounts_user", "Ada Lov", "accounts_user_name_prefix_idx"),
        ("ledger_ledgeraccount", "number-prefix", "ledger_ledgeraccount_number_"),
    ],
)
def test_prefix_searches_are_planned_on_their_index(superuser_client, people, model, term, index):
    term = people["ada_usd"].number[:8] if term == "number-prefix" else term
    response = superuser_client.get(reverse(f"admin:{model}_changelist"), {"q": term})
    plan = changelist_plan(response)
    assert "Seq Scan" not in plan and index in plan, plan
    assert "~~" in plan  # the LIKE 'prefix%' is the index condition's range, checked on the rows it returns
