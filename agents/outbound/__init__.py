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

import json as jsonlib
import time
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from agents.engine.taxonomy import SystemUnavailable
from agents.outbound.auth import AUTH_METHODS, auth_headers, clear_token_cache, forget_token
from agents.outbound.auth import secrets_of as _secrets_of
from agents.outbound.errors import (
    AuthFailed,
    OutboundError,
    OutboundRefused,
    ResponseTooLarge,
    scrub,
)
from agents.outbound.rules import (
    CONTROL_CHARS,
    HEADER_NAME,
    Target,
    address_class,
    origin_of,
    parse_target,
    port_allowed,
)
from agents.outbound.transport import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_BYTES,
    DEFAULT_TIMEOUT,
    METHODS,
    Response,
    checked_headers,
    exchange,
)

__all__ = [
    "AUTH_METHODS",
    "CONTROL_CHARS",
    "HEADER_NAME",
    "AuthFailed",
    "ConnectionCheck",
    "OutboundError",
    "OutboundRefused",
    "Response",
    "ResponseTooLarge",
    "Target",
    "address_class",
    "call",
    "check_connection",
    "clear_token_cache",
    "connection_url",
    "fetch",
    "parse_target",
    "port_allowed",
    "scrub",
]


@dataclass(frozen=True)
class ConnectionCheck:
    ok: bool
    status: int | None
    message: str
    latency_ms: float


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
) -> Response:
    """Make one request under every rule of this package; see its docstring.

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
    extra = checked_headers(headers or {})
    auth, token_cached = auth_headers(connection, deadline) if own_origin else ({}, False)
    secrets += _values_of(auth)
    limits = {"deadline": deadline, "timeout": timeout, "connect_timeout": connect_timeout}
    response = exchange(
        method, target, {**extra, **auth}, body, internal=internal, limits=limits,
        max_bytes=max_bytes, secrets=secrets,
    )  # fmt: skip
    if response.status == 401 and token_cached:
        # An OAuth2 token the server no longer accepts: fetch a new one, try once more.
        forget_token(connection)
        auth, _ = auth_headers(connection, deadline)
        secrets += _values_of(auth)
        response = exchange(
            method, target, {**extra, **auth}, body, internal=internal, limits=limits,
            max_bytes=max_bytes, secrets=secrets,
        )  # fmt: skip
    return response


def _values_of(auth: dict) -> tuple:
    """Header values to scrub from excerpts, with their credentials alone ("Bearer x" -> x)."""
    values = []
    for value in auth.values():
        values += [value, value.split(" ", 1)[-1]]
    return tuple(values)


def connection_url(connection, path: str = "", query: dict | None = None) -> str:
    """The connection's base URL with `path` appended and `query` merged in.

    The result stays on the connection's origin: `path` must be empty or start with "/"
    (not "//"), so no template can send a request elsewhere."""
    try:
        base = urlsplit(connection.base_url)
    except ValueError:
        raise OutboundRefused("refused: the connection's base URL is malformed") from None
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
    """The "test connection" button: one GET (a model endpoint's /models), never raising."""
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
