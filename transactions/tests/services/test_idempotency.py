from datetime import timedelta
from unittest import mock

import pytest
from django.core.management import call_command
from django.utils import timezone

from ledger.exceptions import InsufficientFunds
from ledgerx.exceptions import ValidationFailed
from transactions import idempotency
from transactions.exceptions import IdempotencyInProgress, IdempotencyKeyRequired, IdempotencyKeyReused
from transactions.models import IdempotencyRecord, Transaction
from transactions.services.money import deposit_create, transfer_create, withdrawal_create
from transactions.tests.helpers import PIN, books, funded_account, key_in_flight

pytestmark = pytest.mark.django_db


def test_same_key_same_request_replays_without_moving_money():
    account = funded_account(amount=1000)
    first = withdrawal_create(actor=account.owner, account=account, amount=300, pin=PIN, idempotency_key="w")
    before = books()
    # A replay does not even need the right PIN: the body is compared without it.
    second = withdrawal_create(actor=account.owner, account=account, amount=300, pin="0000", idempotency_key="w")
    assert books() == before
    assert second.replayed is True and first.replayed is False
    assert (second.status, second.body, second.transaction.pk) == (201, first.body, first.transaction.pk)
    account.refresh_from_db()
    assert account.posted == 700


def test_replay_returns_the_original_body_even_after_changes():
    source = funded_account(amount=1000)
    destination = funded_account(amount=0)
    args = dict(actor=source.owner, source=source, destination=destination, amount=10, pin=PIN, idempotency_key="h", hold=True)
    first = transfer_create(**args)
    from transactions.services.holds import hold_commit

    hold_commit(actor=source.owner, transaction=first.transaction)
    again = transfer_create(**args)
    assert again.body["status"] == "pending" and again.body == first.body


@pytest.mark.parametrize(
    "change", [{"amount": 301}, {"description": "other"}, {"metadata": {"a": "b"}}]
)
def test_same_key_different_request_is_refused(change):
    account = funded_account(amount=1000)
    withdrawal_create(actor=account.owner, account=account, amount=300, pin=PIN, idempotency_key="w")
    before = books()
    with pytest.raises(IdempotencyKeyReused):
        withdrawal_create(
            actor=account.owner, account=account, pin=PIN, idempotency_key="w", **{"amount": 300, **change}
        )
    assert books() == before


def test_keys_are_scoped_per_user_and_endpoint():
    account = funded_account(amount=1000)
    other = funded_account(amount=1000)
    withdrawal_create(actor=account.owner, account=account, amount=1, pin=PIN, idempotency_key="same")
    deposit_create(actor=account.owner, account=account, amount=1, idempotency_key="same")
    withdrawal_create(actor=other.owner, account=other, amount=1, pin=PIN, idempotency_key="same")
    assert IdempotencyRecord.objects.filter(key="same").count() == 3
    account.refresh_from_db()
    assert account.posted == 1000


def test_failed_request_does_not_bind_its_key():
    account = funded_account(amount=100)
    with pytest.raises(InsufficientFunds):
        withdrawal_create(actor=account.owner, account=account, amount=500, pin=PIN, idempotency_key="w")
    assert not IdempotencyRecord.objects.filter(key="w").exists()
    deposit_create(actor=account.owner, account=account, amount=400, idempotency_key="d")
    outcome = withdrawal_create(actor=account.owner, account=account, amount=500, pin=PIN, idempotency_key="w")
    assert outcome.replayed is False
    account.refresh_from_db()
    assert account.posted == 0


def test_in_flight_key_is_refused_then_free_after_the_request():
    account = funded_account(amount=100)
    before = books()
    with key_in_flight(account.owner, "deposits", "d"), pytest.raises(IdempotencyInProgress):
        deposit_create(actor=account.owner, account=account, amount=1, idempotency_key="d")
    assert books() == before
    deposit_create(actor=account.owner, account=account, amount=1, idempotency_key="d")
    # Released after the request: a retry replays instead of getting 409.
    assert deposit_create(actor=account.owner, account=account, amount=1, idempotency_key="d").replayed


