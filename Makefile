# Shortcuts; each target is one of the scripts the README documents.
.PHONY: run test ci bench bench-quick

run:          ## set up and serve LedgerX on http://127.0.0.1:8000
	bash scripts/run

test:         ## set up and run the test suite (SQLite unless DATABASE_URL is set)
	bash scripts/test

ci:           ## what CI runs: PostgreSQL + Redis, then the embedded default
	bash .ci/run

bench:        ## the full benchmark against local PostgreSQL (see bench/RESULTS.md)
	bash bench/run

bench-quick:
	bash bench/run --quick
