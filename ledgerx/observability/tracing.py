"""OpenTelemetry tracing, off unless the standard ``OTEL_*`` variables turn it on.

``OTEL_TRACES_EXPORTER=otlp`` (or an ``OTEL_EXPORTER_OTLP_*ENDPOINT``) sends
spans over OTLP/HTTP to a collector; ``console`` prints them. Everything else
(service name, resource attributes, sampling, batching) is read by the SDK
from its own standard variables, so operators configure LedgerX like any
other OpenTelemetry service. Instrumented: Django requests (spans named by
route), every psycopg statement (the movement's lock-and-write call shows as
its own span) and Redis commands. The trace id also goes into the JSON logs
(``ledgerx.logging``), beside the request id.
"""

import contextlib
import logging
import os
import time

logger = logging.getLogger("ledgerx.tracing")
_configured = False


def tracing_wanted() -> bool:
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none" or os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    return bool(exporter or endpoint)


def tracing_configure() -> bool:
    """Install the tracer provider and the instrumentations, once per process. True if tracing is on.

    Call it before Django builds its middleware chain (``ledgerx.wsgi``,
    ``manage.py``): the Django instrumentation inserts its middleware.
    """
    global _configured
    if _configured or not tracing_wanted():
        return _configured
    from opentelemetry import trace
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    os.environ.setdefault("OTEL_SERVICE_NAME", "ledgerx")
    if os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "console":
        exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    provider = TracerProvider(resource=Resource.create())
    # Batching keeps export off the request path; the processor restarts its
    # thread in each forked gunicorn worker.
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    DjangoInstrumentor().instrument()
    PsycopgInstrumentor().instrument(enable_commenter=False)
    RedisInstrumentor().instrument()
    _configured = True
    logger.info("tracing on", extra={"exporter": type(exporter).__name__})
    return True


def current_trace_id() -> str | None:
    """The active span's trace id as 32 hex digits (None outside a trace or with tracing off)."""
    if not _configured:
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


@contextlib.contextmanager
def span(name: str, **attributes):
    """A span named ``name`` around the block (nothing at all with tracing off)."""
    if not _configured:
        yield None
        return
    from opentelemetry import trace

    with trace.get_tracer("ledgerx").start_as_current_span(name, attributes=attributes) as current:
        yield current


def span_measured(name: str, *, start_ns: int, duration_ns: int, **attributes) -> None:
    """A finished span of a duration measured elsewhere (inside the database), starting at ``start_ns``."""
    if not _configured:
        return
    from opentelemetry import trace

    measured = trace.get_tracer("ledgerx").start_span(name, start_time=start_ns, attributes=attributes)
    measured.end(end_time=start_ns + max(0, duration_ns))


def now_ns() -> int:
    """The clock spans are stamped with (wall time, nanoseconds)."""
    return time.time_ns()
