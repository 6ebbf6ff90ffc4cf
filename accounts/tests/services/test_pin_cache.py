"""The verified-PIN cache: when a PIN is accepted without bcrypt, and when never.

"bcrypt ran" is observed by counting calls of ``services._pin_matches`` (the
only function that runs ``bcrypt.checkpw`` on a PIN), never by timing.
"""

import threading
from unittest import mock

import pytest
from django.core.cache import cache, caches
from django.db import connection
from django.test import override_settings
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeout

from accounts import pin_cache, services
from accounts.exceptions import InvalidPin, TokenInvalid, UserSuspended
from accounts.models import User
from accounts.tests.conftest import PIN, audit_actions
from accounts.tests.factories import DEFAULT_PASSWORD, AdminFactory, UserFactory

OTHER_PIN = "7391"
WRONG_PIN = "1357"


@pytest.fixture(autouse=True)
def _no_undropped_users():
    pin_cache._undropped._until.clear()
    yield
    pin_cache._undropped._until.clear()


@pytest.fixture
def bcrypt_calls():
    """The list of (pin, hash) pairs bcrypt checked while the test ran."""
    calls = []
    original = services._pin_matches

    def counting(pin, pin_hash):
        calls.append((pin, pin_hash))
        return original(pin, pin_hash)

    with mock.patch.object(services, "_pin_matches", side_effect=counting):
        yield calls


def _keys(user) -> dict:
    return cache.get_many([pin_cache._epoch_key(user.pk), pin_cache._proof_key(user.pk)])


def _warm(user, bcrypt_calls):
    """Prove the PIN once (bcrypt), then check that the next check skips bcrypt."""
    services.pin_verify(user=user, pin=PIN)
    services.pin_verify(user=user, pin=PIN)
    assert len(bcrypt_calls) == 1
    bcrypt_calls.clear()


def _state(user):
    user.refresh_from_db()
    return user.status, user.failed_pin_attempts


def test_a_right_pin_is_checked_by_bcrypt_once_then_from_its_proof(user_with_pin, bcrypt_calls):
    services.pin_verify(user=user_with_pin, pin=PIN)
    assert len(bcrypt_calls) == 1
    for _ in range(3):
        assert services.pin_verify(user=user_with_pin, pin=PIN) is None
    assert len(bcrypt_calls) == 1
    assert _state(user_with_pin) == ("active", 0)


def test_the_cache_holds_neither_the_pin_nor_a_hash(user_with_pin, bcrypt_calls):
    services.pin_verify(user=user_with_pin, pin=PIN)
    stored = _keys(user_with_pin)
    assert set(stored) == {pin_cache._epoch_key(user_with_pin.pk), pin_cache._proof_key(user_with_pin.pk)}
    user_with_pin.refresh_from_db()
    for value in stored.values():
        assert isinstance(value, str) and len(value) in (32, 64)
        assert PIN not in value
        assert value not in (user_with_pin.pin_hash, user_with_pin.password)
    assert stored[pin_cache._proof_key(user_with_pin.pk)] == pin_cache.pin_proof(
        user_id=user_with_pin.pk,
        epoch=stored[pin_cache._epoch_key(user_with_pin.pk)],
        pin=PIN,
        pin_hash=user_with_pin.pin_hash,
        password_hash=user_with_pin.password,
    )


def test_the_proof_key_is_derived_from_the_pepper_not_the_pepper_itself(settings):
    key = pin_cache._proof_key_for(settings.PIN_PEPPER)
    assert key != settings.PIN_PEPPER.encode()
    assert len(key) == 32
    assert pin_cache._proof_key_for("another pepper") != key


def test_a_wrong_pin_after_a_right_one_is_refused_by_bcrypt_and_counted(user_with_pin, bcrypt_calls):
    _warm(user_with_pin, bcrypt_calls)
    with pytest.raises(InvalidPin) as excinfo:
        services.pin_verify(user=user_with_pin, pin=WRONG_PIN)
    assert excinfo.value.extra["attempts_remaining"] == 2
    assert [pin for pin, _ in bcrypt_calls] == [WRONG_PIN]
    assert _state(user_with_pin) == ("active", 1)
    assert audit_actions(user_with_pin.pk)[-1] == "pin.failed"

    # The right PIN still comes from its proof, and resets the counter.
    services.pin_verify(user=user_with_pin, pin=PIN)
    assert len(bcrypt_calls) == 1
    assert _state(user_with_pin) == ("active", 0)


