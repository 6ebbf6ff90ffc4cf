"""Time-ordered ids (ledgerx.ids): the version 7 layout, and its use by the rows that grow."""

import time
import uuid

import pytest

from ledgerx.ids import uuid7


def test_uuid7_is_an_rfc_9562_version_7_uuid_led_by_the_unix_milliseconds():
    before = time.time_ns() // 1_000_000
    value = uuid7()
    after = time.time_ns() // 1_000_000
    assert (value.version, value.variant) == (7, uuid.RFC_4122)
    assert before <= value.int >> 80 <= after


def test_uuid7_sorts_by_creation_time_and_never_repeats():
    earlier = [uuid7() for _ in range(1000)]
    time.sleep(0.002)
    later = [uuid7() for _ in range(1000)]
    assert max(earlier) < min(later)  # what keeps index inserts on the rightmost pages
    assert max(str(value) for value in earlier) < min(str(value) for value in later)  # as text too (audit target_id)
    assert len(set(earlier + later)) == 2000
    assert len({value.int & ((1 << 62) - 1) for value in earlier}) == 1000  # the random part varies within a millisecond


def test_uuid7_made_one_after_another_sort_in_that_order_even_within_a_millisecond():
    made = [uuid7() for _ in range(20_000)]  # thousands per millisecond
    assert made == sorted(made)  # the audit queue drains in record-id order (audit.models.AuditPending)
    assert len(set(made)) == len(made)
    assert {value.version for value in made} == {7}


@pytest.mark.django_db
def test_transactions_and_their_audit_records_get_time_ordered_ids():
    from audit.models import AuditRecord
    from transactions.services.money import deposit_create, transfer_create
    from transactions.tests.helpers import PIN, funded_account

    source = funded_account(amount=100)
    destination = funded_account(amount=0)
    deposit = deposit_create(actor=source.owner, account=source, amount=5, idempotency_key="d-1").transaction
    transfer = transfer_create(
        actor=source.owner, source=source, destination=destination, amount=1, pin=PIN, idempotency_key="t-1"
    ).transaction
    assert (deposit.pk.version, transfer.pk.version) == (7, 7)
    assert deposit.pk < transfer.pk or deposit.pk.int >> 80 == transfer.pk.int >> 80
    records = AuditRecord.objects.filter(target_id__in=[str(deposit.pk), str(transfer.pk)])
    assert len(records) == 2 and {record.pk.version for record in records} == {7}
