import pytest
from django.db.models import F
from django.urls import reverse

from audit.models import AuditAction, AuditRecord
from audit.tests.admin.conftest import action_post
from ledger.admin import LedgerAccountAdmin
from ledger.models import JournalEntry, LedgerAccount, Posting
from ledger.services.customer_accounts import account_freeze
from ledger.tests.factories import customer_account
from transactions.services.money import transfer_create
from transactions.tests.helpers import PIN, funded_account, new_key

pytestmark = pytest.mark.django_db
URL = reverse("admin:ledger_ledgeraccount_changelist")


def test_account_list_shows_balances_and_filters_by_currency(superuser_client):
    usd = funded_account(amount=12_345)
    customer_account(currency="NGN")
    response = superuser_client.get(URL, {"currency": "USD", "kind__exact": "customer"})
    assert response.status_code == 200
    assert [account.pk for account in response.context["cl"].result_list] == [usd.pk]
    page = response.content.decode()
    assert "123.45 USD" in page


def test_freeze_confirmation_then_service_and_audit(superuser_client, admin_user):
    account = funded_account(amount=500)
    first = action_post(superuser_client, URL, "freeze_accounts", [account.pk])
    assert first.status_code == 200
    assert account.number in first.content.decode()
    account.refresh_from_db()
    assert account.status == "active"

    blank = action_post(superuser_client, URL, "freeze_accounts", [account.pk], confirm="yes", reason="")
    assert blank.status_code == 200
    account.refresh_from_db()
    assert account.status == "active"
    assert not AuditRecord.objects.filter(action=AuditAction.ACCOUNT_FROZEN).exists()

    done = action_post(superuser_client, URL, "freeze_accounts", [account.pk], confirm="yes", reason="court order 12")
    assert done.status_code == 302
    account.refresh_from_db()
    assert (account.status, account.posted) == ("frozen", 500)
    record = AuditRecord.objects.get(action=AuditAction.ACCOUNT_FROZEN)
    assert (record.actor_id, record.target_id) == (admin_user.pk, str(account.pk))
    assert record.data == {"reason": "court order 12", "old_status": "active", "new_status": "frozen"}


def test_unfreeze_of_an_active_account_is_refused_with_a_message(superuser_client):
    account = funded_account(amount=0)
    response = action_post(superuser_client, URL, "unfreeze_accounts", [account.pk], confirm="yes", reason="oops")
    assert response.status_code == 302
    assert [str(m) for m in response.wsgi_request._messages] == [
        f"Unfreeze refused for {account}: The account is already active."
    ]
    assert not AuditRecord.objects.filter(action=AuditAction.ACCOUNT_UNFROZEN).exists()


@pytest.mark.parametrize("action, verb", [("freeze_accounts", "freeze"), ("unfreeze_accounts", "unfreeze")])
def test_system_accounts_are_refused_in_words_that_match_the_action(superuser_client, action, verb):
    funded_account(amount=100)
    system = LedgerAccount.objects.filter(kind=LedgerAccount.Kind.SYSTEM).order_by("number").first()
    response = action_post(superuser_client, URL, action, [system.pk], confirm="yes", reason="try")
    assert response.status_code == 302
    assert [str(m) for m in response.wsgi_request._messages] == [
        f"{verb.capitalize()} refused for {system}: System accounts cannot be {verb.replace('freeze', 'frozen')}."
    ]
    assert LedgerAccount.objects.get(pk=system.pk).status == "active"
    assert not AuditRecord.objects.filter(action__in=[AuditAction.ACCOUNT_FROZEN, AuditAction.ACCOUNT_UNFROZEN]).exists()


def test_unfreeze_works(superuser_client, admin_user):
    account = funded_account(amount=0)
    account_freeze(actor=admin_user, account=account, reason="x")
    response = action_post(superuser_client, URL, "unfreeze_accounts", [account.pk], confirm="yes", reason="cleared")
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.status == "active"


def test_balances_and_status_cannot_be_edited(superuser_client):
    account = funded_account(amount=700)
    url = reverse("admin:ledger_ledgeraccount_change", args=[account.pk])
    page = superuser_client.get(url).content.decode()
    assert 'name="posted"' not in page and 'name="status"' not in page and 'name="name"' in page
    response = superuser_client.post(url, {"name": "Savings", "posted": "999999", "pending": "5", "status": "frozen"})
    assert response.status_code == 302
    account.refresh_from_db()
    assert (account.name, account.posted, account.pending, account.status) == ("Savings", 700, 0, "active")
    record = AuditRecord.objects.get(action=AuditAction.ADMIN_CHANGE)
    assert (record.target_type, record.target_id) == ("ledger.ledgeraccount", str(account.pk))
    assert record.data == {"changed": ["name"], "old": {"name": ""}, "new": {"name": "Savings"}}
    assert superuser_client.get(reverse("admin:ledger_ledgeraccount_add")).status_code == 403


