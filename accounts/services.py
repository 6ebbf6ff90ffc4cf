"""Identity writes: registration, passwords, transaction PINs, suspension, tokens.

Design notes
- PINs are 4-6 digits: 10^6 candidates at most, so a bcrypt hash alone would fall
  to a brute force of a stolen database. We bcrypt an HMAC-SHA256 of the PIN
  keyed with ``settings.PIN_PEPPER`` (a secret kept outside the database).
- ``pin_verify`` runs bcrypt (about 250 ms at cost 12) *before* taking any lock,
  then takes the user's row lock in its own short durable transaction to count
  the attempt. Parallel wrong guesses therefore serialize on the counter, and at
  most ``PIN_MAX_ATTEMPTS`` are ever counted before the user is suspended. A
  failed attempt is committed even though the caller's request fails, which is
  why it must not run inside the caller's transaction.
- A PIN bcrypt accepted leaves a short-lived proof in the cache
  (``accounts.pin_cache``): the same PIN is then accepted without bcrypt until
  the proof expires, the PIN or password changes, or the user's proofs are
  dropped (suspension either way, refresh-token reuse). Any other PIN still
  goes through bcrypt and the counter above.
- Refresh tokens rotate: a refresh revokes the presented token under a row lock
  on its OutstandingToken, so two parallel refreshes with the same token cannot
  both win. Presenting an already revoked token is treated as theft (reuse
  detection) and revokes every refresh token of the user.
"""

import functools
import hashlib
import hmac
import re
from dataclasses import dataclass

import bcrypt
from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, transaction
from django.db.models import F
from django.utils import timezone
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken, Token

from accounts.exceptions import (
    EmailTaken,
    InvalidCredentials,
    InvalidPin,
    PinNotSet,
    TokenInvalid,
    UserSuspended,
    WeakPin,
)
from accounts.models import User
from accounts.pin_cache import (
    pin_proof,
    pin_proof_epoch,
    pin_proof_lookup,
    pin_proof_matches,
    pin_proof_store,
    pin_proofs_drop,
)
from audit.models import AuditAction
from audit.services import audit_record
from events.models import EventType
from events.services import user_event_record
from ledgerx.exceptions import InvalidState, ValidationFailed
from ledgerx.fastsql import prepared_cursor
from ledgerx.observability import metrics
from ledgerx.text import reason_clean

_PIN_RE = re.compile(r"[0-9]{4,6}")  # [0-9], not \d: \d also matches full-width and other digits


# --- PIN ------------------------------------------------------------------------


def _pin_digest(pin: str) -> bytes:
    """HMAC-SHA256(pepper, pin) as 64 hex bytes (under bcrypt's 72-byte limit)."""
    return hmac.new(settings.PIN_PEPPER.encode(), pin.encode("ascii"), hashlib.sha256).hexdigest().encode()


def _pin_hash(pin: str) -> str:
    return bcrypt.hashpw(_pin_digest(pin), bcrypt.gensalt(rounds=settings.PIN_BCRYPT_ROUNDS)).decode()


def _pin_matches(pin: str, pin_hash: str) -> bool:
    try:
        return bcrypt.checkpw(_pin_digest(pin), pin_hash.encode())
    except ValueError:  # a malformed stored hash never matches
        return False


def _pin_cost(pin_hash: str) -> int | None:
    """The bcrypt cost of a stored hash ("$2b$12$..." -> 12); None if unreadable."""
    try:
        return int(pin_hash.split("$")[2])
    except (IndexError, ValueError):
        return None


def _pin_format_error(pin) -> str | None:
    if not isinstance(pin, str) or not _PIN_RE.fullmatch(pin):
        return "The PIN must be a string of 4 to 6 digits (0-9)."
    return None


def _pin_is_weak(pin: str) -> bool:
    """All one digit (0000), or a run of consecutive digits up or down (1234, 654321)."""
    digits = [int(c) for c in pin]
    steps = {b - a for a, b in zip(digits, digits[1:])}
    return len(steps) == 1 and steps <= {-1, 0, 1}


