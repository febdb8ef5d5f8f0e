"""The one door for every outbound HTTP request Steward makes.

Connections' "test connection", http agents, llm calls and llm tools all go through `fetch`
(or `call`, which builds the URL from a connection). The rules, in the order they apply:

1. **URL shape.** http and https only; no credentials in the URL (``user@host``: use the
   connection's auth method); no whitespace, control characters or backslashes; no ``.`` or
   ``..`` path segments. A host whose last label is a number must be a canonical dotted quad
   (``10.1.2.3``): ``2130706433``, ``0x7f000001``, ``0177.0.0.1`` and ``127.1`` are refused as
   ambiguous before anything is resolved.
2. **Ports.** 80, 443 and the unprivileged range 1024-65535. Privileged ports other than 80
   and 443 (ssh, smtp, ...) are never a web API; high ports are where Ollama (11434), vLLM
   (8000), LM Studio (1234) and LiteLLM (4000) listen, so they stay open, and what protects
   internal services on them is rule 3.
3. **Addresses.** The host is resolved once with getaddrinfo and the request is refused if ANY
   resolved address is unspecified, loopback, private (RFC 1918, unique local), link-local,
   shared CGNAT (100.64/10), multicast, broadcast, reserved or otherwise not globally routable,
   or a cloud metadata address. IPv6 forms that embed an IPv4 address (mapped ``::ffff:a.b.c.d``,
   compatible ``::a.b.c.d``, 6to4 ``2002::/16``, NAT64 ``64:ff9b::/96``) are judged by the
   address they embed; Teredo addresses are refused.
4. **Pinning.** The connection is made to the checked address itself, never to the name (no
   second lookup, so DNS rebinding cannot swap the address); the Host header, TLS SNI and the
   certificate check use the host name.
5. **No redirects.** A 3xx answer is refused (`OutboundRefused`) and never followed: point the
   connection at the final address.
6. **Limits.** A connect timeout and a total deadline (headers and body included, enforced on
   every read, so a server dripping bytes cannot hold a worker), and a response size cap
   (default 2 MiB), streamed: reading stops past the cap. Responses are asked for without
   compression (``Accept-Encoding: identity``), so the cap is the size in memory.
7. **Internal connections.** A connection an admin marked ``allow_internal`` may reach private
   and loopback addresses, but only at its own origin (scheme, host, port of its base URL):
   anything else is judged under the normal rules. Cloud metadata addresses are refused even
   then. No proxy is used (environment proxy variables are ignored).

Errors: a refused destination raises `OutboundRefused` (a ValueError naming the rule, e.g.
"refused: 127.0.0.1 is a loopback address"); timeouts, connection errors, 5xx, 429 and 408
raise the taxonomy's `SystemUnavailable` (with target and status); an oversized response raises
`ResponseTooLarge`; rejected credentials at an OAuth2 token endpoint raise `AuthFailed`. Secrets
(and OAuth2 tokens) never appear in messages, logs or reprs: messages name URLs without their
query string, and response excerpts are scrubbed of them.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import ipaddress
import json as jsonlib
import logging
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import quote_plus, unquote, urlencode, urlsplit

from agents.engine.taxonomy import SystemUnavailable

logger = logging.getLogger("steward.outbound")

SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
DEFAULT_TIMEOUT = 30.0
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_MAX_BYTES = 2 * 1024 * 1024
MAX_URL_LENGTH = 8192
USER_AGENT = "Steward/0.1"
# Answers worth retrying: the service is down, overloaded or rate limiting us.
UNAVAILABLE_STATUSES = frozenset({408, 429})

# Instance metadata services: refused even for internal connections.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, Oracle, DigitalOcean
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure wire server (a public address used as a platform endpoint)
    )
)
CGNAT = ipaddress.ip_network("100.64.0.0/10")
THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
RFC1918 = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
BROADCAST = ipaddress.ip_address("255.255.255.255")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
# IANA special-purpose ranges that are not globally reachable, listed here rather than taken
# from `ipaddress.is_global` alone, whose table differs between Python patch releases.
SPECIAL_PURPOSE = tuple(
    ipaddress.ip_network(n)
    for n in (
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # 6to4 relay anycast (deprecated)
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "100::/64",  # discard
        "2001::/23",  # IETF protocol assignments
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
        "5f00::/16",  # segment routing
        "64:ff9b:1::/48",  # local-use NAT64
    )
)
SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
TEREDO = ipaddress.ip_network("2001::/32")
SITE_LOCAL = ipaddress.ip_network("fec0::/10")
UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")

NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
HOST_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")
UNSAFE_URL_CHARS = re.compile(r"[\x00-\x20\x7f\\]")
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class OutboundError(Exception):
    """A request Steward will not make or could not use. `reason` names it in records."""

    reason = "outbound_error"


class OutboundRefused(OutboundError, ValueError):
    """The destination breaks a rule of this module (scheme, port, address, redirect...)."""

    reason = "refused"


class ResponseTooLarge(OutboundError):
    reason = "response_too_large"


class AuthFailed(OutboundError):
    """The connection's credentials cannot be used (rejected by a token endpoint, malformed)."""

    reason = "auth_failed"


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # lower-case ASCII (IDNA), without brackets or trailing dot
    port: int
    path: str  # path and query, starting with "/"

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    @property
    def redacted(self) -> str:
        """The URL as messages and records show it: no query string (it may carry data)."""
        return f"{self.scheme}://{self.netloc}{self.path.split('?', 1)[0]}"


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


