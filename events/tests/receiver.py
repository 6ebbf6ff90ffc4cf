"""A real local HTTP receiver for webhook tests: a thread serving 127.0.0.1 on a free port 8170-8189."""

import http.server
import threading
import time
from dataclasses import dataclass, field

import pytest


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes


@dataclass
class Receiver:
    server: http.server.ThreadingHTTPServer
    received: list = field(default_factory=list)
    status: int = 200  # what it answers; a test changes it (500: "down")
    response_body: bytes = b"ok"
    hang: float = 0  # seconds to stall before answering (a request in flight when a worker is killed)
    started: int = 0  # requests that reached the handler
    delay: float = 0  # seconds each request takes before its answer (a slow receiver)
    in_flight: dict = field(default_factory=dict)  # path -> requests being handled now
    peak: dict = field(default_factory=dict)  # path -> most requests handled at once
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def ids(self) -> list[str]:
        with self.lock:
            return [item.headers["webhook-id"] for item in self.received]


def _handler(owner: "Receiver"):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            with owner.lock:
                owner.started += 1
                owner.in_flight[self.path] = now = owner.in_flight.get(self.path, 0) + 1
                owner.peak[self.path] = max(owner.peak.get(self.path, 0), now)
            try:
                self._answer(body)
            finally:
                with owner.lock:
                    owner.in_flight[self.path] -= 1

        def _answer(self, body):
            if owner.delay:
                time.sleep(owner.delay)
            if owner.hang:
                time.sleep(owner.hang)
                return  # the sender is gone by then; nothing is recorded
            status = owner.status
            if 200 <= status < 300:
                with owner.lock:
                    owner.received.append(
                        Received(path=self.path, headers={k.lower(): v for k, v in self.headers.items()}, body=body)
                    )
            self.send_response(status)
            self.send_header("Content-Length", str(len(owner.response_body)))
            self.end_headers()
            self.wfile.write(owner.response_body)

        def log_message(self, *args):
            pass

    return Handler


def receiver_start() -> Receiver:
    holder = Receiver.__new__(Receiver)
    for port in range(8170, 8190):
        try:
            server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _handler(holder))
            break
        except OSError:
            continue
    else:
        raise RuntimeError("no free port in 8170-8189")
    holder.__init__(server=server)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return holder


@pytest.fixture
def receiver(settings):
    settings.WEBHOOKS_ALLOW_INSECURE = True
    running = receiver_start()
    yield running
    running.server.shutdown()
    running.server.server_close()