def test_renaming_an_account_keeps_a_balance_and_status_changed_meanwhile(superuser_client, monkeypatch):
    """A transfer or a freeze that commits between the change view's read and its write is kept."""
    account = funded_account(amount=700)
    load = LedgerAccountAdmin.get_object

    def load_then_changed_elsewhere(self, request, object_id, from_field=None):
        obj = load(self, request, object_id, from_field)
        if request.method == "POST":  # what another request commits while this edit is saved
            LedgerAccount.objects.filter(pk=obj.pk).update(
                posted=F("posted") + 300, status=LedgerAccount.Status.FROZEN, version=F("version") + 2
            )
        return obj

    monkeypatch.setattr(LedgerAccountAdmin, "get_object", load_then_changed_elsewhere)
    url = reverse("admin:ledger_ledgeraccount_change", args=[account.pk])
    assert superuser_client.post(url, {"name": "Savings"}).status_code == 302
    account.refresh_from_db()
    assert (account.name, account.posted, account.status) == ("Savings", 1000, "frozen")


@pytest.mark.parametrize("model", ["journalentry", "posting"])
def test_journal_and_postings_are_read_only_even_for_superusers(superuser_client, model):
    funded_account(amount=100)
    obj = (JournalEntry if model == "journalentry" else Posting).objects.first()
    assert superuser_client.get(reverse(f"admin:ledger_{model}_changelist")).status_code == 200
    change_url = reverse(f"admin:ledger_{model}_change", args=[obj.pk])
    view = superuser_client.get(change_url)
    assert view.status_code == 200
    assert view.context["has_change_permission"] is False
    assert superuser_client.post(change_url, {}).status_code == 403
    assert superuser_client.get(reverse(f"admin:ledger_{model}_add")).status_code == 403
    assert superuser_client.post(reverse(f"admin:ledger_{model}_delete", args=[obj.pk]), {"post": "yes"}).status_code == 403


def test_posting_list_query_count_does_not_grow_with_rows(superuser_client, django_assert_max_num_queries):
    for _ in range(3):
        funded_account(amount=100)
    url = reverse("admin:ledger_posting_changelist")
    superuser_client.get(url)  # warm the session/content-type caches
    with django_assert_max_num_queries(12) as small:
        superuser_client.get(url)
    for _ in range(10):
        funded_account(amount=100)
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = superuser_client.get(url)
    assert len(response.context["cl"].result_list) == 26


def test_changelist_counts_are_capped(superuser_client):
    from audit import admin_tools

    for _ in range(3):
        funded_account(amount=100)
    original = admin_tools.COUNT_CAP
    admin_tools.COUNT_CAP = 1
    try:
        response = superuser_client.get(reverse("admin:ledger_posting_changelist"))
    finally:
        admin_tools.COUNT_CAP = original
    assert Posting.objects.count() == 6
    assert response.context["cl"].result_count == 2  # cap + 1: "more than the cap"


def test_postings_show_amounts_as_money_in_the_list_the_entry_and_the_posting(superuser_client):
    source, destination = funded_account(amount=5000), funded_account(amount=0)
    entry = transfer_create(
        actor=source.owner, source=source, destination=destination, amount=1250, pin=PIN, idempotency_key=new_key()
    ).transaction.entry
    debit = Posting.objects.get(entry=entry, account=source)
    pages = {
        "list": reverse("admin:ledger_posting_changelist"),
        "entry": reverse("admin:ledger_journalentry_change", args=[entry.pk]),
        "posting": reverse("admin:ledger_posting_change", args=[debit.pk]),
    }
    for name, url in pages.items():
        page = superuser_client.get(url).content.decode()
        assert "-12.50 USD" in page and "37.50 USD" in page, name  # the debit and the balance after it
        assert ">-1250<" not in page and ">3750<" not in page, name


def test_a_capped_count_reads_as_at_least_the_cap(superuser_client, monkeypatch):
    from audit import admin_tools

    for _ in range(3):
        funded_account(amount=100)
    monkeypatch.setattr(admin_tools, "COUNT_CAP", 2)
    url = reverse("admin:ledger_posting_changelist")
    page = superuser_client.get(url).content.decode()
    assert "2+ postings" in page and "3 postings" not in page
    filtered = superuser_client.get(url, {"currency": "USD"}).content.decode()
    assert "2+ results" in filtered and "3 results" not in filtered
    monkeypatch.setattr(admin_tools, "COUNT_CAP", 10_000)
    assert "6 postings" in superuser_client.get(url).content.decode()  # under the cap: the exact count
