"""What gunicorn refuses by itself (before Django runs) answers in the contract's envelope, not HTML.

The raw bytes go over a socket to a real gunicorn started from gunicorn.conf.py:
an HTTP client library would refuse to send most of them.
"""

import json
import socket

import pytest

from ledgerx.tests.observability.conftest import stop
from ledgerx.tests.server.conftest import start_gunicorn


def _send(base: str, raw: bytes) -> tuple[str, dict, dict]:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(raw)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)}
    return status_line, headers, json.loads(body)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # One server for the module's cases (starting one takes seconds).
    base, process = start_gunicorn(tmp_path_factory.mktemp("refusals"), LEDGERX_WORKERS="1", LEDGERX_ACCESS_LOG="0")
    yield base
    stop(process)


MALFORMED = {"code": "validation_error", "message": "The request is malformed.", "fields": {"non_field_errors": ["The request is malformed."]}}


@pytest.mark.parametrize(
    ("raw", "status_line", "error"),
    [
        (
            b"GET /api/v1/" + b"a" * 5000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            "HTTP/1.1 414 URI Too Long",
            {"code": "uri_too_long", "message": "The request line is longer than 4094 bytes."},
        ),
        (
            b"GET /api/v1/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"b" * 20_000 + b"\r\n\r\n",
            "HTTP/1.1 431 Request Header Fields Too Large",
            {"code": "headers_too_large", "message": "The request has more than 100 headers or a header longer than 8190 bytes."},
        ),
        (
            b"GET /api/v1/ HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(120)) + b"\r\n",
            "HTTP/1.1 431 Request Header Fields Too Large",
            {"code": "headers_too_large", "message": "The request has more than 100 headers or a header longer than 8190 bytes."},
        ),
        (b"GARBAGE\r\n\r\n", "HTTP/1.1 400 Bad Request", MALFORMED),
        (b"G@T /api/v1/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", "HTTP/1.1 400 Bad Request", MALFORMED),
        (b"GET /api/v1/ HTTP/7.1\r\nHost: 127.0.0.1\r\n\r\n", "HTTP/1.1 400 Bad Request", MALFORMED),
        (b"GET /api/v1/ HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header Name: x\r\n\r\n", "HTTP/1.1 400 Bad Request", MALFORMED),
    ],
    ids=["line-over-4kb", "header-20kb", "120-headers", "not-http", "bad-method", "bad-version", "bad-header-name"],
)
def test_gunicorn_refusals_are_the_json_envelope(server, raw, status_line, error):
    line, headers, body = _send(server, raw)
    assert line == status_line
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    assert headers["cache-control"] == "no-store"
    assert body == {"error": error}


def test_an_ordinary_request_still_reaches_the_application(server):
    line, headers, body = _send(server, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    assert (line, body) == ("HTTP/1.1 200 OK", {"status": "ok"})
