"""One HTTP exchange with a checked, pinned address, under a deadline and a size cap."""

from __future__ import annotations

import http.client
import io
import json as jsonlib
import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from agents.engine.taxonomy import SystemUnavailable
from agents.outbound.errors import OutboundRefused, ResponseTooLarge, scrub
from agents.outbound.rules import (
    CONTROL_CHARS,
    DEFAULT_PORTS,
    HEADER_NAME,
    Target,
    check_addresses,
    resolve,
)

logger = logging.getLogger("steward.outbound")

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
DEFAULT_TIMEOUT = 30.0
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_MAX_BYTES = 2 * 1024 * 1024
USER_AGENT = "Steward/0.1"
# Answers worth retrying: the service is down, overloaded or rate limiting us.
UNAVAILABLE_STATUSES = frozenset({408, 429})


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict  # lower-case names
    body: bytes = field(repr=False)
    url: str  # redacted
    elapsed_ms: float
    secrets: tuple = field(default=(), repr=False, compare=False)

    def json(self):
        """The body parsed as JSON (an empty body is null); ValueError if it is not JSON."""
        if not self.body.strip():
            return None
        return jsonlib.loads(self.body)

    def text(self, limit: int | None = None) -> str:
        """The body as text, scrubbed of the connection's secrets, cut at `limit` characters."""
        text = self.body.decode("utf-8", errors="replace")
        if limit is not None and len(text) > limit:
            text = text[:limit] + "..."
        return scrub(text, self.secrets)


class _DeadlineSocket:
    """A socket whose every send and receive is bounded by one total deadline.

    http.client reads headers line by line; a per-read timeout alone would let a server that
    sends one byte per second keep us forever. Here each operation gets what is left."""

    def __init__(self, sock: socket.socket, deadline: float):
        self._sock = sock
        self._deadline = deadline

    def _left(self) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the total time allowed ran out")
        return left

    def sendall(self, data) -> None:
        self._sock.settimeout(self._left())
        self._sock.sendall(data)

    def recv_into(self, buffer, nbytes=0) -> int:
        self._sock.settimeout(self._left())
        return self._sock.recv_into(buffer, nbytes)

    def makefile(self, mode="rb", *args, **kwargs):
        return io.BufferedReader(_DeadlineReader(self))

    def close(self) -> None:
        # http.client closes its socket as soon as it has the headers of a "Connection:
        # close" answer and reads the body afterwards; the real socket is closed by
        # `_PinnedConnection.release` once the exchange is over.
        pass


class _DeadlineReader(io.RawIOBase):
    def __init__(self, sock: _DeadlineSocket):
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        return self._sock.recv_into(buffer)


class _PinnedConnection(http.client.HTTPConnection):
    """An HTTP(S) connection to a checked address, speaking to the host name.

    The Host header comes from `host`; the socket goes to `address`; TLS uses `host` for SNI
    and the certificate check."""

    def __init__(self, target: Target, address: str, *, deadline: float, connect_timeout: float):
        super().__init__(target.host, target.port)
        self.default_port = DEFAULT_PORTS[target.scheme]
        self._target = target
        self._address = address
        self._deadline = deadline
        self._connect_timeout = connect_timeout
        self.raw_socket = None

    def connect(self) -> None:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the total time allowed ran out")
        sock = socket.create_connection(
            (self._address, self._target.port), timeout=min(self._connect_timeout, left)
        )
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._target.scheme == "https":
                sock.settimeout(max(0.001, self._deadline - time.monotonic()))
                sock = _tls_context().wrap_socket(sock, server_hostname=self._target.host)
        except BaseException:
            sock.close()
            raise
        self.raw_socket = sock
        self.sock = _DeadlineSocket(sock, self._deadline)

    def release(self) -> None:
        self.close()
        if self.raw_socket is not None:
            self.raw_socket.close()
            self.raw_socket = None


_TLS = threading.local()


def _tls_context() -> ssl.SSLContext:
    context = getattr(_TLS, "context", None)
    if context is None:
        context = ssl.create_default_context()
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        _TLS.context = context
    return context


