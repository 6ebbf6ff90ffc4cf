"""Endpoint secrets and Standard Webhooks signatures.

A secret is never stored. Each endpoint keeps a random nonce; its secret is
``HMAC-SHA256(server key, "<endpoint id>:<nonce>")``, shown once as
``whsec_<base64>`` and re-derived by the worker at each delivery. A database
dump therefore holds nothing that signs: forging a webhook needs the server
key too (``settings.WEBHOOKS_SECRET_KEY``, from ``LEDGERX_WEBHOOKS_SECRET_KEY``
or, when unset, derived from ``DJANGO_SECRET_KEY``). Derivation rather than
encryption at rest: the same protection with the standard library only, and
no ciphertext to migrate; the price is that changing the server key changes
every endpoint's secret (rotate them all afterwards).

Signing itself is the ``standardwebhooks`` library's, so what we send is
exactly what every Standard Webhooks verifier checks.
"""

import base64
import hashlib
import hmac
import secrets
from datetime import datetime

from django.conf import settings
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"


def nonce_new() -> str:
    return secrets.token_hex(16)


def _server_key() -> bytes:
    key = settings.WEBHOOKS_SECRET_KEY
    return key.encode() if isinstance(key, str) else key


def secret_for(*, endpoint_id, nonce: str) -> str:
    """The endpoint's ``whsec_`` secret for ``nonce``."""
    raw = hmac.new(_server_key(), f"{endpoint_id}:{nonce}".encode(), hashlib.sha256).digest()
    return SECRET_PREFIX + base64.b64encode(raw).decode()


def active_secrets(endpoint, *, now: datetime | None = None) -> list[str]:
    """The current secret, then the previous one while it is still valid after a rotation."""
    now = now or timezone.now()
    found = [secret_for(endpoint_id=endpoint.pk, nonce=endpoint.secret_nonce)]
    if endpoint.previous_secret_nonce and endpoint.previous_secret_expires_at and endpoint.previous_secret_expires_at > now:
        found.append(secret_for(endpoint_id=endpoint.pk, nonce=endpoint.previous_secret_nonce))
    return found


def signature_header(*, secrets_: list[str], msg_id: str, timestamp: datetime, body: str) -> str:
    """``webhook-signature``: one ``v1,<sig>`` per active secret, space separated (the spec's form)."""
    return " ".join(Webhook(secret).sign(msg_id=msg_id, timestamp=timestamp, data=body) for secret in secrets_)
