"""Re-asking the password before a back-office action when the session's last password check is old.

An admin session lives until it has been idle for half an hour, so a screen
left unlocked could freeze accounts or reverse payments in someone else's
name. Every action that needs a reason (``admin_tools.reason_action``) also
needs a password check at most ``ADMIN_REAUTH_SECONDS`` old: the login itself,
or the password typed on the action's confirmation page. The check is the
login's own (``accounts.services.credentials_verify``: its rate limit bucket
per email, a ``auth.login_failed`` record with ``via: admin_reauth`` for a
wrong password).
"""

import time

from django.conf import settings

PROOF_KEY = "ledgerx_password_proved_at"


def password_proof_record(session) -> None:
    """The session's user has just typed their password (logged in, or confirmed an action)."""
    session[PROOF_KEY] = time.time()


def password_proof_fresh(session) -> bool:
    proved_at = session.get(PROOF_KEY)
    if not isinstance(proved_at, (int, float)):
        return False
    return time.time() - proved_at < settings.ADMIN_REAUTH_SECONDS


def password_reverify(request, password: str) -> None:
    """Check the signed-in staff member's password again; records the proof. Raises InvalidCredentials or RateLimited.

    Also ServiceUnavailable when the rate limiter is down, like a login.
    """
    from accounts.services import credentials_verify
    from ledgerx.api.ratelimit import auth_rate_limit_key

    email = request.user.email
    auth_rate_limit_key(request, scope="login", value=email)
    credentials_verify(email=email, password=password, via="admin_reauth")
    password_proof_record(request.session)


def on_login(sender, request, user, **kwargs):
    """``user_logged_in``: a session login follows a password check (the admin's login form)."""
    session = getattr(request, "session", None)
    if session is not None:
        password_proof_record(session)
