"""Read replicas: which reads may use one, which replica is fit, and read-your-writes by LSN.

Explicit, never inferred: only a function wrapped in ``replica_reads`` (the
read-only views: statements, transaction/event/batch lists, ``balance?as_of``,
the admin's list pages) or run under ``reading_from`` (``verify_ledger
--replica``) reads from a replica. The router (``ledgerx.db.router``) sends
every other statement to the primary.

Read-your-writes: after a user's write request succeeds, the primary's WAL
insert position (``pg_current_wal_insert_lsn()``, read after the commit, so
it is past the commit record) is remembered for that user in Redis
(``lsn_remember``; in-process when there is no Redis), keeping the highest.
A read for that user uses a replica only if the replica's replay position
(``pg_last_wal_replay_lsn()``) has reached it: WAL is replayed in order, so
the replica then shows every change the user was told about. A replica that
lags more than ``LEDGERX_REPLICA_MAX_LAG`` seconds, is down, or is not in
recovery is skipped; the read runs on the primary. If the remembered position
cannot be looked up (Redis down), the read runs on the primary too: not
knowing is never a reason to risk a stale answer.

A replica's state is probed at most once a second per process (the probe
runs on the replica, never on the primary); the cached replay position only
ever understates the real one (replay moves forward), so it is re-read only
when it is not far enough for this user.

A replica that fails in the middle of a read (stopped, restarted, a recovery
conflict) is marked down and the read is run again on the primary: the
wrapped function must evaluate everything it reads before it returns.
"""

import functools
import logging
import random
import threading
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

from ledgerx.observability import metrics

logger = logging.getLogger("ledgerx.db.replicas")

_read_alias: ContextVar[str | None] = ContextVar("ledgerx_read_alias", default=None)

# How long a probe of a replica's state is believed, per process.
PROBE_SECONDS = 1.0

# Replica state in one statement. Lag is zero while everything received is
# replayed and the WAL receiver is streaming; otherwise it is the age of the
# last replayed commit (so an idle primary is not mistaken for lag only when
# the app role can see the receiver: grant it pg_monitor). Unknown is "lagging".
_PROBE_SQL = (
    "SELECT pg_is_in_recovery(), (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint, "
    "CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() "
    "AND (SELECT status FROM pg_stat_wal_receiver) = 'streaming' THEN 0 "
    "ELSE EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp()) END"
)
# Remembered when the position after a write could not be read: no replica reaches
# it, so the user reads from the primary until it expires.
LSN_UNKNOWN = 2**62
_LSN_SQL = "SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint"


@dataclass(frozen=True)
class ReplicaState:
    checked_at: float
    up: bool
    replay_lsn: int = 0
    lag: float | None = None

    @property
    def fit(self) -> bool:
        return self.up and self.lag is not None and self.lag <= settings.REPLICA_MAX_LAG

    @property
    def label(self) -> str:
        """What ``/readyz`` says of it: ok, lagging or down."""
        if not self.up:
            return "down"
        return "ok" if self.fit else "lagging"


_states: dict[str, ReplicaState] = {}
_states_lock = threading.Lock()


def current_read_alias() -> str:
    """The database a read in the current scope uses: the chosen replica, or the primary."""
    return _read_alias.get() or DEFAULT_DB_ALIAS


@contextmanager
def reading_from(alias: str):
    """Route the domain reads in this block to ``alias`` (no fallback: see ``replica_reads``)."""
    token = _read_alias.set(alias)
    try:
        yield alias
    finally:
        _read_alias.reset(token)


def replica_probe(alias: str) -> ReplicaState:
    """Ask the replica itself where it is; a failure or a server not in recovery is "down"."""
    conn = connections[alias]
    try:
        with conn.cursor() as cursor:
            cursor.execute(_PROBE_SQL)
            in_recovery, replay_lsn, lag = cursor.fetchone()
    except DatabaseError as exc:
        logger.warning("replica %s unreachable: %s", alias, exc)
        _close_quietly(alias)
        return ReplicaState(time.monotonic(), up=False)
    if not in_recovery or replay_lsn is None:
        return ReplicaState(time.monotonic(), up=False)
    return ReplicaState(time.monotonic(), up=True, replay_lsn=int(replay_lsn), lag=None if lag is None else float(lag))


def replica_state(alias: str, *, fresh: bool = False) -> ReplicaState:
    """The replica's state as probed within the last ``PROBE_SECONDS`` (``fresh``: probe now)."""
    state = _states.get(alias)
    if fresh or state is None or time.monotonic() - state.checked_at >= PROBE_SECONDS:
        state = replica_probe(alias)
        with _states_lock:
            _states[alias] = state
    return state


def replica_mark_down(alias: str) -> None:
    with _states_lock:
        _states[alias] = ReplicaState(time.monotonic(), up=False)


def replica_states() -> dict[str, ReplicaState]:
    """Every configured replica's state (for ``/readyz``)."""
    return {alias: replica_state(alias) for alias in settings.REPLICA_ALIASES}