@dataclass(frozen=True)
class ConnectionCheck:
    ok: bool
    status: int | None
    message: str
    latency_ms: float


def scrub(text: str, secrets) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return text


# --- URL and address rules -------------------------------------------------------------------


def parse_target(url: str) -> Target:
    """Check the URL's shape, scheme, host form and port; refuse with the rule broken."""
    if not isinstance(url, str) or not url:
        raise OutboundRefused("refused: no URL")
    if len(url) > MAX_URL_LENGTH:
        raise OutboundRefused(f"refused: the URL is longer than {MAX_URL_LENGTH} characters")
    if UNSAFE_URL_CHARS.search(url):
        raise OutboundRefused(
            "refused: the URL contains whitespace, control characters or backslashes"
        )
    try:
        parts = urlsplit(url)
    except ValueError:
        raise OutboundRefused("refused: the URL is malformed (check brackets and port)") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        shown = repr(scheme) if scheme else "none"
        raise OutboundRefused(f"refused: scheme {shown} is not allowed (http and https only)")
    if not parts.netloc:
        raise OutboundRefused("refused: the URL has no host")
    if "@" in parts.netloc:
        # Never echo the netloc: it holds whatever credentials were written into it.
        raise OutboundRefused(
            "refused: credentials in the URL (user@host) are not allowed; "
            "use the connection's auth method"
        )
    host = _check_host(parts.netloc, parts.hostname or "")
    try:
        port = parts.port
    except ValueError:
        raise OutboundRefused("refused: the port is not a number from 1 to 65535") from None
    if port is None:
        port = DEFAULT_PORTS[scheme]
    if not port_allowed(port):
        raise OutboundRefused(f"refused: port {port} is not allowed (80, 443 and 1024-65535 only)")
    path = parts.path or "/"
    if not path.startswith("/"):
        raise OutboundRefused("refused: the path must start with /")
    if any(segment in (".", "..") for segment in unquote(path).split("/")):
        raise OutboundRefused("refused: the path has a '.' or '..' segment")
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(scheme=scheme, host=host, port=port, path=path)


def port_allowed(port: int) -> bool:
    return port in (80, 443) or 1024 <= port <= 65535


def _check_host(netloc: str, hostname: str) -> str:
    if netloc.startswith("["):
        if "%" in hostname:
            raise OutboundRefused("refused: IPv6 zone identifiers are not allowed")
        try:
            return str(ipaddress.IPv6Address(hostname))
        except ValueError:
            raise OutboundRefused("refused: malformed IPv6 address in the URL") from None
    host = hostname.lower()
    if not host.isascii():  # IDNA first: full-width digits and dots become ASCII ones
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise OutboundRefused("refused: the host name is not a valid domain name") from None
    if host.endswith("."):
        host = host[:-1]
    if not host:
        raise OutboundRefused("refused: the URL has no host")
    labels = host.split(".")
    if NUMERIC_LABEL.match(labels[-1]):
        # Browsers and resolvers read such hosts as IPv4 in decimal, octal, hex or short
        # forms; only the canonical a.b.c.d form says unambiguously which address is meant.
        try:
            canonical = str(ipaddress.IPv4Address(host))
        except ValueError:
            canonical = ""
        if canonical != host:
            raise OutboundRefused(
                f"refused: host {host[:80]!r} is a numeric address that is not a canonical "
                "dotted quad (decimal, octal, hex and shortened forms are ambiguous); "
                "write it as a.b.c.d"
            )
        return host
    if len(host) > 253 or not all(HOST_LABEL.match(label) for label in labels):
        raise OutboundRefused(f"refused: {host[:80]!r} is not a valid host name")
    return host


