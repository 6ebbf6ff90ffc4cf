"""Verified-PIN cache: a short-lived proof that bcrypt accepted a user's PIN.

The pattern of Apache httpd's ``mod_authn_socache``: after bcrypt proves a PIN
right, ``pin_verify`` stores a *proof*, an HMAC-SHA256 keyed with a key derived
from ``settings.PIN_PEPPER`` over the user id, the PIN, the stored PIN hash and
password hash and the user's current *epoch*. The next check of the same PIN
within ``settings.PIN_CACHE_SECONDS`` recomputes the HMAC (microseconds) and
compares it in constant time instead of running bcrypt (a quarter of a second
of a core). Neither the PIN nor any hash is ever stored; a Redis dump holds
HMACs under a key that is in neither Redis nor the database (README, "The
verified-PIN cache").

What the proof binds, and why
- The PIN: a different PIN gives a different HMAC, so a wrong PIN can never be
  accepted from the cache; it goes to bcrypt and is counted as before.
- The stored PIN hash and password hash, read from the database on every
  check: a PIN change (or its re-hash at another cost) and a password change
  kill every proof by construction, on every app server, whatever Redis does.
- The epoch, a random token per user kept beside the proof. Dropping the
  user's proofs (suspension, refresh-token reuse) deletes both keys; the next
  proof is bound to a fresh random epoch, so a proof stored late by a check
  that read the old epoch (it ran bcrypt while the suspension committed) can
  never match again, and neither can one that survived an eviction of the
  epoch key. A counter would not do: restarting at 1 after an eviction it
  would bring old proofs back.

Failure policy: the cache only ever *saves* a bcrypt. Every cache error on a
lookup or a store means "no proof" (bcrypt runs, the PIN rules are unchanged);
a drop that fails (Redis unreachable from this process) makes this process
ignore the user's proofs and retry the drop in the background until it
succeeds or the proofs have expired by themselves. Other app servers may
accept the right PIN from such a proof until then; they would accept it from
bcrypt too (the proof binds the PIN and both hashes), and the user's status is
checked in the database, under the movement's lock, whatever the cache says.

With ``PIN_CACHE_SECONDS = 0`` nothing is read or stored.
"""

import functools
import hashlib
import hmac
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger("ledgerx.accounts.pin_cache")

_KEY_LABEL = b"ledgerx/verified-pin-proof/v1"

try:  # the errors a cache backend raises when its server is unreachable or slow
    from django_redis.exceptions import ConnectionInterrupted
    from redis.exceptions import RedisError

    CACHE_ERRORS: tuple[type[BaseException], ...] = (ConnectionInterrupted, RedisError, OSError)
except ImportError:  # pragma: no cover - django-redis is a runtime requirement
    CACHE_ERRORS = (OSError,)


@dataclass(frozen=True)
class Cached:
    """What the cache held for a user when the check began (either may be None)."""

    epoch: str | None
    proof: str | None


def _ttl() -> int:
    return settings.PIN_CACHE_SECONDS


def _epoch_key(user_id) -> str:
    return f"pin:epoch:{user_id}"


def _proof_key(user_id) -> str:
    return f"pin:proof:{user_id}"


@functools.lru_cache(maxsize=4)
def _proof_key_for(pepper: str) -> bytes:
    """The HMAC key of proofs: derived from the pepper, never the pepper itself.

    HMAC(pepper, label) with a label no PIN can equal (PINs are digits), so
    this key is independent of the ``HMAC(pepper, pin)`` that is bcrypted
    into the stored PIN hash: knowing one tells nothing about the other.
    """
    return hmac.new(pepper.encode(), _KEY_LABEL, hashlib.sha256).digest()


def pin_proof(*, user_id, epoch: str, pin: str, pin_hash: str, password_hash: str) -> str:
    """The proof that ``pin`` matched ``pin_hash`` for this user in this epoch (hex)."""
    mac = hmac.new(_proof_key_for(settings.PIN_PEPPER), digestmod=hashlib.sha256)
    for part in (str(user_id), epoch, pin_hash, password_hash or "", pin):
        data = part.encode()
        mac.update(len(data).to_bytes(4, "big"))  # length-prefixed: no two field lists collide
        mac.update(data)
    return mac.hexdigest()


