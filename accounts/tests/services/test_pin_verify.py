import threading

import pytest
from django.db import connection, transaction

from accounts import services
from accounts.exceptions import InvalidPin, PinNotSet, UserSuspended
from accounts.models import User
from accounts.tests.conftest import PIN, audit_actions
from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from ledgerx.exceptions import ValidationFailed


def _state(user):
    user.refresh_from_db()
    return user.status, user.failed_pin_attempts


def test_right_pin_passes_and_resets_the_counter(user_with_pin):
    User.objects.filter(pk=user_with_pin.pk).update(failed_pin_attempts=2)
    assert services.pin_verify(user=user_with_pin, pin=PIN) is None
    assert _state(user_with_pin) == ("active", 0)


def test_pin_not_set(user):
    with pytest.raises(PinNotSet):
        services.pin_verify(user=user, pin="2580")
    assert _state(user) == ("active", 0)


def test_three_wrong_pins_suspend_with_zero_remaining(user_with_pin):
    remaining = []
    for _ in range(3):
        with pytest.raises(InvalidPin) as excinfo:
            services.pin_verify(user=user_with_pin, pin="1357")
        remaining.append(excinfo.value.extra["attempts_remaining"])
    assert remaining == [2, 1, 0]
    assert _state(user_with_pin) == ("suspended", 3)
    assert audit_actions(user_with_pin.pk) == ["pin.set", "pin.failed", "pin.failed", "pin.failed", "user.suspended"]

    with pytest.raises(UserSuspended):  # even the right PIN
        services.pin_verify(user=user_with_pin, pin=PIN)
    assert _state(user_with_pin) == ("suspended", 3)


def test_right_pin_between_wrong_ones_resets_the_streak(user_with_pin):
    for pin in ["1357", "1357", PIN, "1357"]:
        try:
            services.pin_verify(user=user_with_pin, pin=pin)
        except InvalidPin:
            pass
    assert _state(user_with_pin) == ("active", 1)


def test_suspended_user_is_refused_without_counting(user_with_pin):
    User.objects.filter(pk=user_with_pin.pk).update(status="suspended")
    with pytest.raises(UserSuspended):
        services.pin_verify(user=user_with_pin, pin=PIN)
    assert _state(user_with_pin) == ("suspended", 0)


def test_malformed_pin_is_a_validation_error_and_not_counted(user_with_pin):
    with pytest.raises(ValidationFailed):
        services.pin_verify(user=user_with_pin, pin=2580)
    assert _state(user_with_pin) == ("active", 0)


def test_refuses_to_run_inside_an_outer_transaction(user_with_pin):
    with transaction.atomic():
        with pytest.raises(RuntimeError, match="outside any transaction"):
            services.pin_verify(user=user_with_pin, pin=PIN)


@pytest.mark.django_db(transaction=True)
def test_failed_attempt_is_committed_even_though_the_caller_fails():
    user = UserFactory()
    services.pin_set(user=user, pin=PIN, password=DEFAULT_PASSWORD)
    with pytest.raises(InvalidPin):
        services.pin_verify(user=user, pin="1357")
    # A fresh read on a committed database: the attempt stuck.
    assert User.objects.get(pk=user.pk).failed_pin_attempts == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("guesses", [5, 8])
def test_parallel_wrong_guesses_get_three_tries_in_total(guesses):
    user = UserFactory()
    services.pin_set(user=user, pin=PIN, password=DEFAULT_PASSWORD)
    barrier = threading.Barrier(guesses)
    outcomes: list = []
    lock = threading.Lock()

    def guess():
        try:
            barrier.wait()
            try:
                services.pin_verify(user=User.objects.get(pk=user.pk), pin="1357")
                result = ("ok", None)
            except InvalidPin as exc:
                result = ("invalid_pin", exc.extra["attempts_remaining"])
            except UserSuspended:
                result = ("user_suspended", None)
            with lock:
                outcomes.append(result)
        finally:
            connection.close()

    threads = [threading.Thread(target=guess) for _ in range(guesses)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    invalid = sorted(r for kind, r in outcomes if kind == "invalid_pin")
    assert invalid == [0, 1, 2]
    assert [kind for kind, _ in outcomes].count("user_suspended") == guesses - 3
    assert _state(user) == ("suspended", 3)
    assert audit_actions(user.pk).count("pin.failed") == 3
    assert audit_actions(user.pk).count("user.suspended") == 1


@pytest.mark.django_db(transaction=True)
def test_right_pin_stored_at_a_lower_cost_is_rehashed_at_the_configured_cost(settings):
    user = UserFactory()
    settings.PIN_BCRYPT_ROUNDS = 4
    services.pin_set(user=user, pin=PIN, password=DEFAULT_PASSWORD)
    low_cost_hash = User.objects.get(pk=user.pk).pin_hash
    assert low_cost_hash.startswith("$2b$04$")

    settings.PIN_BCRYPT_ROUNDS = 5
    with pytest.raises(InvalidPin):
        services.pin_verify(user=user, pin="9173")
    assert User.objects.get(pk=user.pk).pin_hash == low_cost_hash  # a wrong PIN never re-hashes

    services.pin_verify(user=user, pin=PIN)
    upgraded = User.objects.get(pk=user.pk)
    assert upgraded.pin_hash.startswith("$2b$05$")
    assert upgraded.failed_pin_attempts == 0
    services.pin_verify(user=user, pin=PIN)  # the new hash verifies
    assert User.objects.get(pk=user.pk).pin_hash == upgraded.pin_hash  # and is not re-hashed again


@pytest.mark.django_db
def test_a_user_read_for_the_request_is_not_read_again_and_only_once():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from accounts.services import REQUEST_ROW, _pin_row_of

    user = UserFactory()
    services.pin_set(user=user, pin=PIN, password=DEFAULT_PASSWORD)
    fresh = User.objects.get(pk=user.pk)
    setattr(fresh, REQUEST_ROW, True)
    with CaptureQueriesContext(connection) as queries:
        row = _pin_row_of(fresh)
    assert len(queries) == 0
    assert row["pin_hash"] == fresh.pin_hash and row["status"] == fresh.status
    User.objects.filter(pk=user.pk).update(status=User.Status.SUSPENDED)
    with CaptureQueriesContext(connection) as queries:
        assert _pin_row_of(fresh)["status"] == User.Status.SUSPENDED  # the flag was used up
    assert len(queries) == 1
