"""Object pages: the back-office actions as buttons with the same reason confirmation, status badges."""

import pytest
from django.urls import reverse

from accounts.models import User
from accounts.tests.factories import UserFactory
from ledger.models import LedgerAccount
from transactions.tests.helpers import funded_account

pytestmark = pytest.mark.django_db


def _button_post(client, page_url, action, pk, changelist, **extra):
    """What the page's button posts: the list's action for this one object, naming the page to go back to."""
    body = {"action": action, "_selected_action": [str(pk)], "index": "0", "_ledgerx_back": page_url, **extra}
    return client.post(changelist, body)


def test_the_account_page_freezes_with_a_reason_and_comes_back(superuser_client):
    account = funded_account(amount=2500)
    page_url = reverse("admin:ledger_ledgeraccount_change", args=[account.pk])
    changelist = reverse("admin:ledger_ledgeraccount_changelist")
    page = superuser_client.get(page_url).content.decode()
    assert 'id="ledgerx-action-freeze_accounts"' in page and "ledgerx-action-unfreeze_accounts" not in page
    assert 'id="ledgerx-status">Active<' in page
    assert "Shard" not in page and "System role" not in page  # system-only fields hidden on customer accounts

    confirm = _button_post(superuser_client, page_url, "freeze_accounts", account.pk, changelist)
    assert confirm.status_code == 200
    body = confirm.content.decode()
    assert "Freeze accounts" in body and f'href="{page_url}" class="button cancel-link"' in body

    done = _button_post(superuser_client, page_url, "freeze_accounts", account.pk, changelist, confirm="yes", reason="fraud report")
    assert (done.status_code, done["Location"]) == (302, page_url)
    assert LedgerAccount.objects.get(pk=account.pk).status == "frozen"
    after = superuser_client.get(page_url)
    text = after.content.decode()
    assert 'id="ledgerx-status">Frozen<' in text and 'id="ledgerx-action-unfreeze_accounts"' in text
    assert [str(m) for m in after.context["messages"]] == [f"Freeze: {account}."]


def test_the_user_page_offers_suspend_or_reinstate_by_state(superuser_client):
    user = UserFactory()
    url = reverse("admin:accounts_user_change", args=[user.pk])
    assert 'id="ledgerx-action-suspend_users"' in superuser_client.get(url).content.decode()
    User.objects.filter(pk=user.pk).update(status="suspended")
    page = superuser_client.get(url).content.decode()
    assert 'id="ledgerx-action-reinstate_users"' in page and 'id="ledgerx-status">Suspended<' in page


def test_no_buttons_without_the_permission(client):
    viewer = UserFactory(is_staff=True)
    from django.contrib.auth.models import Permission

    viewer.user_permissions.add(Permission.objects.get(codename="view_ledgeraccount"))
    client.force_login(viewer)
    account = funded_account(amount=100)
    page = client.get(reverse("admin:ledger_ledgeraccount_change", args=[account.pk])).content.decode()
    assert "ledgerx-action-" not in page


def test_no_take_me_back_keeps_the_lists_filter(superuser_client):
    account = funded_account(amount=100)
    url = reverse("admin:ledger_ledgeraccount_changelist") + "?status__exact=active"
    confirm = superuser_client.post(url, {"action": "freeze_accounts", "_selected_action": [str(account.pk)], "index": "0"})
    assert f'href="{url}" class="button cancel-link"' in confirm.content.decode()


def test_the_account_page_shows_its_statement_and_links_its_activity(superuser_client):
    account = funded_account(amount=2500)
    page = superuser_client.get(reverse("admin:ledger_ledgeraccount_change", args=[account.pk])).content.decode()
    statement = page.split('id="ledgerx-statement"', 1)[1].split("</table>", 1)[0]
    assert "25.00 USD" in statement and statement.count("<tr>") == 2  # header + the deposit
    assert f'?q={account.number}" id="ledgerx-account-activity"' in page
    assert reverse("admin:accounts_user_change", args=[account.owner_id]) in page  # the owner's page


def test_the_user_page_links_accounts_and_activity(superuser_client):
    account = funded_account(amount=100)
    page = superuser_client.get(reverse("admin:accounts_user_change", args=[account.owner_id])).content.decode()
    owner = User.objects.get(pk=account.owner_id)
    assert f'{reverse("admin:ledger_ledgeraccount_changelist")}?q={owner.email}" id="ledgerx-user-accounts"' in page
    listing = superuser_client.get(reverse("admin:ledger_ledgeraccount_changelist"), {"q": owner.email})
    assert [a.pk for a in listing.context["cl"].result_list] == [account.pk]


def test_staff_see_one_audit_trail(superuser_client):
    from django.apps import apps
    from django.conf import settings

    assert not apps.is_installed("auditlog")  # django-auditlog is gone: no second, look-alike trail
    assert not any("auditlog" in name for name in settings.MIDDLEWARE)
    index = superuser_client.get(reverse("admin:index")).content.decode()
    assert "Audit records" in index and "Log entries" not in index
    # Django's own "Recent actions" box (its admin log, which LedgerX does not show) is not on the index.
    assert "Recent actions" not in index and "Activity" in index