def test_three_wrong_pins_after_a_right_one_suspend_and_drop_the_proof(user_with_pin, bcrypt_calls):
    _warm(user_with_pin, bcrypt_calls)
    for remaining in (2, 1, 0):
        with pytest.raises(InvalidPin) as excinfo:
            services.pin_verify(user=user_with_pin, pin=WRONG_PIN)
        assert excinfo.value.extra["attempts_remaining"] == remaining
    assert len(bcrypt_calls) == 3
    assert _state(user_with_pin) == ("suspended", 3)
    assert _keys(user_with_pin) == {}
    with pytest.raises(UserSuspended):  # the right PIN, whatever the cache says
        services.pin_verify(user=user_with_pin, pin=PIN)

    services.user_reinstate(actor=AdminFactory(), user=user_with_pin, reason="called the customer")
    bcrypt_calls.clear()
    services.pin_verify(user=user_with_pin, pin=PIN)
    assert len(bcrypt_calls) == 1


def test_the_cache_is_off_with_zero_seconds(user_with_pin, bcrypt_calls, settings):
    settings.PIN_CACHE_SECONDS = 0
    for _ in range(3):
        services.pin_verify(user=user_with_pin, pin=PIN)
    assert len(bcrypt_calls) == 3
    assert _keys(user_with_pin) == {}


def test_a_proof_expires_with_the_cache_entry(user_with_pin, bcrypt_calls):
    _warm(user_with_pin, bcrypt_calls)
    cache.delete(pin_cache._proof_key(user_with_pin.pk))  # what the TTL does
    services.pin_verify(user=user_with_pin, pin=PIN)
    assert len(bcrypt_calls) == 1


def test_a_proof_never_outlives_a_pin_change_even_if_the_drop_is_lost(user_with_pin, bcrypt_calls):
    _warm(user_with_pin, bcrypt_calls)
    stale = _keys(user_with_pin)
    services.pin_set(user=user_with_pin, pin=OTHER_PIN, password=DEFAULT_PASSWORD)
    cache.set_many(stale)  # as if the drop had not reached the cache: the proof binds the old hash

    with pytest.raises(InvalidPin):
        services.pin_verify(user=user_with_pin, pin=PIN)
    services.pin_verify(user=user_with_pin, pin=OTHER_PIN)
    assert [pin for pin, _ in bcrypt_calls] == [PIN, OTHER_PIN]


def test_pin_change_drops_the_proof(user_with_pin, bcrypt_calls, django_capture_on_commit_callbacks):
    _warm(user_with_pin, bcrypt_calls)
    with django_capture_on_commit_callbacks(execute=True):
        services.pin_set(user=user_with_pin, pin=OTHER_PIN, password=DEFAULT_PASSWORD)
    assert _keys(user_with_pin) == {}


def test_a_proof_never_outlives_a_password_change_even_if_the_drop_is_lost(user_with_pin, bcrypt_calls):
    _warm(user_with_pin, bcrypt_calls)
    stale = _keys(user_with_pin)
    services.password_change(user=user_with_pin, current_password=DEFAULT_PASSWORD, new_password="new-horse-battery-7")
    cache.set_many(stale)

    services.pin_verify(user=User.objects.get(pk=user_with_pin.pk), pin=PIN)
    assert len(bcrypt_calls) == 1


def test_password_change_drops_the_proof(user_with_pin, bcrypt_calls, django_capture_on_commit_callbacks):
    _warm(user_with_pin, bcrypt_calls)
    with django_capture_on_commit_callbacks(execute=True):
        services.password_change(
            user=user_with_pin, current_password=DEFAULT_PASSWORD, new_password="new-horse-battery-7"
        )
    assert _keys(user_with_pin) == {}