def pin_set(*, user: User, pin: str, password: str) -> None:
    """Set (or replace) the user's transaction PIN; the password proves identity.

    Raises InvalidCredentials (wrong password), ValidationFailed (not 4-6 ASCII
    digits in a string), WeakPin. Resets the failed-attempt counter; does not
    lift a suspension. The PIN itself is never logged, audited or returned.
    """
    if not isinstance(password, str) or not user.check_password(password):
        raise InvalidCredentials("The password is incorrect.")
    error = _pin_format_error(pin)
    if error:
        raise ValidationFailed(fields={"pin": [error]})
    if _pin_is_weak(pin):
        raise WeakPin()
    new_hash = _pin_hash(pin)  # outside the lock: bcrypt is slow on purpose
    with transaction.atomic():
        locked = _user_locked(user.pk)
        locked.pin_hash = new_hash
        locked.failed_pin_attempts = 0
        locked.save(update_fields=["pin_hash", "failed_pin_attempts"])
        audit_record(actor=user, action=AuditAction.PIN_SET, target_type="user", target_id=user.pk, data={})
        # Proofs of the old PIN are dead by construction (they bind its hash); drop them anyway.
        transaction.on_commit(functools.partial(pin_proofs_drop, user.pk))
    user.pin_hash = new_hash
    user.failed_pin_attempts = 0


def _assert_not_in_atomic(using: str = DEFAULT_DB_ALIAS) -> None:
    """pin_verify commits a failed attempt on its own; inside a caller's
    transaction that commit would be rolled back with the caller's error.
    (Test-case transactions are allowed, like Django's own durable check.)"""
    connection = connections[using]
    if connection.atomic_blocks and not connection.atomic_blocks[-1]._from_testcase:
        raise RuntimeError("pin_verify() must be called outside any transaction.atomic() block.")


_PIN_ROW_FIELDS = ("pin_hash", "status", "password", "failed_pin_attempts")


@functools.cache
def _pin_row_sql() -> str:
    columns = ", ".join(f'"{User._meta.get_field(name).column}"' for name in _PIN_ROW_FIELDS)
    return f'SELECT {columns} FROM "{User._meta.db_table}" WHERE "{User._meta.pk.column}" = %s::uuid'


def _pin_row(user_id) -> dict | None:
    """What a PIN check reads of the user, fresh from the database (None: no such user).

    On PostgreSQL one prepared statement: this read is on every PIN-checked
    request, and the ORM's query compilation cost three times the round trip
    (the same reason as ``ledgerx.fastsql``). The embedded default uses the ORM.
    """
    if connection.vendor != "postgresql":
        return User.objects.filter(pk=user_id).values(*_PIN_ROW_FIELDS).first()
    with prepared_cursor() as cursor:
        cursor.execute(_pin_row_sql(), [str(user_id)])
        row = cursor.fetchone()
    return None if row is None else dict(zip(_PIN_ROW_FIELDS, row))


# Set on a user read from the database for the current request (by the token
# authentication): its PIN fields are as fresh as a second read would be.
REQUEST_ROW = "_ledgerx_request_row"


def _pin_row_of(user: User, *, consume: bool = True) -> dict | None:
    """What a PIN check reads of ``user``: the request's own read of the row, else a fresh read.

    ``pin_verify`` consumes the flag, so a second check in the same request (or
    an instance kept beyond it) reads the database again.
    """
    flagged = user.__dict__.pop(REQUEST_ROW, False) if consume else user.__dict__.get(REQUEST_ROW, False)
    if flagged:
        return {name: getattr(user, name) for name in _PIN_ROW_FIELDS}
    return _pin_row(user.pk)


