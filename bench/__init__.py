"""LedgerX benchmark harness (not part of the test suite; see bench/README.md)."""
