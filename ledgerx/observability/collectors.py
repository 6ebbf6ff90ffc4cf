"""Gauges read from the database when Prometheus scrapes.

A gauge such as "audit records not yet sealed" describes the shared database,
not one process: counting it in each worker would be wrong as soon as two
processes seal. One cheap, indexed query per gauge at scrape time is right for
every topology. A database that does not answer leaves the gauges out of that
scrape (Prometheus then shows a gap) rather than failing the scrape.
"""

import logging

from django.db import DatabaseError
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

logger = logging.getLogger("ledgerx.metrics")


class DatabaseGauges:
    def collect(self):
        try:
            values = _read()
        except DatabaseError:
            logger.warning("metrics: database gauges unavailable", exc_info=True)
            return
        unsealed, oldest, open_holds, deliveries_due, oldest_due, approvals = values
        yield GaugeMetricFamily(
            "ledgerx_audit_unsealed_records", "Audit records committed but not yet sealed into the chain.", value=unsealed
        )
        yield GaugeMetricFamily(
            "ledgerx_audit_oldest_unsealed_seconds",
            "Age of the oldest audit record not yet sealed (0 when all are sealed).",
            value=oldest,
        )
        yield GaugeMetricFamily("ledgerx_holds_open", "Pending holds (reserved, not yet committed or voided).", value=open_holds)
        yield GaugeMetricFamily(
            "ledgerx_webhook_deliveries_due", "Webhook deliveries waiting for their (next) attempt now.", value=deliveries_due
        )
        yield GaugeMetricFamily(
            "ledgerx_webhook_oldest_due_seconds",
            "How long the oldest due webhook delivery has waited past its attempt time (0: none due).",
            value=oldest_due,
        )
        yield GaugeMetricFamily(
            "ledgerx_approvals_pending", "Four-eyes requests waiting for a second admin.", value=approvals
        )


def _read() -> tuple[int, float, int, int, float, int]:
    from approvals.models import ApprovalRequest
    from audit.models import AuditPending, AuditRecord
    from events.models import Delivery
    from transactions.models import Transaction

    unsealed = AuditPending.objects.count()
    oldest = 0.0
    first = AuditPending.objects.order_by("record_id").values_list("record_id", flat=True).first()
    if first is not None:
        at = AuditRecord.objects.filter(pk=first).values_list("at", flat=True).first()
        if at is not None:
            oldest = max(0.0, (timezone.now() - at).total_seconds())
    open_holds = Transaction.objects.filter(status=Transaction.Status.PENDING).count()
    now = timezone.now()
    due = Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now)  # events_delivery_due_pos_idx
    deliveries_due = due.count()
    first_due = due.order_by("next_attempt_at").values_list("next_attempt_at", flat=True).first()
    oldest_due = max(0.0, (now - first_due).total_seconds()) if first_due else 0.0
    approvals = ApprovalRequest.objects.filter(status=ApprovalRequest.Status.PENDING).count()  # approval_status_idx
    return unsealed, oldest, open_holds, deliveries_due, oldest_due, approvals
