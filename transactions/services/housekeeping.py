"""Housekeeping of the money path: forgetting idempotency keys past their retention."""

from django.conf import settings
from django.utils import timezone

from transactions.models import IdempotencyRecord


def idempotency_purge(*, now=None, batch: int = 5000) -> int:
    """Delete idempotency records older than ``settings.IDEMPOTENCY_RETENTION``, in batches.

    Keys stay bound at least that long (the contract promises 24 h).
    """
    cutoff = (now or timezone.now()) - settings.IDEMPOTENCY_RETENTION
    purged = 0
    while True:
        ids = list(IdempotencyRecord.objects.filter(created_at__lt=cutoff).values_list("pk", flat=True)[:batch])
        if not ids:
            return purged
        purged += IdempotencyRecord.objects.filter(pk__in=ids).delete()[0]
