"""Fixtures for the events tests."""

from events.tests.receiver import receiver  # noqa: F401
from ledger.tests.fixtures import client_for  # noqa: F401