def pin_proof_lookup(user_id) -> Cached | None:
    """The user's epoch and proof in one cache round trip; None: cache off, down or not trusted here."""
    if _ttl() <= 0 or user_id in _undropped:
        return None
    epoch_key, proof_key = _epoch_key(user_id), _proof_key(user_id)
    try:
        found = cache.get_many([epoch_key, proof_key])
    except CACHE_ERRORS as exc:
        logger.warning("PIN cache lookup failed, checking with bcrypt: %s", exc)
        return None
    return Cached(epoch=found.get(epoch_key), proof=found.get(proof_key))


def pin_proof_matches(cached: Cached | None, *, user_id, pin: str, pin_hash: str, password_hash: str) -> bool:
    """Whether the cached proof is this PIN's for these hashes (constant-time compare)."""
    if cached is None or not isinstance(cached.epoch, str) or not isinstance(cached.proof, str):
        return False
    expected = pin_proof(user_id=user_id, epoch=cached.epoch, pin=pin, pin_hash=pin_hash, password_hash=password_hash)
    return hmac.compare_digest(expected.encode(), cached.proof.encode())


def pin_proof_epoch(user_id, cached: Cached | None) -> str | None:
    """The epoch a new proof will be bound to: the one read, or a fresh one created now.

    Call it before the locked status check, so that a drop committed after
    that check deletes whatever epoch this returns. None: do not store.
    """
    if cached is None:  # off, or the lookup failed: do not pay a second timeout on a store
        return None
    if cached.epoch is not None:
        return cached.epoch
    epoch = secrets.token_hex(16)
    try:
        # add = SET NX: never replaces an epoch another check created meanwhile.
        return epoch if cache.add(_epoch_key(user_id), epoch, 2 * _ttl()) else None
    except CACHE_ERRORS as exc:
        logger.warning("PIN cache epoch store failed: %s", exc)
        return None


def pin_proof_store(*, user_id, epoch: str, proof: str) -> None:
    """Store the proof for PIN_CACHE_SECONDS; keep its epoch alive at least as long."""
    try:
        cache.set(_proof_key(user_id), proof, _ttl())
        # touch only extends the expiry: it never brings back an epoch a drop deleted.
        cache.touch(_epoch_key(user_id), 2 * _ttl())
    except CACHE_ERRORS as exc:
        logger.warning("PIN cache store failed: %s", exc)


def pin_proofs_drop(user_id) -> None:
    """Forget every proof of the user (never raises; a failed drop is retried in the background)."""
    try:
        _delete(user_id)
    except CACHE_ERRORS as exc:
        logger.error("PIN cache drop failed for user %s (%s); retrying in the background", user_id, exc)
        _undropped.add(user_id)


def _delete(user_id) -> None:
    cache.delete_many([_epoch_key(user_id), _proof_key(user_id)])


class _Undropped:
    """Users whose proofs this process could not drop: not trusted here until the drop succeeds.

    A daemon thread retries every ``RETRY_SECONDS`` until the cache answers or
    the proofs have expired by themselves (an epoch lives at most twice
    PIN_CACHE_SECONDS past the last proof stored before the drop).
    """

    RETRY_SECONDS = 0.5

    def __init__(self):
        self._until: dict = {}  # user id -> monotonic time after which the proofs expired anyway
        self._guard = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None

    def __contains__(self, user_id) -> bool:
        return str(user_id) in self._until

    def add(self, user_id) -> None:
        with self._guard:
            self._until[str(user_id)] = time.monotonic() + 2 * max(_ttl(), 0)
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="pin-cache-dropper", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(self.RETRY_SECONDS)
            with self._guard:
                now = time.monotonic()
                for user_id in [key for key, until in self._until.items() if until <= now]:
                    del self._until[user_id]
                pending = dict(self._until)
                if not pending:
                    self._thread = None
                    return
            for user_id, until in pending.items():
                try:
                    _delete(user_id)
                except CACHE_ERRORS:
                    break
                with self._guard:
                    if self._until.get(user_id) == until:  # not failed again meanwhile
                        del self._until[user_id]


_undropped = _Undropped()
