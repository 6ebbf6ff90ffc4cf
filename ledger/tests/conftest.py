"""Fixtures for the ledger tests."""

from ledger.tests.fixtures import client_for  # noqa: F401
