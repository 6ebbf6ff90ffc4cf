"""Opt-in tracing: a gunicorn with OTEL_* set sends spans to an OTLP/HTTP receiver, logs carry the trace id."""

import gzip
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ledgerx.tests.observability.conftest import free_port, user_over_http

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


class _Receiver(BaseHTTPRequestHandler):
    spans: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}.get("service.name")
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    attributes = {a.key: a.value.string_value or a.value.int_value for a in span.attributes}
                    self.spans.append({"service": service, "name": span.name, "trace_id": span.trace_id.hex(), "attributes": attributes})
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def collector():
    _Receiver.spans = []
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", _Receiver.spans
    server.shutdown()


def test_a_request_becomes_a_trace_with_its_sql_and_its_id_in_the_logs(gunicorn_start, collector):
    endpoint, spans = collector
    base, _metrics, log = gunicorn_start(
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_BSP_SCHEDULE_DELAY="100",
        OTEL_SERVICE_NAME="ledgerx-test",
        LEDGERX_ACCESS_LOG="0",
    )
    auth = user_over_http(base, "traced@example.com")
    account = requests.post(f"{base}/api/v1/accounts", json={"currency": "USD"}, headers=auth).json()["id"]
    response = requests.post(
        f"{base}/api/v1/deposits", json={"account": account, "amount": 700},
        headers={**auth, "Idempotency-Key": "traced-1", "X-Request-ID": "trace-me-1"},
    )
    assert response.status_code == 201

    deadline = time.monotonic() + 20
    server = []
    while time.monotonic() < deadline:
        server = [s for s in spans if s["attributes"].get("http.route") == "api/v1/deposits"]
        if server and any(s["trace_id"] == server[0]["trace_id"] and s["name"] != server[0]["name"] for s in spans):
            break
        time.sleep(0.2)
    assert len(server) == 1
    trace_id = server[0]["trace_id"]
    assert server[0]["service"] == "ledgerx-test"
    assert server[0]["name"] == "POST api/v1/deposits"
    children = [s for s in spans if s["trace_id"] == trace_id and s is not server[0]]
    assert any(s["attributes"].get("db.system") == "postgresql" for s in children), children
    # The movement and the lock it waited for, each its own span of the request's trace.
    names = {s["name"] for s in children}
    assert {"ledgerx.movement", "ledgerx.movement.lock_wait"} <= names, names
    movement = next(s for s in children if s["name"] == "ledgerx.movement")
    assert movement["attributes"] == {"ledgerx.type": "deposit", "ledgerx.currency": "USD"}

    access = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    mine = [entry for entry in access if entry.get("request_id") == "trace-me-1" and entry.get("message") == "request"]
    assert len(mine) == 1
    assert mine[0]["trace_id"] == trace_id
