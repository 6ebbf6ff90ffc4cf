"""The back office's own state: the dashboard's settled volume rollup (``backoffice.dashboard.volume``)."""

from django.db import models


class VolumeRollup(models.Model):
    """The daily volume settled so far: one row, written by the dashboard's views, never by hand.

    In the database beside the transactions it counts, so a restore, a copy or
    a recreated database carries the rollup that matches its rows (a cache
    outside it could outlive them, or belong to another database).
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    start = models.DateTimeField(editable=False)  # the rows counted are created at or after this moment ...
    settled = models.DateTimeField(editable=False)  # ... and at or before this one
    days = models.JSONField(default=list, editable=False)  # [[currency, "YYYY-MM-DD", total, count], ...]
    pending = models.JSONField(default=list, editable=False)  # ids of holds that were still pending when settled

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="backoffice_volume_rollup_one_row")]
