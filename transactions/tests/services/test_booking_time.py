"""Postings are stamped when they are booked (under the lock), not when the request arrived.

A request can wait for a lock (or for bcrypt) between being taken and being
booked; if its postings carried the earlier time, a movement booked before it
could carry a later time than its own, and ``balance?as_of=`` would return a
``balance_after`` that already includes money booked after ``as_of``.
"""

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from ledger.models import Posting
from ledger.selectors import account_posted_as_of
from transactions.services.money import transfer_create
from transactions.tests.helpers import PIN, funded_account

pytestmark = pytest.mark.django_db


def test_a_request_taken_early_but_booked_late_is_stamped_when_booked():
    source = funded_account(amount=1_000)
    destination = funded_account(amount=0)
    transfer_create(actor=source.owner, source=source, destination=destination, amount=100, pin=PIN, idempotency_key="a")
    booked_first = Posting.objects.filter(account=destination).latest("id")

    # The next request was taken ten minutes ago (say it waited that long for a lock).
    real_now = timezone.now
    taken = mock.Mock(now=lambda: real_now() - timedelta(minutes=10))
    with mock.patch("transactions.services.money.timezone", taken):
        late = transfer_create(
            actor=source.owner, source=source, destination=destination, amount=50, pin=PIN, idempotency_key="b"
        )
    booked_second = Posting.objects.filter(account=destination).latest("id")
    assert late.body["created_at"] < booked_first.created_at.isoformat()  # the request's own time stays
    assert booked_second.created_at >= booked_first.created_at
    # Just after the first booking, the balance is the first booking's, not both.
    assert account_posted_as_of(account=destination, as_of=booked_first.created_at) == 100
    assert account_posted_as_of(account=destination, as_of=timezone.now()) == 150
