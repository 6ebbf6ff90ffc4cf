"""Every back-office action's reason follows one rule (``ledgerx.text.reason_clean``), API and services alike."""

import pytest

from accounts.services import user_suspend
from accounts.tests.factories import AdminFactory, UserFactory
from ledger.services.customer_accounts import account_freeze
from ledger.tests.factories import customer_account
from ledgerx.exceptions import ValidationFailed
from ledgerx.text import REASON_MAX, reason_clean


@pytest.mark.parametrize(
    "reason, message",
    [
        (None, "A non-empty reason is required."),
        (42, "A non-empty reason is required."),
        ("   ", "A non-empty reason is required."),
        ("x" * (REASON_MAX + 1), f"Ensure this field has no more than {REASON_MAX} characters."),
        ("a\x00b", "Null characters are not allowed."),
    ],
)
def test_a_reason_that_cannot_be_recorded_is_refused(reason, message):
    with pytest.raises(ValidationFailed) as excinfo:
        reason_clean(reason)
    assert excinfo.value.fields == {"reason": [message]}


def test_a_reason_is_recorded_stripped():
    assert reason_clean("  fraud report #4  ") == "fraud report #4"
    assert reason_clean("x" * REASON_MAX) == "x" * REASON_MAX


@pytest.mark.django_db
def test_services_and_the_api_apply_the_same_limit(api_client):
    admin = AdminFactory()
    account = customer_account()
    too_long = "x" * (REASON_MAX + 1)
    for call in (
        lambda: account_freeze(actor=admin, account=account, reason=too_long),
        lambda: user_suspend(actor=admin, user=UserFactory(), reason=too_long),
    ):
        with pytest.raises(ValidationFailed):
            call()
    api_client.force_authenticate(admin)
    response = api_client.post(f"/api/v1/admin/accounts/{account.pk}/freeze", {"reason": too_long}, format="json")
    assert response.status_code == 400 and "reason" in response.json()["error"]["fields"]
    response = api_client.post(f"/api/v1/admin/accounts/{account.pk}/freeze", {"reason": " spaced "}, format="json")
    assert response.status_code == 200