def exchange(method, target, headers, body, *, internal, limits, max_bytes, secrets) -> Response:
    """Resolve, check, connect to the checked address, send, and read under the limits.

    `limits`: {"deadline": monotonic time, "timeout": seconds (for messages),
    "connect_timeout": seconds}."""
    addresses = resolve(target, limits["deadline"])
    check_addresses(target, addresses, internal=internal)
    started = time.perf_counter()
    shown = target.redacted
    connection = None
    try:
        connection, response = _send(
            method, target, addresses, headers, body, limits["deadline"], limits["connect_timeout"]
        )
        status = response.status
        if 300 <= status < 400:
            location = _redacted_location(response.getheader("location") or "")
            raise OutboundRefused(
                f"refused: {shown} answered {status} redirecting to {location}; "
                "Steward follows no redirects (point the connection at the final address)"
            )
        if status >= 500 or status in UNAVAILABLE_STATUSES:
            raise SystemUnavailable(
                f"{shown} answered {status} {response.reason}".rstrip(), target=shown, status=status
            )
        length = response.getheader("content-length")
        if length and length.isdigit() and int(length) > max_bytes:
            raise ResponseTooLarge(
                f"the response from {shown} is larger than the {_size(max_bytes)} cap"
            )
        data = _read_capped(response, max_bytes, shown)
        result_headers = {name.lower(): value for name, value in response.getheaders()}
    except TimeoutError:
        raise SystemUnavailable(
            f"{shown} did not answer within the {limits['timeout']:g} s allowed", target=shown
        ) from None
    except ssl.SSLCertVerificationError as exc:
        raise OutboundRefused(
            f"refused: the TLS certificate of {target.host} could not be verified "
            f"({exc.verify_message})"
        ) from None
    except (ssl.SSLError, http.client.HTTPException, OSError) as exc:
        raise SystemUnavailable(
            f"{shown} could not be reached: {_describe(exc)}", target=shown
        ) from None
    finally:
        if connection is not None:
            connection.release()
    elapsed = (time.perf_counter() - started) * 1000
    # The path may carry personal data (a customer id...): the log names the origin only.
    origin = f"{target.scheme}://{target.netloc}"
    logger.info("outbound %s %s -> %s in %.0f ms", method, origin, status, elapsed)
    return Response(
        status=status,
        headers=result_headers,
        body=data,
        url=shown,
        elapsed_ms=elapsed,
        secrets=secrets,
    )


def _send(method, target, addresses, headers, body, deadline, connect_timeout):
    last_error: OSError | None = None
    for address in addresses:
        connection = _PinnedConnection(
            target, address, deadline=deadline, connect_timeout=connect_timeout
        )
        try:
            connection.connect()
        except (ConnectionError, socket.gaierror) as exc:  # try the next address
            connection.release()
            last_error = exc
            continue
        except BaseException:
            connection.release()
            raise
        try:
            connection.putrequest(method, target.path, skip_accept_encoding=True)
            all_headers = {
                "User-Agent": USER_AGENT,
                "Accept": "application/json",
                "Accept-Encoding": "identity",
                "Connection": "close",
                **headers,
            }
            if body is not None:
                all_headers["Content-Length"] = str(len(body))
            for name, value in all_headers.items():
                connection.putheader(name, value)
            connection.endheaders(body)
            return connection, connection.getresponse()
        except BaseException:
            connection.release()
            raise
    raise last_error or ConnectionError("no address to connect to")


def _read_capped(response, max_bytes: int, shown: str) -> bytes:
    chunks, total = [], 0
    while True:
        chunk = response.read(min(65536, max_bytes + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        if total > max_bytes:
            raise ResponseTooLarge(
                f"the response from {shown} is larger than the {_size(max_bytes)} cap"
            )
    return b"".join(chunks)


def checked_headers(headers: dict) -> dict:
    checked = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not HEADER_NAME.match(name):
            raise OutboundRefused(f"refused: {str(name)[:40]!r} is not a valid header name")
        if name.lower() in {"host", "content-length", "transfer-encoding", "connection"}:
            raise OutboundRefused(f"refused: the {name} header is set by Steward")
        value = str(value)
        if CONTROL_CHARS.search(value):  # never echo the value: it may be a secret
            raise OutboundRefused(f"refused: the {name} header has a line break or control char")
        checked[name] = value
    return checked


def _redacted_location(location: str) -> str:
    try:
        parts = urlsplit(location)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "an unreadable location"
    if parts.scheme and host:
        return f"{parts.scheme}://{host}{port}{parts.path}"[:200]
    return (parts.path or "an unreadable location")[:200]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "the server closed the connection without answering"
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:200]


def _size(n: int) -> str:
    if n >= 1024 * 1024 and n % (1024 * 1024) == 0:
        return f"{n // (1024 * 1024)} MiB"
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024} KiB"
    return f"{n} bytes"