def address_class(address) -> str | None:
    """Why an address may not be reached ("a loopback address"...), or None if it is public."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if getattr(ip, "scope_id", None):
        ip = ipaddress.ip_address(str(ip).split("%", 1)[0])
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.version == 4:
        return _ipv4_class(ip)
    return _ipv6_class(ip)


def _ipv4_class(ip: ipaddress.IPv4Address) -> str | None:
    if ip.is_unspecified:
        return "an unspecified address"
    if ip in THIS_NETWORK:
        return "a 'this network' address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip in CGNAT:
        return "a shared (CGNAT) address"
    if ip.is_multicast:
        return "a multicast address"
    if any(ip in net for net in RFC1918):
        return "a private address"
    if ip == BROADCAST:
        return "a broadcast address"
    if ip.is_reserved:
        return "a reserved address"
    if not ip.is_global or any(ip in net for net in SPECIAL_PURPOSE):
        return "a special-purpose (non-public) address"
    return None


def _ipv6_class(ip: ipaddress.IPv6Address) -> str | None:
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    embedded, form = _embedded_ipv4(ip)
    if embedded is not None:
        inner = address_class(embedded)
        if inner:
            return f"{inner} ({form} {embedded})"
        if form == "IPv4-compatible":
            return f"a deprecated IPv4-compatible address (embeds {embedded})"
        return None
    if ip in TEREDO:
        return "a Teredo tunnel address"
    if ip.is_link_local:
        return "a link-local address"
    if ip in SITE_LOCAL:
        return "a site-local address"
    if ip in UNIQUE_LOCAL:
        return "a private (unique local) address"
    if ip.is_multicast:
        return "a multicast address"
    if not ip.is_global or any(ip in net for net in SPECIAL_PURPOSE):
        return "a special-purpose (non-public) address"
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address):
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped, "IPv4-mapped"
    if ip in IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "IPv4-compatible"
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "NAT64 of"
    if ip.sixtofour is not None:
        return ip.sixtofour, "6to4 of"
    return None, ""


def resolve(target: Target) -> list[str]:
    """Every address the host resolves to, in the resolver's order (one lookup)."""
    try:
        infos = socket.getaddrinfo(
            target.host, target.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (socket.gaierror, UnicodeError) as exc:
        raise SystemUnavailable(
            f"could not resolve {target.host}: {getattr(exc, 'strerror', None) or exc}",
            target=target.redacted,
        ) from None
    addresses = []
    for info in infos:
        address = info[4][0]
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise SystemUnavailable(f"{target.host} resolves to no address", target=target.redacted)
    return addresses


def check_addresses(target: Target, addresses: list[str], *, internal: bool) -> None:
    """Refuse if any address is not public (internal connections: only metadata is refused)."""
    for address in addresses:
        problem = address_class(address)
        if problem is None:
            continue
        if internal and problem != "a cloud metadata address":
            continue
        if address == target.host:
            raise OutboundRefused(f"refused: {address} is {problem}")
        raise OutboundRefused(f"refused: {target.host} resolves to {address}, {problem}")


def origin_of(url: str) -> tuple[str, str, int] | None:
    try:
        return parse_target(url).origin
    except OutboundRefused:
        return None


# --- the request itself ----------------------------------------------------------------------


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


def fetch(
    method: str,
    url: str,
    *,
    connection=None,
    headers: dict | None = None,
    body: bytes | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
    authenticate: bool = True,
) -> Response:
    """Make one request under every rule of this module; see the module's docstring.

    With a `connection` whose origin is the URL's, its auth is applied and, if an admin marked
    it internal, its own non-public address may be reached."""
    method = method.upper()
    if method not in METHODS:
        raise OutboundRefused(f"refused: method {method[:20]!r} is not allowed")
    target = parse_target(url)
    own_origin = connection is not None and origin_of(connection.base_url) == target.origin
    internal = bool(own_origin and connection.allow_internal)
    deadline = time.monotonic() + timeout
    secrets = _secrets_of(connection)
    extra = _checked_headers(headers or {})
    use_auth = own_origin and authenticate
    auth, token_cached = _auth_headers(connection, deadline) if use_auth else ({}, False)
    secrets += tuple(auth.values())
    limits = {"deadline": deadline, "timeout": timeout, "connect_timeout": connect_timeout}
    response = _exchange(
        method, target, {**extra, **auth}, body, internal=internal, limits=limits,
        max_bytes=max_bytes, secrets=secrets,
    )  # fmt: skip
    if response.status == 401 and token_cached:
        # An OAuth2 token the server no longer accepts: fetch a new one, try once more.
        _forget_token(connection)
        auth, _ = _auth_headers(connection, deadline)
        secrets += tuple(auth.values())
        response = _exchange(
            method, target, {**extra, **auth}, body, internal=internal, limits=limits,
            max_bytes=max_bytes, secrets=secrets,
        )  # fmt: skip
    return response


def _exchange(method, target, headers, body, *, internal, limits, max_bytes, secrets) -> Response:
    addresses = resolve(target)
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
    logger.info("outbound %s %s -> %s in %.0f ms", method, shown, status, elapsed)
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


def _checked_headers(headers: dict) -> dict:
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


# --- connections: URLs and auth --------------------------------------------------------------


def connection_url(connection, path: str = "", query: dict | None = None) -> str:
    """The connection's base URL with `path` appended and `query` merged in.

    The result stays on the connection's origin: `path` must be empty or start with "/"
    (not "//"), so no template can send a request elsewhere."""
    base = urlsplit(connection.base_url)
    if path and (not path.startswith("/") or path.startswith("//")):
        raise OutboundRefused("refused: the path must start with a single /")
    if "#" in path:
        raise OutboundRefused("refused: the path may not contain '#'")
    extra_query = ""
    if "?" in path:
        path, extra_query = path.split("?", 1)
    full_path = base.path.rstrip("/") + path if path else (base.path or "/")
    queries = [q for q in (base.query, extra_query, urlencode(query or {}, doseq=True)) if q]
    url = f"{base.scheme}://{base.netloc}{full_path}"
    if queries:
        url += "?" + "&".join(queries)
    return url


def call(
    connection,
    method: str,
    path: str = "",
    *,
    query: dict | None = None,
    json=None,
    body: bytes | None = None,
    headers: dict | None = None,
    timeout: float | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Response:
    """A request to `path` under the connection's base URL, with its auth."""
    all_headers = dict(headers or {})
    if json is not None:
        body = jsonlib.dumps(json, ensure_ascii=False).encode("utf-8")
        all_headers.setdefault("Content-Type", "application/json")
    return fetch(
        method,
        connection_url(connection, path, query),
        connection=connection,
        headers=all_headers,
        body=body,
        timeout=timeout if timeout is not None else connection.timeout_seconds,
        connect_timeout=min(DEFAULT_CONNECT_TIMEOUT, connection.timeout_seconds),
        max_bytes=max_bytes,
    )


def check_connection(connection, *, timeout: float | None = None) -> ConnectionCheck:
    """ "Test connection": one GET (a model endpoint's /models), never raising."""
    started = time.perf_counter()
    path = "/models" if connection.kind == "model" else ""

    def result(ok, status, message):
        return ConnectionCheck(ok, status, message, (time.perf_counter() - started) * 1000)

    try:
        response = call(connection, "GET", path, timeout=timeout, max_bytes=256 * 1024)
    except SystemUnavailable as exc:
        return result(False, exc.status, exc.message)
    except OutboundError as exc:
        return result(False, None, str(exc))
    if 200 <= response.status < 300:
        return result(
            True, response.status, f"reachable: {response.url} answered {response.status}"
        )
    if response.status in (401, 403):
        return result(
            False,
            response.status,
            f"{response.url} answered {response.status}: check the credentials",
        )
    return result(False, response.status, f"{response.url} answered {response.status}")


AUTH_METHODS = ("none", "bearer", "api_key_header", "basic", "oauth2_client_credentials")


def _secrets_of(connection) -> tuple:
    if connection is None:
        return ()
    secret = connection.secret or ""
    values = [secret]
    if connection.auth_method == "basic" and secret:
        values.append(_basic(connection.username, secret).split(" ", 1)[1])
    return tuple(v for v in values if v)


def _auth_headers(connection, deadline: float) -> tuple[dict, bool]:
    """(headers, whether they hold a cached OAuth2 token)."""
    method = connection.auth_method or "none"
    secret = connection.secret or ""
    if method == "none":
        return {}, False
    if method not in AUTH_METHODS:
        raise AuthFailed(f"connection {connection.name!r}: unknown auth method {method[:40]!r}")
    if not secret:
        raise AuthFailed(f"connection {connection.name!r}: its {method} auth has no secret saved")
    if CONTROL_CHARS.search(secret) or CONTROL_CHARS.search(connection.username or ""):
        raise AuthFailed(
            f"connection {connection.name!r}: its secret or user name contains a line break "
            "or control character; save it again"
        )
    if method == "bearer":
        return {"Authorization": f"Bearer {secret}"}, False
    if method == "api_key_header":
        if not HEADER_NAME.match(connection.header_name or ""):
            raise AuthFailed(f"connection {connection.name!r}: its API key header name is invalid")
        return {connection.header_name: secret}, False
    if method == "basic":
        return {"Authorization": _basic(connection.username, secret)}, False
    token, cached = _oauth_token(connection, deadline)
    return {"Authorization": f"Bearer {token}"}, cached


def _basic(username: str, password: str) -> str:
    raw = f"{username}:{password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


_TOKENS: dict[tuple, tuple[str, float]] = {}
_TOKEN_LOCKS: dict[tuple, threading.Lock] = {}
_TOKENS_LOCK = threading.Lock()
TOKEN_EXPIRY_MARGIN = 30.0


def _token_key(connection) -> tuple:
    digest = hashlib.sha256((connection.secret or "").encode()).hexdigest()
    return (connection.id, connection.token_url, connection.username, digest)


def _forget_token(connection) -> None:
    with _TOKENS_LOCK:
        _TOKENS.pop(_token_key(connection), None)


def clear_token_cache() -> None:
    with _TOKENS_LOCK:
        _TOKENS.clear()


def _oauth_token(connection, deadline: float) -> tuple[str, bool]:
    """A client-credentials access token, from the in-process cache while it is valid."""
    key = _token_key(connection)
    with _TOKENS_LOCK:
        lock = _TOKEN_LOCKS.setdefault(key, threading.Lock())
    with lock:  # one fetch per connection at a time; others wait and reuse it
        with _TOKENS_LOCK:
            cached = _TOKENS.get(key)
        if cached and cached[1] > time.monotonic():
            return cached[0], True
        token, lifetime = _fetch_token(connection, deadline)
        expires = time.monotonic() + max(0.0, min(lifetime - TOKEN_EXPIRY_MARGIN, lifetime * 0.9))
        with _TOKENS_LOCK:
            _TOKENS[key] = (token, expires)
        return token, False


def _fetch_token(connection, deadline: float) -> tuple[str, float]:
    name = connection.name
    if not connection.token_url:
        raise AuthFailed(f"connection {name!r}: OAuth2 needs a token URL")
    # RFC 6749 2.3.1: client id and secret form-encoded, then sent as HTTP Basic.
    client = _basic(quote_plus(connection.username or ""), quote_plus(connection.secret))
    left = deadline - time.monotonic()
    if left <= 0:
        raise SystemUnavailable("the time allowed ran out before the OAuth2 token was fetched")
    response = fetch(
        "POST",
        connection.token_url,
        connection=connection,
        authenticate=False,
        headers={"Authorization": client, "Content-Type": "application/x-www-form-urlencoded"},
        body=b"grant_type=client_credentials",
        timeout=left,
        max_bytes=64 * 1024,
    )
    if response.status != 200:
        raise AuthFailed(
            f"connection {name!r}: the token endpoint {response.url} answered {response.status}"
        )
    try:
        data = response.json()
        token = data["access_token"]
        lifetime = float(data.get("expires_in", 300))
    except (ValueError, KeyError, TypeError, AttributeError):
        raise AuthFailed(
            f"connection {name!r}: the token endpoint's answer has no usable access_token"
        ) from None
    if not isinstance(token, str) or not token or CONTROL_CHARS.search(token):
        raise AuthFailed(f"connection {name!r}: the token endpoint returned an unusable token")
    return token, lifetime