def test_in_flight_key_with_a_pin_is_refused_before_the_pin_check():
    source = funded_account(amount=100)
    destination = funded_account(amount=0)
    args = dict(actor=source.owner, source=source, destination=destination, amount=1, idempotency_key="t")
    with key_in_flight(source.owner, "transfers", "t"), pytest.raises(IdempotencyInProgress):
        transfer_create(pin="0000", **args)  # a wrong PIN is not even looked at
    source.owner.refresh_from_db()
    assert source.owner.failed_pin_attempts == 0
    first = transfer_create(pin=PIN, **args)
    # The key's guard was released with the write: the retry replays.
    assert transfer_create(pin=PIN, **args).body == first.body


def test_cache_down_still_dedupes_through_the_database():
    """With the cache marker unavailable (SQLite's guard; PostgreSQL's never touches the cache)."""
    from django_redis.exceptions import ConnectionInterrupted

    account = funded_account(amount=100)
    with mock.patch.object(idempotency.cache, "add", side_effect=ConnectionInterrupted(connection=None)):
        first = deposit_create(actor=account.owner, account=account, amount=5, idempotency_key="d")
        second = deposit_create(actor=account.owner, account=account, amount=5, idempotency_key="d")
    assert second.replayed and second.transaction.pk == first.transaction.pk
    assert Transaction.objects.filter(type="deposit", amount=5).count() == 1


def test_losing_the_unique_race_replays(settings):
    """A duplicate that got past the lookup (no marker) meets the unique key and replays, moving nothing."""
    settings.PIN_CACHE_SECONDS = 0  # a PIN proven from the cache skips the lookup altogether
    account = funded_account(amount=100)
    first = withdrawal_create(actor=account.owner, account=account, amount=5, pin=PIN, idempotency_key="w")
    before = books()
    real_guard = idempotency._in_flight_guard
    lookups = []

    def guard_that_misses(*args):
        guard = real_guard(*args)
        claim_and_probe = guard.claim_and_probe

        def claim_but_miss(**kwargs):
            lookups.append(claim_and_probe(**kwargs))  # claims the guard (and does see the key)
            return False

        guard.claim_and_probe = claim_but_miss
        return guard

    with mock.patch.object(idempotency, "_in_flight_guard", side_effect=guard_that_misses):
        second = withdrawal_create(actor=account.owner, account=account, amount=5, pin=PIN, idempotency_key="w")
    assert lookups == [True]
    assert second.replayed and second.body == first.body
    assert books() == before


def test_a_deposit_claims_its_key_in_the_write_itself():
    """No PIN, so no lookup first: the write finds the key bound and the request replays."""
    account = funded_account(amount=100)
    first = deposit_create(actor=account.owner, account=account, amount=5, idempotency_key="d")
    before = books()
    with mock.patch.object(idempotency, "_record_seen", side_effect=AssertionError("no lookup expected")):
        second = deposit_create(actor=account.owner, account=account, amount=5, idempotency_key="d")
        with pytest.raises(IdempotencyKeyReused):
            deposit_create(actor=account.owner, account=account, amount=6, idempotency_key="d")
    assert second.replayed and second.body == first.body
    assert books() == before


@pytest.mark.parametrize("key", [None, ""])
def test_key_required(key):
    account = funded_account(amount=100)
    with pytest.raises(IdempotencyKeyRequired):
        deposit_create(actor=account.owner, account=account, amount=1, idempotency_key=key)


@pytest.mark.parametrize("key", ["k" * 256, "tab\there", "é", "   "])
def test_malformed_key(key):
    account = funded_account(amount=100)
    before = books()
    with pytest.raises(ValidationFailed):
        deposit_create(actor=account.owner, account=account, amount=1, idempotency_key=key)
    assert books() == before


def test_longest_key_is_fine():
    account = funded_account(amount=100)
    deposit_create(actor=account.owner, account=account, amount=1, idempotency_key="k" * 255)
    assert IdempotencyRecord.objects.filter(key="k" * 255).count() == 1


def test_purge_removes_only_old_records(capsys):
    account = funded_account(amount=100)
    deposit_create(actor=account.owner, account=account, amount=1, idempotency_key="old")
    IdempotencyRecord.objects.filter(key="old").update(created_at=timezone.now() - timedelta(hours=49))
    call_command("purge_idempotency")
    assert "purged 1 idempotency record(s)" in capsys.readouterr().out
    assert not IdempotencyRecord.objects.filter(key="old").exists()
    assert IdempotencyRecord.objects.count() == 1  # the funding deposit's record stays
