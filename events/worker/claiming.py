"""Claiming due deliveries: a lease per delivery, at most ``PER_ENDPOINT`` in flight per endpoint."""

import uuid
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from events.models import Delivery, WebhookEndpoint

LEASE = timedelta(seconds=60)  # > the 10 s timeout with room: a live worker never loses its claim
PER_ENDPOINT = 4  # deliveries of one endpoint claimed (in flight) at a time, by all workers together


def _endpoints_full(now: datetime):
    """Endpoints with ``PER_ENDPOINT`` live claims (a subquery, read on the small index of leased rows)."""
    return (
        Delivery.objects.filter(claimed_until__gte=now)
        .values("endpoint_id")
        .annotate(leased=Count("id"))
        .filter(leased__gte=PER_ENDPOINT)
        .values("endpoint_id")
    )


def deliveries_claim(*, worker_id: str, limit: int, now: datetime | None = None) -> list[uuid.UUID]:
    """Claim up to ``limit`` due deliveries of enabled endpoints for ``worker_id``; returns their ids.

    At most ``PER_ENDPOINT`` deliveries of one endpoint are claimed at a time
    by all workers together: the claim locks the candidates' endpoint rows
    (``FOR NO KEY UPDATE``, which does not wait for or block the movements
    adding deliveries, and ``SKIP LOCKED``: an endpoint another worker is
    claiming for right now is left to it), counts their live claims and takes
    only what fits. Endpoints already full are left out of the candidates, so
    one endpoint's backlog does not fill a pass and starve the others.
    """
    now = now or timezone.now()
    with transaction.atomic(durable=not connection.in_atomic_block):
        due = (
            Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now)
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
            .filter(endpoint__status=WebhookEndpoint.Status.ENABLED)
            .exclude(endpoint_id__in=_endpoints_full(now))
            .order_by("next_attempt_at", "xid", "id")
        )
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True, of=("self",))
        candidates = list(due.values_list("id", "endpoint_id")[:limit])
        if not candidates:
            return []
        # SQLite has no row locks: its single writer already serializes the claims.
        endpoints = WebhookEndpoint.objects.filter(pk__in={endpoint for _id, endpoint in candidates}).order_by("pk")
        if connection.features.has_select_for_update_skip_locked:
            endpoints = endpoints.select_for_update(no_key=True, skip_locked=True)
        locked = list(endpoints.values_list("pk", flat=True))
        live = dict(
            Delivery.objects.filter(endpoint_id__in=locked, claimed_until__gte=now)
            .values("endpoint_id")
            .annotate(leased=Count("id"))
            .values_list("endpoint_id", "leased")
        )
        room = {endpoint: PER_ENDPOINT - live.get(endpoint, 0) for endpoint in locked}
        ids = []
        for delivery_id, endpoint in candidates:
            if room.get(endpoint, 0) > 0:
                ids.append(delivery_id)
                room[endpoint] -= 1
        if not ids:
            return []
        # Conditional, so that without row locks (SQLite) a row another worker
        # claimed meanwhile is not taken over; the ids we really got are read back.
        until = now + LEASE
        Delivery.objects.filter(id__in=ids).filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)).update(
            claimed_by=worker_id, claimed_until=until
        )
        return list(
            Delivery.objects.filter(id__in=ids, claimed_by=worker_id, claimed_until=until)
            .order_by("next_attempt_at", "xid", "id")
            .values_list("id", flat=True)
        )
