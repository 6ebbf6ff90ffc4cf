"""Bench-only Django app config (``bench.nometrics_settings``)."""

from django.apps import AppConfig


def metrics_off() -> None:
    """Every business counter of ``ledgerx.observability.metrics`` becomes a no-op.

    Callers look the functions up on the module at call time, so replacing the
    module's attributes turns every count off, on every path.
    """
    from ledgerx.observability import metrics

    for name in dir(metrics):
        if name.endswith(("_counted", "_committed")) and callable(getattr(metrics, name)):
            setattr(metrics, name, lambda *args, **kwargs: None)


class MetricsOff(AppConfig):
    name = "bench"
    label = "bench_metrics_off"

    def ready(self) -> None:
        metrics_off()
