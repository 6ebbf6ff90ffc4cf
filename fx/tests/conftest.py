"""Fixtures for the fx tests."""

from ledger.tests.fixtures import client_for  # noqa: F401