def test_an_admin_suspension_drops_the_proof(user_with_pin, bcrypt_calls, django_capture_on_commit_callbacks):
    _warm(user_with_pin, bcrypt_calls)
    admin = AdminFactory()
    with django_capture_on_commit_callbacks(execute=True):
        services.user_suspend(actor=admin, user=user_with_pin, reason="card reported stolen")
    assert _keys(user_with_pin) == {}
    with pytest.raises(UserSuspended):
        services.pin_verify(user=user_with_pin, pin=PIN)

    with django_capture_on_commit_callbacks(execute=True):
        services.user_reinstate(actor=admin, user=user_with_pin, reason="card found")
    services.pin_verify(user=user_with_pin, pin=PIN)
    assert len(bcrypt_calls) == 1


def test_a_proof_stored_by_a_check_that_raced_a_drop_never_matches(user_with_pin, bcrypt_calls):
    """A check read the epoch and ran bcrypt; meanwhile the user's proofs were dropped and
    another check created a fresh epoch; then the first check stored its proof, late."""
    services.pin_verify(user=user_with_pin, pin=PIN)
    epoch_key, proof_key = pin_cache._epoch_key(user_with_pin.pk), pin_cache._proof_key(user_with_pin.pk)
    late_proof = _keys(user_with_pin)[proof_key]
    pin_cache.pin_proofs_drop(user_with_pin.pk)
    assert _keys(user_with_pin) == {}
    cache.set(proof_key, late_proof)  # no epoch: nothing can match
    bcrypt_calls.clear()
    services.pin_verify(user=user_with_pin, pin=PIN)
    assert len(bcrypt_calls) == 1

    fresh_epoch = _keys(user_with_pin)[epoch_key]
    cache.set(proof_key, late_proof)  # the late store lands after the fresh epoch
    bcrypt_calls.clear()
    services.pin_verify(user=user_with_pin, pin=PIN)
    assert len(bcrypt_calls) == 1  # bound to the dropped epoch
    assert _keys(user_with_pin)[epoch_key] == fresh_epoch


@pytest.mark.django_db(transaction=True)
def test_refresh_token_reuse_drops_the_proof(bcrypt_calls):
    user = UserFactory()
    services.pin_set(user=user, pin=PIN, password=DEFAULT_PASSWORD)
    _warm(user, bcrypt_calls)
    first = services.auth_login(email=user.email, password=DEFAULT_PASSWORD)
    services.token_refresh(refresh=first.refresh)
    with pytest.raises(TokenInvalid):
        services.token_refresh(refresh=first.refresh)  # reuse: theft
    assert _keys(user) == {}
    services.pin_verify(user=user, pin=PIN)
    assert len(bcrypt_calls) == 1


# --- The cache unreachable ---------------------------------------------------------

_UNREACHABLE = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:9/0",  # discard port: nothing listens
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
    }
}


def test_an_unreachable_redis_falls_back_to_bcrypt(user_with_pin, bcrypt_calls):
    with override_settings(CACHES=_UNREACHABLE):
        for _ in range(2):
            services.pin_verify(user=user_with_pin, pin=PIN)
        assert len(bcrypt_calls) == 2
        with pytest.raises(InvalidPin) as excinfo:
            services.pin_verify(user=user_with_pin, pin=WRONG_PIN)
        assert excinfo.value.extra["attempts_remaining"] == 2
    assert _state(user_with_pin) == ("active", 1)


@pytest.mark.parametrize("error", [RedisTimeout("slow"), RedisConnectionError("down")])
def test_a_cache_that_raises_falls_back_to_bcrypt_and_never_accepts(user_with_pin, bcrypt_calls, error):
    _warm(user_with_pin, bcrypt_calls)
    with mock.patch.object(type(caches["default"]), "get_many", side_effect=error):
        services.pin_verify(user=user_with_pin, pin=PIN)
        with pytest.raises(InvalidPin):
            services.pin_verify(user=user_with_pin, pin=WRONG_PIN)
    assert [pin for pin, _ in bcrypt_calls] == [PIN, WRONG_PIN]
    assert _state(user_with_pin) == ("active", 1)


