"""Where the benchmark runs: its databases, its Redis db, and Django set up on them.

The benchmark owns two PostgreSQL databases on 127.0.0.1:5432 (``ledgerx_bench``
for LedgerX, ``ledgerx_bench_pgbench`` for the baseline; plus
``ledgerx_bench_scale`` for the long-history measurements) and Redis db 4. It
runs the production settings (``ledgerx.settings``, not the test settings):
bench/run exports throwaway production secrets, so PIN hashes use bcrypt cost 12
exactly as in production.
"""

from __future__ import annotations

import os
import subprocess

PG_HOST = os.environ.get("BENCH_PGHOST", "127.0.0.1")
PG_PORT = os.environ.get("BENCH_PGPORT", "5432")
PG_USER = os.environ.get("BENCH_PGUSER", "postgres")
BENCH_DB = os.environ.get("BENCH_DB", "ledgerx_bench")
SCALE_DB = os.environ.get("BENCH_SCALE_DB", "ledgerx_bench_scale")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/4")


def database_url(name: str) -> str:
    return f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


def pg_args() -> list[str]:
    return ["-h", PG_HOST, "-p", PG_PORT, "-U", PG_USER]


def database_recreate(name: str) -> None:
    subprocess.run(["dropdb", *pg_args(), "--if-exists", "--force", name], check=True, stderr=subprocess.DEVNULL)
    subprocess.run(["createdb", *pg_args(), name], check=True)


def psql(name: str, sql: str) -> str:
    out = subprocess.run(["psql", *pg_args(), "-d", name, "-Atqc", sql], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def django_setup(db_name: str = BENCH_DB) -> None:
    """Point Django at ``db_name`` and Redis db 4 with production settings, then set it up."""
    os.environ["DATABASE_URL"] = database_url(db_name)
    os.environ.setdefault("REDIS_URL", REDIS_URL)
    os.environ["DJANGO_SETTINGS_MODULE"] = "ledgerx.settings"
    for name, value in production_secrets().items():
        os.environ.setdefault(name, value)
    import django

    django.setup()


def production_secrets() -> dict[str, str]:
    """Throwaway secrets so the production settings start (bench/run exports the same)."""
    return {
        "DJANGO_SECRET_KEY": "bench-only-secret-key-0123456789abcdef0123456789abcdef",
        "LEDGERX_PIN_PEPPER": "bench-only-pin-pepper-0123456789abcdef",
        "LEDGERX_JWT_SIGNING_KEY": "bench-only-jwt-signing-key-0123456789abcdef0123456789",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LEDGERX_LOG_LEVEL": "WARNING",
    }