def _proof_accepts(current: dict, *, user: User, pin: str, cached) -> bool:
    """Whether ``cached`` proves ``pin`` right for the PIN hash in ``current`` (stored at the configured cost)."""
    checked_hash = current["pin_hash"]
    # A hash due for its re-hash at the configured cost takes the bcrypt path once.
    return _pin_cost(checked_hash) == settings.PIN_BCRYPT_ROUNDS and pin_proof_matches(
        cached, user_id=user.pk, pin=pin, pin_hash=checked_hash, password_hash=current["password"]
    )


def pin_proven(*, user: User, pin: str) -> bool:
    """Whether ``pin_verify`` would accept ``pin`` from its cached proof with nothing to write.

    True only for an active user with no failed attempt to reset whose PIN
    bcrypt accepted within PIN_CACHE_SECONDS: such a check cannot change
    anything, so a movement may skip ``pin_verify`` and the steps it guards (the
    key probe before bcrypt). Anything else is False: the caller runs
    ``pin_verify``, which judges and counts as always. The user's status is
    checked again under the movement's lock either way.
    """
    current = _pin_row_of(user, consume=False)
    if (
        current is None
        or current["status"] != User.Status.ACTIVE
        or not current["pin_hash"]
        or current["failed_pin_attempts"]
        or _pin_format_error(pin)
    ):
        return False
    return _proof_accepts(current, user=user, pin=pin, cached=pin_proof_lookup(user.pk))


def pin_verify(*, user: User, pin: str) -> None:
    """Check the transaction PIN before a money movement.

    Call it BEFORE opening the movement's transaction. Returns None when the PIN
    is right and the user active. Raises PinNotSet, UserSuspended (even with the
    right PIN), ValidationFailed (PIN not a string of 4-6 ASCII digits; such a
    value can never be right and is not counted), or InvalidPin with
    ``attempts_remaining``; the failed attempt (and a suspension on the
    PIN_MAX_ATTEMPTS-th) is committed before InvalidPin is raised.

    A PIN that bcrypt accepted within PIN_CACHE_SECONDS is accepted again from
    its cached proof (``accounts.pin_cache``) without bcrypt; every other PIN,
    and every PIN when the cache is off or unreachable, is judged by bcrypt
    and counted exactly as without the cache.
    """
    _assert_not_in_atomic()
    current = _pin_row_of(user)
    if current is None:
        raise InvalidCredentials("The user no longer exists.")
    if current["status"] == User.Status.SUSPENDED:
        raise UserSuspended()
    if not current["pin_hash"]:
        raise PinNotSet()
    error = _pin_format_error(pin)
    if error:
        raise ValidationFailed(fields={"pin": [error]})
    checked_hash = current["pin_hash"]
    cached = pin_proof_lookup(user.pk)
    at_configured_cost = _pin_cost(checked_hash) == settings.PIN_BCRYPT_ROUNDS
    if _proof_accepts(current, user=user, pin=pin, cached=cached):
        # Proven right by bcrypt within PIN_CACHE_SECONDS, for this very hash.
        # With no failed attempt to reset there is nothing to write, so no
        # lock: the user's status is checked again under the movement's lock.
        if not current["failed_pin_attempts"]:
            user.failed_pin_attempts = 0
            return
        matches, upgraded_hash, epoch = True, None, None
    else:
        matches = _pin_matches(pin, checked_hash)  # the expensive part, no lock held
        # A right PIN stored at another cost than configured (e.g. demo data seeded
        # at a low cost) is re-hashed at the configured cost, like Django upgrades
        # password hashes on login. Hashing happens here, before the lock.
        upgraded_hash = _pin_hash(pin) if matches and not at_configured_cost else None
        # Fixed before the locked status check, so a suspension committed after
        # that check drops whatever epoch the proof below is bound to.
        epoch = pin_proof_epoch(user.pk, cached) if matches else None

    max_attempts = settings.PIN_MAX_ATTEMPTS
    with transaction.atomic(durable=True):
        locked = _user_locked(user.pk)
        if locked.status == User.Status.SUSPENDED:
            raise UserSuspended()
        if locked.pin_hash != checked_hash:
            # The PIN changed while we were hashing: judge against the new one.
            matches = bool(locked.pin_hash) and _pin_matches(pin, locked.pin_hash)
            epoch = None  # and store no proof for a hash this check did not read
        if matches:
            changed = []
            if locked.failed_pin_attempts:
                locked.failed_pin_attempts = 0
                changed.append("failed_pin_attempts")
            if upgraded_hash and locked.pin_hash == checked_hash:
                locked.pin_hash = upgraded_hash
                changed.append("pin_hash")
            if changed:
                locked.save(update_fields=changed)
        else:
            count = locked.failed_pin_attempts + 1
            update = {"failed_pin_attempts": F("failed_pin_attempts") + 1}
            suspend = count >= max_attempts
            if suspend:
                update["status"] = User.Status.SUSPENDED
            User.objects.filter(pk=locked.pk).update(**update)
            audit_record(
                actor=user,
                action=AuditAction.PIN_FAILED,
                target_type="user",
                target_id=user.pk,
                data={"failed_attempts": count},
            )
            if suspend:
                audit_record(
                    actor=None,
                    action=AuditAction.USER_SUSPENDED,
                    target_type="user",
                    target_id=user.pk,
                    data={
                        "reason": f"{max_attempts} consecutive wrong transaction PINs",
                        "old_status": User.Status.ACTIVE,
                        "new_status": User.Status.SUSPENDED,
                    },
                )
                user_event_record(type=EventType.USER_SUSPENDED, user=_user_locked(user.pk))
    # Committed (the transaction is durable): a success may be remembered, and
    # a failed attempt counts even though this request fails.
    if matches:
        if epoch is not None:
            proof = pin_proof(
                user_id=user.pk, epoch=epoch, pin=pin, pin_hash=locked.pin_hash, password_hash=locked.password
            )
            pin_proof_store(user_id=user.pk, epoch=epoch, proof=proof)
        user.failed_pin_attempts = 0
        return
    metrics.pin_failure_counted(suspended=suspend)
    user.failed_pin_attempts = count
    if suspend:
        pin_proofs_drop(user.pk)
        user.status = User.Status.SUSPENDED
    raise InvalidPin(attempts_remaining=max(0, max_attempts - count))


