"""Settings for the test suite: the real settings with test-only defaults.

Environment variables still win, so the same suite runs on SQLite (default) and
on PostgreSQL + Redis (DATABASE_URL / REDIS_URL set by .ci/run).

The suite runs with DEBUG off, so it needs real secrets: fresh random ones per
run, set in the environment before the settings read them (subprocesses a test
starts inherit them). The production module has no switch that turns a public
key on.
"""

import os
import secrets
import tempfile

os.environ.setdefault("LEDGERX_TESTING", "1")
os.environ.setdefault("LEDGERX_FAST_PASSWORD_HASHER", "1")
# Cost 4 keeps the suite fast; tests that check the production cost override it.
os.environ.setdefault("LEDGERX_PIN_BCRYPT_ROUNDS", "4")
os.environ.setdefault("LEDGERX_SQLITE_PATH", os.path.join(os.path.dirname(os.path.dirname(__file__)), "test-db.sqlite3"))
os.environ.setdefault(
    "LEDGERX_AUDIT_CHECKPOINT_FILE", os.path.join(tempfile.gettempdir(), f"ledgerx-test-checkpoints-{os.getpid()}.jsonl")
)
for _name in ("DJANGO_SECRET_KEY", "LEDGERX_JWT_SIGNING_KEY", "LEDGERX_PIN_PEPPER", "LEDGERX_AUDIT_SIGNING_KEY"):
    os.environ.setdefault(_name, f"test-{secrets.token_urlsafe(32)}")

from ledgerx.settings import *  # noqa: E402,F403
