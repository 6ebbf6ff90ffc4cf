"""Fixtures for the transactions tests."""

from ledger.tests.fixtures import client_for  # noqa: F401
