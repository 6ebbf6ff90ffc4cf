"""System checks for a production deployment (``manage.py check --deploy``).

Settings already refuse a public development key when DEBUG is off; this check
also catches a deployment rehearsed with DEBUG on (or a key copied from the
repository into an environment file) before it goes live.
"""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

SECRETS = (
    ("SECRET_KEY", "DJANGO_SECRET_KEY"),
    ("JWT_SIGNING_KEY", "LEDGERX_JWT_SIGNING_KEY"),
    ("PIN_PEPPER", "LEDGERX_PIN_PEPPER"),
)


@register(Tags.security, deploy=True)
def check_no_public_keys(app_configs=None, **kwargs):
    return [
        Error(
            f"{setting} is a public development key.",
            hint=f"Set {variable} to a secret of its own, e.g. python -c 'import secrets; print(secrets.token_urlsafe(50))'.",
            id="ledgerx.E001",
        )
        for setting, variable in SECRETS
        if getattr(settings, setting, "") in settings.KNOWN_PUBLIC_KEYS
    ]


@register(Tags.security, deploy=True)
def check_audit_checkpoints_signed(app_configs=None, **kwargs):
    if settings.AUDIT_SIGNING_KEY:
        return []
    return [
        Warning(
            "LEDGERX_AUDIT_SIGNING_KEY is not set: no signed audit checkpoints are made.",
            hint="Without them whoever owns the audit tables can remove or rewrite recent history undetected.",
            id="ledgerx.W002",
        )
    ]