def _user_locked(user_id) -> User:
    """The user's row locked FOR NO KEY UPDATE, the first lock of every change to the user.

    PIN attempts, suspensions, password changes and every minting or mass
    revocation of refresh tokens take it, so they serialize with each other
    (a token minted during a password change or a reuse detection would
    otherwise survive it). NO KEY: these writes never change the key, and a
    full FOR UPDATE would also block the foreign-key checks of rows inserted
    for the user (its new refresh token), deadlocking with them.
    """
    return User.objects.select_for_update(no_key=True).get(pk=user_id)


# --- Suspension -------------------------------------------------------------------


def backoffice_actor_check(actor) -> None:
    """Refuse (UserSuspended) a back-office change made by a suspended user.

    A suspension stops everything its holder could change, not only their own
    money: a suspended admin must not reverse, freeze, or reinstate themself.
    (Money movements check their actor under the user row's share lock.)
    """
    if actor is not None and User.objects.filter(pk=actor.pk).exclude(status=User.Status.ACTIVE).exists():
        raise UserSuspended("You are suspended: back-office actions are refused until another admin reinstates you.")


def _admins_locked_for_suspension(*, actor, user: User) -> None:
    """Refuse (InvalidState) a suspension that would lock the back office out.

    An admin cannot suspend themself, and the last active admin cannot be
    suspended: nobody would be left to reinstate anyone (``reinstate_user`` is
    the break-glass command). The active admins' rows are locked in primary-key
    order first, so two admins suspending each other at once cannot both pass.
    """
    if actor is not None and actor.pk == user.pk:
        raise InvalidState("You cannot suspend yourself.")
    admins = list(
        User.objects.select_for_update(no_key=True)
        .filter(role=User.Role.ADMIN, status=User.Status.ACTIVE)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if admins == [user.pk]:
        raise InvalidState("The last active admin cannot be suspended.")


_STATUS_EVENTS = {User.Status.SUSPENDED: EventType.USER_SUSPENDED, User.Status.ACTIVE: EventType.USER_REINSTATED}


def _user_status_change(*, actor, user: User, reason: str, to: str, action: AuditAction) -> User:
    reason = reason_clean(reason)
    backoffice_actor_check(actor)
    with transaction.atomic():
        if to == User.Status.SUSPENDED:
            _admins_locked_for_suspension(actor=actor, user=user)
        locked = _user_locked(user.pk)
        old = locked.status
        if old == to:
            raise InvalidState(f"The user is already {to}.")
        locked.status = to
        fields = ["status"]
        if to == User.Status.ACTIVE:
            locked.failed_pin_attempts = 0
            fields.append("failed_pin_attempts")
        locked.save(update_fields=fields)
        audit_record(
            actor=actor,
            action=action,
            target_type="user",
            target_id=locked.pk,
            data={"reason": reason, "old_status": old, "new_status": to},
        )
        # Both ways: a reinstated user proves the PIN to bcrypt again, even if
        # the drop at the suspension could not reach the cache.
        transaction.on_commit(functools.partial(pin_proofs_drop, locked.pk))
        if to == User.Status.SUSPENDED:
            transaction.on_commit(lambda: metrics.suspension_counted("admin"))
        user_event_record(type=_STATUS_EVENTS[to], user=locked)
    return locked


def user_suspend(*, actor, user: User, reason: str) -> User:
    """Stop the user moving money (they can still log in and read).

    Raises ValidationFailed (empty reason), InvalidState (already suspended,
    the actor themself, or the last active admin).
    """
    return _user_status_change(
        actor=actor, user=user, reason=reason, to=User.Status.SUSPENDED, action=AuditAction.USER_SUSPENDED
    )


def user_reinstate(*, actor, user: User, reason: str) -> User:
    """Lift a suspension and clear the failed-PIN counter.

    Raises ValidationFailed (empty reason), InvalidState (already active).
    """
    return _user_status_change(
        actor=actor, user=user, reason=reason, to=User.Status.ACTIVE, action=AuditAction.USER_REINSTATED
    )


# --- Registration and passwords ---------------------------------------------------


def _validate_password(password, *, user: User, field: str) -> None:
    if not isinstance(password, str) or not password:
        raise ValidationFailed(fields={field: ["A password is required."]})
    try:
        password_validation.validate_password(password, user=user)
    except DjangoValidationError as exc:
        raise ValidationFailed(fields={field: list(exc.messages)}) from exc


def user_register(*, email: str, password: str, full_name: str) -> User:
    """Create a customer. Raises ValidationFailed (bad email/name/password), EmailTaken."""
    email = (email or "").strip().lower()
    full_name = (full_name or "").strip()
    errors: dict[str, list[str]] = {}
    try:
        validate_email(email)
    except DjangoValidationError:
        errors["email"] = ["Enter a valid email address."]
    if not full_name:
        errors["full_name"] = ["This field may not be blank."]
    if errors:
        raise ValidationFailed(fields=errors)
    _validate_password(password, user=User(email=email, full_name=full_name), field="password")
    if User.objects.filter(email__iexact=email).exists():
        raise EmailTaken()
    try:
        with transaction.atomic():
            user = User.objects.create_user(email=email, password=password, full_name=full_name)
            audit_record(
                actor=user, action=AuditAction.USER_REGISTERED, target_type="user", target_id=user.pk, data={}
            )
    except IntegrityError as exc:  # a parallel registration won the unique index
        raise EmailTaken() from exc
    return user


def password_change(*, user: User, current_password: str, new_password: str) -> None:
    """Change the password and end every other session's refresh token.

    Raises InvalidCredentials (wrong current password), ValidationFailed.
    """
    if not isinstance(current_password, str) or not user.check_password(current_password):
        raise InvalidCredentials("The current password is incorrect.")
    _validate_password(new_password, user=user, field="new_password")
    checked_hash = user.password
    with transaction.atomic():
        locked = _user_locked(user.pk)
        if locked.password != checked_hash:  # changed by another request while we were hashing
            raise InvalidCredentials("The current password is incorrect.")
        locked.set_password(new_password)
        locked.save(update_fields=["password"])
        revoked = _refresh_tokens_revoke_all(user_id=locked.pk)
        audit_record(
            actor=user,
            action=AuditAction.PASSWORD_CHANGED,
            target_type="user",
            target_id=user.pk,
            data={"refresh_tokens_revoked": revoked},
        )
        # Proofs bind the password hash, so they are dead already; drop them anyway.
        transaction.on_commit(functools.partial(pin_proofs_drop, locked.pk))
    user.password = locked.password


# --- Login and tokens --------------------------------------------------------------


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str


class _SignedRefresh(Token):
    """A refresh token checked for signature, alg, iss, aud, exp and type, but
    not against the blacklist: that check happens under the row lock below."""

    token_type = "refresh"
    lifetime = jwt_settings.REFRESH_TOKEN_LIFETIME


def _decode_refresh(raw) -> dict:
    if not isinstance(raw, str) or not raw:
        raise TokenInvalid()
    try:
        return _SignedRefresh(raw).payload
    except TokenError as exc:
        raise TokenInvalid() from exc


def refresh_token_owner(*, refresh) -> str | None:
    """The user id in a refresh token we signed that has not expired, else None.

    Only a rate-limit key (refresh is limited per IP and per account, like
    login per email): revocation is not checked here; ``token_refresh`` does
    that under its lock. The signature is checked, so a forged token naming
    someone else's id cannot spend that user's budget; it counts per IP only.
    """
    try:
        owner = _decode_refresh(refresh).get(jwt_settings.USER_ID_CLAIM)
    except TokenInvalid:
        return None
    return str(owner) if owner else None


def _pair_for(user: User) -> TokenPair:
    refresh = RefreshToken.for_user(user)  # records an OutstandingToken
    return TokenPair(access=str(refresh.access_token), refresh=str(refresh))


def _outstanding_locked():
    # OutstandingToken's default ordering joins the nullable user; PostgreSQL
    # refuses FOR UPDATE across that outer join, so drop it and lock our row only.
    return OutstandingToken.objects.order_by().select_for_update(of=("self",))


def _refresh_tokens_revoke_all(*, user_id) -> int:
    """Blacklist every not-yet-revoked, unexpired refresh token of the user."""
    pending = OutstandingToken.objects.filter(
        user_id=user_id, expires_at__gt=timezone.now(), blacklistedtoken__isnull=True
    )
    rows = [BlacklistedToken(token=token) for token in pending]
    BlacklistedToken.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def _login_failed(*, user: User | None, email: str, via: str, **extra) -> None:
    audit_record(
        actor=user,
        action=AuditAction.LOGIN_FAILED,
        target_type="email",
        target_id=email.lower()[:64],
        data={"email": email.lower()[:254], "known_user": user is not None, **({"via": via} if via != "api" else {}), **extra},
    )


def credentials_verify(*, email: str, password: str, via: str = "api") -> User:
    """The user whose email and password these are; else audits ``auth.login_failed`` and raises InvalidCredentials.

    The one password check of every login (API and admin site): an unknown
    email costs the same hash as a wrong password (like Django's ModelBackend),
    so the two cannot be told apart by timing.
    """
    email = (email or "").strip() if isinstance(email, str) else ""
    user = User.objects.filter(email__iexact=email).first() if email else None
    if user is None:
        make_password(password if isinstance(password, str) else "")
        ok = False
    else:
        ok = isinstance(password, str) and user.check_password(password) and user.is_active
    if not ok:
        _login_failed(user=user, email=email, via=via)
        raise InvalidCredentials()
    return user


def admin_login_check(*, email: str, password: str) -> User:
    """The staff user logging in to the admin site, audited (``auth.login_succeeded``/``failed``, ``via: admin``).

    A correct password of a user who is not staff is a failed admin login (audited
    with ``reason: not_staff``), answered like a wrong password. Raises InvalidCredentials.
    """
    user = credentials_verify(email=email, password=password, via="admin")
    if not user.is_staff:
        _login_failed(user=user, email=email.strip(), via="admin", reason="not_staff")
        raise InvalidCredentials()
    audit_record(
        actor=user, action=AuditAction.LOGIN_SUCCEEDED, target_type="user", target_id=user.pk, data={"via": "admin"}
    )
    return user


def admin_logout_record(*, user: User) -> None:
    """Audit an admin-site logout (``auth.logout``, ``via: admin``)."""
    audit_record(actor=user, action=AuditAction.LOGOUT, target_type="user", target_id=user.pk, data={"via": "admin"})


def auth_login(*, email: str, password: str) -> TokenPair:
    """Exchange email and password for a token pair. Raises InvalidCredentials.

    Suspended users may log in (they can read); money services refuse them.
    """
    user = credentials_verify(email=email, password=password)
    checked_hash = user.password
    with transaction.atomic():
        # The password was checked without a lock (bcrypt is slow): a password
        # change that committed since then must not leave this session alive.
        locked = _user_locked(user.pk)
        if locked.password != checked_hash or not locked.is_active:
            raise InvalidCredentials()
        pair = _pair_for(locked)
        audit_record(actor=user, action=AuditAction.LOGIN_SUCCEEDED, target_type="user", target_id=user.pk, data={})
    return pair


def token_refresh(*, refresh: str) -> TokenPair:
    """Rotate a refresh token: revoke the presented one, issue a new pair.

    Raises TokenInvalid for a bad, expired or unknown token, for a deleted or
    deactivated user, and for a revoked token, in which case every refresh
    token of the user is revoked first (reuse detection) and committed.
    """
    payload = _decode_refresh(refresh)
    jti = payload.get(jwt_settings.JTI_CLAIM)
    reused_by = None
    with transaction.atomic(durable=True):
        owner_id = OutstandingToken.objects.filter(jti=jti).values_list("user_id", flat=True).first()
        if owner_id is None:
            raise TokenInvalid()
        _user_locked(owner_id)  # before the token's row: the same order as password_change
        outstanding = _outstanding_locked().filter(jti=jti).first()
        if outstanding is None or outstanding.user_id is None:
            raise TokenInvalid()
        if BlacklistedToken.objects.filter(token=outstanding).exists():
            revoked = _refresh_tokens_revoke_all(user_id=outstanding.user_id)
            audit_record(
                actor=None,
                action=AuditAction.REFRESH_REUSED,
                target_type="user",
                target_id=outstanding.user_id,
                data={"jti": jti, "refresh_tokens_revoked": revoked},
            )
            reused_by = outstanding.user_id
        else:
            user = User.objects.filter(pk=outstanding.user_id, is_active=True).first()
            if user is None:
                raise TokenInvalid()
            BlacklistedToken.objects.create(token=outstanding)
            return _pair_for(user)
    assert reused_by is not None
    pin_proofs_drop(reused_by)  # committed: a stolen session must prove the PIN to bcrypt again
    raise TokenInvalid("This refresh token was already used; every session of this user has been ended.")


def token_revoke(*, actor: User, refresh: str) -> None:
    """Log out: revoke one refresh token of ``actor``. Revoking it twice is fine.

    Raises TokenInvalid if the token is bad or belongs to someone else.
    """
    payload = _decode_refresh(refresh)
    jti = payload.get(jwt_settings.JTI_CLAIM)
    with transaction.atomic():
        outstanding = _outstanding_locked().filter(jti=jti, user_id=actor.pk).first()
        if outstanding is None:
            raise TokenInvalid()
        _, created = BlacklistedToken.objects.get_or_create(token=outstanding)
        if created:
            audit_record(actor=actor, action=AuditAction.LOGOUT, target_type="user", target_id=actor.pk, data={})
