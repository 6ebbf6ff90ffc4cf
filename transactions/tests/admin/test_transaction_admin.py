import pytest
from django.urls import reverse

from audit.models import AuditAction, AuditRecord
from audit.tests.admin.conftest import action_post
from transactions.models import Transaction
from transactions.services.money import transfer_create
from transactions.tests.helpers import PIN, books, funded_account, new_key

pytestmark = pytest.mark.django_db
URL = reverse("admin:transactions_transaction_changelist")


def _transfer(source, destination, amount, **kwargs):
    return transfer_create(
        actor=source.owner, source=source, destination=destination, amount=amount, pin=PIN, idempotency_key=new_key(), **kwargs
    ).transaction


def test_transaction_page_is_read_only_and_shows_postings(superuser_client):
    source, destination = funded_account(amount=5000), funded_account(amount=0)
    txn = _transfer(source, destination, 1250)
    url = reverse("admin:transactions_transaction_change", args=[txn.pk])
    response = superuser_client.get(url)
    assert response.status_code == 200
    page = response.content.decode()
    assert "12.50 USD" in page and "-12.50 USD" in page and "37.50 USD" in page  # amount, debit, balance after
    assert response.context["has_change_permission"] is False
    assert superuser_client.post(url, {}).status_code == 403
    assert superuser_client.get(reverse("admin:transactions_transaction_add")).status_code == 403


def test_reverse_asks_for_a_reason_then_calls_the_service(superuser_client, admin_user):
    source, destination = funded_account(amount=5000), funded_account(amount=0)
    txn = _transfer(source, destination, 2000)
    confirm = action_post(superuser_client, URL, "reverse_transactions", [txn.pk])
    assert confirm.status_code == 200
    assert "Reverse transactions" in confirm.content.decode()
    before = books()
    blank = action_post(superuser_client, URL, "reverse_transactions", [txn.pk], confirm="yes", reason=" ")
    assert blank.status_code == 200
    assert books() == before

    done = action_post(superuser_client, URL, "reverse_transactions", [txn.pk], confirm="yes", reason="chargeback 99")
    assert done.status_code == 302
    txn.refresh_from_db()
    source.refresh_from_db()
    destination.refresh_from_db()
    assert (txn.status, source.posted, destination.posted) == ("reversed", 5000, 0)
    reversal = Transaction.objects.get(reverses=txn)
    assert (reversal.type, reversal.amount, reversal.initiated_by_id) == ("reversal", 2000, admin_user.pk)
    record = AuditRecord.objects.get(action=AuditAction.TRANSACTION_REVERSED)
    assert (record.actor_id, record.data["reason"]) == (admin_user.pk, "chargeback 99")


def test_reverse_confirmation_names_each_transaction_by_id_and_amount_as_money(superuser_client):
    source, destination = funded_account(amount=500_000), funded_account(amount=0)
    first, second = _transfer(source, destination, 2000), _transfer(source, destination, 123_456)
    page = action_post(superuser_client, URL, "reverse_transactions", [first.pk, second.pk]).content.decode()
    items = page.split('<ul class="ledgerx-action-objects">')[1].split("</ul>")[0]
    assert f"<li>transfer {first.pk}: 20.00 USD (committed)</li>" in items
    assert f"<li>transfer {second.pk}: 1,234.56 USD (committed)</li>" in items
    assert "2000" not in items and "123456" not in items


def test_reversing_twice_is_refused_and_changes_nothing(superuser_client):
    source, destination = funded_account(amount=5000), funded_account(amount=0)
    txn = _transfer(source, destination, 2000)
    action_post(superuser_client, URL, "reverse_transactions", [txn.pk], confirm="yes", reason="first")
    before = books()
    again = action_post(superuser_client, URL, "reverse_transactions", [txn.pk], confirm="yes", reason="second")
    assert again.status_code == 302
    messages = [str(m) for m in again.wsgi_request._messages]
    assert messages == [
        f"Reverse: transfer {txn.pk}: 20.00 USD (reversed).",  # the first run's message, not yet displayed
        f"Reverse refused for transfer {txn.pk}: 20.00 USD (reversed): Only committed transactions can be reversed; "
        "this one is reversed.",
    ]
    assert books() == before


def test_transaction_list_has_no_n_plus_one(superuser_client, django_assert_max_num_queries):
    source, destination = funded_account(amount=50_000), funded_account(amount=0)
    _transfer(source, destination, 10)
    superuser_client.get(URL)
    with django_assert_max_num_queries(12) as small:
        superuser_client.get(URL)
    for _ in range(8):
        _transfer(source, destination, 10)
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = superuser_client.get(URL)
    assert len(response.context["cl"].result_list) == 10  # 1 deposit + 9 transfers
