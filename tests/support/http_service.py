"""A loopback HTTP JSON service for tests: scriptable routes, and a count of every request.

    service = make_service()                      # fixture: a new service on 127.0.0.1:<random>
    service.route("GET", "/customers/42", Reply(json={"risk": "low"}))
    service.route("POST", "/score", lambda request: Reply(json=request.json()))
    ... service.count, service.requests[-1].headers ...

Every request that reaches the socket is recorded before it is answered, whatever the route,
so `service.count == 0` proves a refused request never left Steward.
"""

from __future__ import annotations

import json
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest


@dataclass
class Reply:
    status: int = 200
    json: object = None  # written as JSON when given
    body: bytes | str = b""  # written as is otherwise
    headers: dict = field(default_factory=dict)
    delay: float = 0.0  # seconds before the status line
    drip: float = 0.0  # seconds between body chunks
    chunk_size: int = 0  # with drip or chunked: bytes per chunk
    chunked: bool = False  # Transfer-Encoding: chunked (no Content-Length)

    def payload(self) -> bytes:
        if self.json is not None:
            return json.dumps(self.json).encode()
        return self.body.encode() if isinstance(self.body, str) else self.body


@dataclass
class Recorded:
    method: str
    path: str
    query: dict
    headers: dict  # lower-case names
    body: bytes

    def json(self):
        return json.loads(self.body)


class LoopbackService:
    def __init__(self, *, tls: tuple[str, str] | None = None):
        """`tls`: (certificate file, key file) to serve HTTPS instead of HTTP."""
        self.requests: list[Recorded] = []
        self.routes: dict[tuple[str, str], object] = {}
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.server.handle_error = lambda request, address: None  # clients that gave up
        if tls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def route(self, method: str, path: str, reply) -> None:
        """`reply` is a Reply, or a callable taking the Recorded request and returning one."""
        self.routes[(method.upper(), path)] = reply

    def record(self, recorded: Recorded) -> None:
        with self._lock:
            self.requests.append(recorded)

    def reply_for(self, recorded: Recorded) -> Reply:
        reply = self.routes.get((recorded.method, recorded.path))
        if reply is None:
            return Reply(status=404, json={"error": f"no route {recorded.method} {recorded.path}"})
        return reply(recorded) if callable(reply) else reply

    def stop(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


def _handler_for(service: LoopbackService):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # keep test output clean
            pass

        def _handle(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            recorded = Recorded(
                method=self.command,
                path=parts.path,
                query={k: v[0] for k, v in parse_qs(parts.query).items()},
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            service.record(recorded)
            reply = service.reply_for(recorded)
            if reply.delay and service.stopping.wait(reply.delay):
                return
            payload = reply.payload()
            self.close_connection = True
            self.send_response(reply.status)
            headers = {"Content-Type": "application/json", **reply.headers}
            for name, value in headers.items():
                self.send_header(name, value)
            if reply.chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(len(payload)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command == "HEAD":
                return
            size = reply.chunk_size or (len(payload) if not reply.chunked else 65536) or 1
            for start in range(0, len(payload), size):
                chunk = payload[start : start + size]
                if reply.chunked:
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                else:
                    self.wfile.write(chunk)
                self.wfile.flush()
                if reply.drip and service.stopping.wait(reply.drip):
                    return
            if reply.chunked:
                self.wfile.write(b"0\r\n\r\n")

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

    return Handler


@pytest.fixture(name="make_service")
def make_service_fixture():
    """A factory of loopback services, all stopped after the test."""
    services = []

    def make(**kwargs) -> LoopbackService:
        service = LoopbackService(**kwargs)
        services.append(service)
        return service

    yield make
    for service in services:
        service.stop()


@pytest.fixture(name="http_service")
def http_service_fixture(make_service):
    return make_service()