def replica_choose(user_id) -> str | None:
    """A fit replica that has replayed the user's last write, or None (use the primary)."""
    aliases = list(settings.REPLICA_ALIASES)
    if not aliases:
        return None
    required = lsn_required(user_id) if user_id is not None else 0
    if required is None:
        return None
    random.shuffle(aliases)
    for alias in aliases:
        state = replica_state(alias)
        if state.fit and state.replay_lsn < required:
            state = replica_state(alias, fresh=True)
        if state.fit and state.replay_lsn >= required:
            return alias
    return None


def replica_reads(func):
    """Run a read-only view method (``self, request, ...``) on a replica when one may serve it.

    The user is the request's, so read-your-writes holds for them. If the
    replica fails during the read, it is marked down and the read runs again
    on the primary: the caller never sees the replica's failure.
    """

    @functools.wraps(func)
    def wrapper(self, request, *args, **kwargs):
        user = getattr(request, "user", None)
        user_id = user.pk if getattr(user, "is_authenticated", False) else None
        return replica_run(user_id, func, self, request, *args, **kwargs)

    return wrapper


def replica_run(user_id, func, *args, **kwargs):
    """``func(*args, **kwargs)`` with its domain reads on a replica fit for ``user_id``, else the primary."""
    alias = replica_choose(user_id) if settings.REPLICA_ALIASES else None
    if alias is None:
        if settings.REPLICA_ALIASES:
            metrics.replica_read("primary")
        return func(*args, **kwargs)
    conn = connections[alias]
    conn.errors_occurred = False
    try:
        with reading_from(alias):
            result = func(*args, **kwargs)
    except DatabaseError as exc:
        if not conn.errors_occurred:  # not the replica's failure (Django flags the connection that failed)
            raise
        logger.warning("replica %s failed during a read (%s); reading from the primary", alias, exc)
        replica_mark_down(alias)
        _close_quietly(alias)
        metrics.replica_read("primary")
        return func(*args, **kwargs)
    metrics.replica_read("replica")
    return result


def _close_quietly(alias: str) -> None:
    try:
        connections[alias].close()
    except Exception:  # noqa: BLE001 - closing a dead connection may fail too
        pass


# --- Read-your-writes: the LSN each user must see ----------------------------------------

# Keeps the higher of the stored and the new position (two writes of one user may
# finish out of order), and renews the expiry.
_REMEMBER_LUA = (
    "local v = redis.call('GET', KEYS[1]) "
    "if (not v) or tonumber(v) < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) "
    "else redis.call('EXPIRE', KEYS[1], ARGV[2]) end return 1"
)
_local_lsns: dict[str, tuple[int, float]] = {}  # user id -> (position, expiry)
_local_lock = threading.Lock()


def _lsn_key(user_id) -> str:
    return f"ledgerx:rw-lsn:{user_id}"


def lsn_ttl() -> int:
    """How long a user's position matters: past it, any replica still fit has replayed it
    (a fit replica lags at most ``REPLICA_MAX_LAG``), with a wide margin."""
    return max(60, int(settings.REPLICA_MAX_LAG * 10))


def lsn_current() -> int:
    """The primary's WAL insert position now (one statement; after a commit it is past it)."""
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(_LSN_SQL)
        return int(cursor.fetchone()[0])


def _local_remember(user_id, lsn: int) -> None:
    now = time.monotonic()
    with _local_lock:
        old = _local_lsns.get(str(user_id))
        keep = max(lsn, old[0]) if old and old[1] > now else lsn
        _local_lsns[str(user_id)] = (keep, now + lsn_ttl())


def _local_required(user_id) -> int:
    with _local_lock:
        entry = _local_lsns.get(str(user_id))
    return entry[0] if entry and entry[1] > time.monotonic() else 0


def lsn_remember(user_id, lsn: int) -> None:
    """Remember that ``user_id`` must see at least ``lsn``: in this process, and in Redis
    for every other app server. Raises nothing (a Redis failure is logged)."""
    _local_remember(user_id, lsn)
    if not settings.REDIS_URL:
        return
    from django.core.cache import cache

    try:
        client = cache.client
        client.get_client(write=True).eval(_REMEMBER_LUA, 1, client.make_key(_lsn_key(user_id)), lsn, lsn_ttl())
    except Exception as exc:  # noqa: BLE001 - any Redis failure
        logger.warning("read-your-writes position not stored in Redis (%s)", exc)


def lsn_required(user_id) -> int | None:
    """The position a replica must have replayed for ``user_id`` (0: none), None if unknown
    (Redis configured but not answering: the caller reads from the primary)."""
    local = _local_required(user_id)
    if not settings.REDIS_URL:
        return local
    from django.core.cache import cache

    try:
        client = cache.client
        raw = client.get_client(write=False).get(client.make_key(_lsn_key(user_id)))
    except Exception as exc:  # noqa: BLE001 - any Redis failure
        logger.warning("read-your-writes position unknown (%s); reading from the primary", exc)
        return None
    return max(local, int(raw) if raw is not None else 0)
