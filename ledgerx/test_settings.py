"""Settings for the test suite: the real settings with test-only defaults.

Environment variables still win, so the same suite runs on SQLite (default) and
on PostgreSQL + Redis (DATABASE_URL / REDIS_URL set by .ci/run).
"""

import os

os.environ.setdefault("LEDGERX_TESTING", "1")
os.environ.setdefault("LEDGERX_FAST_PASSWORD_HASHER", "1")
# Cost 4 keeps the suite fast; tests that check the production cost override it.
os.environ.setdefault("LEDGERX_PIN_BCRYPT_ROUNDS", "4")
os.environ.setdefault("LEDGERX_SQLITE_PATH", os.path.join(os.path.dirname(os.path.dirname(__file__)), "test-db.sqlite3"))

from ledgerx.settings import *  # noqa: E402,F403
