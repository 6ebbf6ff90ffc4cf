"""Smoke test of the `conversion` bench point: its factory builds an op that converts, and the suite runs it.

Run: python -m pytest bench/tests -q (no benchmark is run: one op on tiny books).
"""

import pytest

import accounts.services
import transactions.batches
import transactions.services.money
from bench import scenarios
from bench.books import books_create
from bench.suite import POINT_ORDER
from transactions.models import Transaction
from transactions.verification import books_verify


def test_conversion_is_a_service_point_of_the_suite():
    assert "conversion" in POINT_ORDER
    assert scenarios.SCENARIO_FACTORIES["conversion"] is scenarios.make_conversion
    assert "conversion" in scenarios.SERVICE_SCENARIOS


@pytest.mark.django_db
def test_one_conversion_op_converts_and_keeps_the_books(monkeypatch):
    # The factory turns the PIN check off process-wide: put it back after the test.
    for module in (accounts.services, transactions.batches, transactions.services.money):
        monkeypatch.setattr(module, "pin_verify", module.pin_verify)
    books_create(n_accounts=3, log=lambda *args: None)
    op = scenarios.make_conversion(0, 1)
    op()
    op()
    conversions = Transaction.objects.filter(type="conversion")
    assert conversions.count() == 2
    # 1500 less 50 bps = 1492.5 kobo per cent, rounded down.
    assert all(t.destination_currency == "NGN" and t.destination_amount == t.source_amount * 14925 // 10 for t in conversions)
    assert [result.name for result in books_verify() if not result.ok] == []