def test_a_drop_that_fails_stops_this_process_trusting_the_proof_until_it_succeeds(user_with_pin, bcrypt_calls):
    _warm(user_with_pin, bcrypt_calls)
    with mock.patch.object(type(caches["default"]), "delete_many", side_effect=RedisTimeout("slow")):
        pin_cache.pin_proofs_drop(user_with_pin.pk)
    assert user_with_pin.pk in pin_cache._undropped
    assert _keys(user_with_pin) != {}  # still in the cache, but not trusted here
    services.pin_verify(user=user_with_pin, pin=PIN)
    assert len(bcrypt_calls) == 1

    pin_cache._undropped._run()  # the retry loop, run here: the cache answers again
    assert user_with_pin.pk not in pin_cache._undropped
    assert _keys(user_with_pin) == {}


# --- Parallel guesses -----------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_fifty_parallel_wrong_guesses_after_a_warm_right_pin_get_three_tries_and_none_accepted(bcrypt_calls):
    user = UserFactory()
    services.pin_set(user=user, pin=PIN, password=DEFAULT_PASSWORD)
    _warm(user, bcrypt_calls)
    assert _keys(user) != {}
    guesses = 50
    barrier = threading.Barrier(guesses)
    outcomes: list = []
    lock = threading.Lock()

    def guess(n):
        try:
            barrier.wait()
            try:
                services.pin_verify(user=User.objects.get(pk=user.pk), pin=f"{1000 + n:04d}")
                result = ("ok", None)
            except InvalidPin as exc:
                result = ("invalid_pin", exc.extra["attempts_remaining"])
            except UserSuspended:
                result = ("user_suspended", None)
            with lock:
                outcomes.append(result)
        finally:
            connection.close()

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(guesses)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(outcomes) == guesses
    assert [kind for kind, _ in outcomes].count("ok") == 0
    assert sorted(r for kind, r in outcomes if kind == "invalid_pin") == [0, 1, 2]
    assert [kind for kind, _ in outcomes].count("user_suspended") == guesses - 3
    assert _state(user) == ("suspended", 3)
    assert audit_actions(user.pk).count("pin.failed") == 3
    assert audit_actions(user.pk).count("user.suspended") == 1
    assert _keys(user) == {}
    with pytest.raises(UserSuspended):
        services.pin_verify(user=user, pin=PIN)


@pytest.mark.django_db(transaction=True)
def test_a_proof_made_at_a_lower_cost_does_not_skip_the_rehash(bcrypt_calls, settings):
    """Demo data is seeded at cost 4 (its PIN checks leave proofs); the first check at the
    configured cost still re-hashes, and its proof then binds the new hash."""
    user = UserFactory()
    settings.PIN_BCRYPT_ROUNDS = 4
    services.pin_set(user=user, pin=PIN, password=DEFAULT_PASSWORD)
    services.pin_verify(user=user, pin=PIN)  # the seeder's check: a proof of the cost-4 hash
    assert _keys(user) != {}

    settings.PIN_BCRYPT_ROUNDS = 5
    bcrypt_calls.clear()
    services.pin_verify(user=user, pin=PIN)
    assert len(bcrypt_calls) == 1
    upgraded = User.objects.get(pk=user.pk).pin_hash
    assert upgraded.startswith("$2b$05$")
    services.pin_verify(user=user, pin=PIN)  # from the proof of the upgraded hash
    assert len(bcrypt_calls) == 1
    assert User.objects.get(pk=user.pk).pin_hash == upgraded


def test_pin_proven_only_for_a_right_pin_bcrypt_accepted_and_nothing_to_write(user_with_pin, bcrypt_calls):
    assert not services.pin_proven(user=user_with_pin, pin=PIN)  # never proven yet
    _warm(user_with_pin, bcrypt_calls)
    assert services.pin_proven(user=user_with_pin, pin=PIN)
    assert not services.pin_proven(user=user_with_pin, pin="9999")  # a wrong PIN is for bcrypt to judge
    assert not services.pin_proven(user=user_with_pin, pin="12a4")
    User.objects.filter(pk=user_with_pin.pk).update(failed_pin_attempts=1)
    assert not services.pin_proven(user=user_with_pin, pin=PIN)  # a reset to write: pin_verify does it
    User.objects.filter(pk=user_with_pin.pk).update(failed_pin_attempts=0, status=User.Status.SUSPENDED)
    assert not services.pin_proven(user=user_with_pin, pin=PIN)
    assert bcrypt_calls == []  # pin_proven never runs bcrypt
