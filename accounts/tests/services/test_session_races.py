"""Sessions against concurrent password changes and refresh-token reuse (PostgreSQL, real threads).

Each test pauses one request at the racy point and runs the other to the
point where it must wait for the first (or, for a login, to completion).
"""

import threading
from contextlib import contextmanager
from unittest import mock

import pytest
from django.db import connections

from accounts import services
from accounts.exceptions import InvalidCredentials, TokenInvalid
from accounts.models import User
from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from transactions.tests.concurrency import backend_waiting_on_lock

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

NEW_PASSWORD = "N3w-very-long-pass!"


class _Paused:
    """Run ``call`` in a thread named ``name``; ``pause()`` called from that thread blocks until ``go()``."""

    def __init__(self, name: str, call):
        self.name, self.result = name, None
        self._reached, self._go = threading.Event(), threading.Event()

        def run():
            try:
                self.result = call()
            except BaseException as exc:  # the test asserts on it
                self.result = exc
            finally:
                connections.close_all()

        self._thread = threading.Thread(target=run, name=name)

    def pause(self) -> None:
        if threading.current_thread().name == self.name:
            self._reached.set()
            assert self._go.wait(15)

    def start_and_wait_for_pause(self) -> None:
        self._thread.start()
        assert self._reached.wait(10), "never reached the pause point"

    def go_and_join(self) -> None:
        self._go.set()
        self._thread.join(20)
        assert not self._thread.is_alive()


@contextmanager
def _pause_after_minting(paused: _Paused):
    real = services._pair_for

    def pair_for(user):
        pair = real(user)  # the new refresh token is inserted, not committed
        paused.pause()
        return pair

    with mock.patch.object(services, "_pair_for", pair_for):
        yield


def _in_thread(call) -> tuple[threading.Thread, dict]:
    out: dict = {}

    def run():
        try:
            out["result"] = call()
        except BaseException as exc:
            out["result"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def test_reuse_detection_also_ends_a_session_minted_by_a_refresh_running_at_that_moment():
    user = UserFactory()
    stolen = services.auth_login(email=user.email, password=DEFAULT_PASSWORD)
    current = services.token_refresh(refresh=stolen.refresh)  # the stolen token is now revoked
    refresher = _Paused("refresher", lambda: services.token_refresh(refresh=current.refresh))
    with _pause_after_minting(refresher):
        refresher.start_and_wait_for_pause()
        reuser, out = _in_thread(lambda: services.token_refresh(refresh=stolen.refresh))
        backend_waiting_on_lock("")  # the reuse detection waits for the refresh
        refresher.go_and_join()
        reuser.join(20)
    assert isinstance(out["result"], TokenInvalid)
    minted = refresher.result
    assert isinstance(minted, services.TokenPair)
    with pytest.raises(TokenInvalid):
        services.token_refresh(refresh=minted.refresh)


def test_a_password_change_waits_for_a_running_refresh_and_then_ends_its_session():
    """It used to deadlock with it (500, password unchanged)."""
    user = UserFactory()
    tokens = services.auth_login(email=user.email, password=DEFAULT_PASSWORD)
    refresher = _Paused("refresher", lambda: services.token_refresh(refresh=tokens.refresh))
    with _pause_after_minting(refresher):
        refresher.start_and_wait_for_pause()
        account = User.objects.get(pk=user.pk)
        changer, out = _in_thread(
            lambda: services.password_change(user=account, current_password=DEFAULT_PASSWORD, new_password=NEW_PASSWORD)
        )
        backend_waiting_on_lock("")  # the change waits for the refresh
        refresher.go_and_join()
        changer.join(20)
    assert out["result"] is None
    assert User.objects.get(pk=user.pk).check_password(NEW_PASSWORD)
    with pytest.raises(TokenInvalid):
        services.token_refresh(refresh=refresher.result.refresh)


def test_a_login_with_the_old_password_fails_if_the_password_changed_while_it_was_checked():
    user = UserFactory()
    real_check = User.check_password
    login = _Paused("login", lambda: services.auth_login(email=user.email, password=DEFAULT_PASSWORD))

    def check_password(self, raw):
        matches = real_check(self, raw)
        login.pause()
        return matches

    with mock.patch.object(User, "check_password", check_password):
        login.start_and_wait_for_pause()  # the old password matched
        account = User.objects.get(pk=user.pk)
        services.password_change(user=account, current_password=DEFAULT_PASSWORD, new_password=NEW_PASSWORD)
        login.go_and_join()
    assert isinstance(login.result, InvalidCredentials)
