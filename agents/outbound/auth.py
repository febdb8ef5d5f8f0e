"""A connection's credentials as request headers; OAuth2 client-credentials tokens cached."""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from urllib.parse import quote_plus

from agents.engine.taxonomy import SystemUnavailable
from agents.outbound.errors import AuthFailed
from agents.outbound.rules import CONTROL_CHARS, HEADER_NAME, origin_of, parse_target
from agents.outbound.transport import DEFAULT_CONNECT_TIMEOUT, exchange

AUTH_METHODS = ("none", "bearer", "api_key_header", "basic", "oauth2_client_credentials")


def secrets_of(connection) -> tuple:
    if connection is None:
        return ()
    secret = connection.secret or ""
    values = [secret]
    if connection.auth_method == "basic" and secret:
        values.append(_basic(connection.username, secret).split(" ", 1)[1])
    return tuple(v for v in values if v)


def auth_headers(connection, deadline: float) -> tuple[dict, bool]:
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


def forget_token(connection) -> None:
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
    target = parse_target(connection.token_url)
    # Like any request of the connection: internal only at the connection's own origin.
    internal = connection.allow_internal and origin_of(connection.base_url) == target.origin
    headers = {"Authorization": client, "Content-Type": "application/x-www-form-urlencoded"}
    response = exchange(
        "POST",
        target,
        headers,
        b"grant_type=client_credentials",
        internal=internal,
        limits={
            "deadline": deadline,
            "timeout": left,
            "connect_timeout": min(DEFAULT_CONNECT_TIMEOUT, left),
        },
        max_bytes=64 * 1024,
        secrets=secrets_of(connection),
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
