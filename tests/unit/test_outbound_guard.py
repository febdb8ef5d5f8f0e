"""The outbound door (agents.outbound): the SSRF corpus and the door's other rules.

Every refused URL is asserted twice: `OutboundRefused` is raised, and the counting loopback
service received no request at all. The only servers reachable here are on loopback, so the
allowed path is tested through connections an admin marked internal.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import threading
import time

import pytest

from agents import outbound
from agents.engine.taxonomy import SystemUnavailable
from agents.kinds.base import ConnectionSpec
from agents.outbound import AuthFailed, OutboundRefused, ResponseTooLarge
from tests.support.http_service import Reply, http_service_fixture, make_service_fixture  # noqa: F401

SECRET = "sk-live-7f3a9c0e-very-secret"

# (url, what the refusal must say); {port} is the counting service's port.
CORPUS = [
    # loopback, in every spelling
    ("http://127.0.0.1:{port}/", "127.0.0.1 is a loopback address"),
    ("http://127.0.0.1:{port}/admin?x=1", "loopback"),
    ("https://127.0.0.1:{port}/", "loopback"),
    ("http://127.0.0.2:{port}/", "loopback"),
    ("http://127.255.255.254:{port}/", "loopback"),
    ("http://127.0.0.1.:{port}/", "loopback"),
    ("http://127.1:{port}/", "not a canonical dotted quad"),
    ("http://127.0.1:{port}/", "not a canonical dotted quad"),
    ("http://2130706433:{port}/", "not a canonical dotted quad"),
    ("http://0x7f000001:{port}/", "not a canonical dotted quad"),
    ("http://0x7F.0x0.0x0.0x1:{port}/", "not a canonical dotted quad"),
    ("http://0177.0.0.1:{port}/", "not a canonical dotted quad"),
    ("http://0177.0000.0000.0001:{port}/", "not a canonical dotted quad"),
    ("http://017700000001:{port}/", "not a canonical dotted quad"),
    ("http://127.000.000.001:{port}/", "not a canonical dotted quad"),
    ("http://1.2.3.4.5:{port}/", "not a canonical dotted quad"),
    ("http://0:{port}/", "not a canonical dotted quad"),
    ("http://0.0.0.0:{port}/", "unspecified"),
    ("http://\uff11\uff12\uff17.\uff10.\uff10.\uff11:{port}/", "loopback"),  # full-width digits
    ("http://127\u30020\u30020\u30021:{port}/", "loopback"),  # ideographic full stops
    ("http://localhost:{port}/", "localhost resolves to 127.0.0.1, a loopback address"),
    ("http://LOCALHOST:{port}/", "loopback"),
    ("http://LocalHost.:{port}/", "loopback"),
    ("http://[::1]:{port}/", "::1 is a loopback address"),
    ("http://[0:0:0:0:0:0:0:1]:{port}/", "loopback"),
    ("http://[::]:{port}/", "unspecified"),
    ("http://[::ffff:127.0.0.1]:{port}/", "IPv4-mapped 127.0.0.1"),
    ("http://[::ffff:7f00:1]:{port}/", "IPv4-mapped 127.0.0.1"),
    ("http://[0:0:0:0:0:ffff:127.0.0.1]:{port}/", "IPv4-mapped 127.0.0.1"),
    ("http://[::ffff:0.0.0.0]:{port}/", "unspecified"),
    ("http://[::127.0.0.1]:{port}/", "IPv4-compatible 127.0.0.1"),
    ("http://[2002:7f00:1::]:{port}/", "6to4 of 127.0.0.1"),
    ("http://[64:ff9b::127.0.0.1]:{port}/", "NAT64 of 127.0.0.1"),
    # private, shared, link-local
    ("http://10.0.0.1:{port}/", "10.0.0.1 is a private address"),
    ("http://10.255.255.254:{port}/", "private"),
    ("http://172.16.0.1:{port}/", "private"),
    ("http://172.31.255.254:{port}/", "private"),
    ("http://192.168.0.1:{port}/", "private"),
    ("http://192.168.255.254:{port}/", "private"),
    ("http://100.64.0.1:{port}/", "shared (CGNAT)"),
    ("http://100.127.255.254:{port}/", "shared (CGNAT)"),
    ("http://169.254.0.1:{port}/", "link-local"),
    ("http://[fe80::1]:{port}/", "link-local"),
    ("http://[fc00::1]:{port}/", "unique local"),
    ("http://[fd12:3456:789a::1]:{port}/", "unique local"),
    ("http://[fec0::1]:{port}/", "site-local"),
    ("http://[::ffff:10.0.0.1]:{port}/", "IPv4-mapped 10.0.0.1"),
    ("http://[::ffff:192.168.1.1]:{port}/", "private"),
    # cloud metadata
    ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
    ("http://169.254.169.254:{port}/computeMetadata/v1/", "cloud metadata"),
    ("http://169.254.170.2/v2/credentials", "cloud metadata"),
    ("http://100.100.100.200/latest/meta-data/", "cloud metadata"),
    ("http://[fd00:ec2::254]/latest/meta-data/", "cloud metadata"),
    ("http://168.63.129.16/machine?comp=goalstate", "cloud metadata"),
    ("http://[::ffff:169.254.169.254]/", "cloud metadata"),
    ("http://[::ffff:a9fe:a9fe]/", "cloud metadata"),
    ("http://[64:ff9b::a9fe:a9fe]/", "cloud metadata"),
    ("http://[2002:a9fe:a9fe::]/", "cloud metadata"),
    ("http://2852039166/", "not a canonical dotted quad"),  # 169.254.169.254 as a number
    # multicast, broadcast, reserved, special purpose
    ("http://224.0.0.1:{port}/", "multicast"),
    ("http://239.255.255.250:{port}/", "multicast"),
    ("http://[ff02::1]:{port}/", "multicast"),
    ("http://255.255.255.255:{port}/", "broadcast"),
    ("http://240.0.0.1:{port}/", "reserved"),
    ("http://0.1.2.3:{port}/", "'this network'"),
    ("http://192.0.2.1:{port}/", "special-purpose"),
    ("http://198.18.0.1:{port}/", "special-purpose"),
    ("http://192.0.0.8:{port}/", "special-purpose"),
    ("http://[2001:db8::1]:{port}/", "special-purpose"),
    ("http://[64:ff9b:1::1]:{port}/", "special-purpose"),
    ("http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]:{port}/", "Teredo"),
    # schemes
    ("ftp://127.0.0.1:{port}/", "scheme 'ftp' is not allowed"),
    ("file:///etc/passwd", "scheme 'file' is not allowed"),
    ("gopher://127.0.0.1:{port}/_GET%20/", "scheme 'gopher'"),
    ("dict://127.0.0.1:{port}/info", "scheme 'dict'"),
    ("ws://127.0.0.1:{port}/", "scheme 'ws'"),
    ("data:text/plain,hello", "scheme 'data'"),
    ("javascript:alert(1)", "scheme 'javascript'"),
    ("//127.0.0.1:{port}/", "scheme none"),
    ("http:///127.0.0.1:{port}/", "no host"),
    # ports
    ("http://example.com:22/", "port 22 is not allowed"),
    ("http://example.com:25/", "port 25 is not allowed"),
    ("http://example.com:0/", "port 0 is not allowed"),
    ("http://example.com:65536/", "not a number from 1 to 65535"),
    ("http://example.com:-1/", "not a number from 1 to 65535"),
    ("http://example.com:http/", "not a number from 1 to 65535"),
    # parser tricks
    ("http://example.com@127.0.0.1:{port}/", "credentials in the URL"),
    ("http://user:pass@127.0.0.1:{port}/", "credentials in the URL"),
    ("http://127.0.0.1:{port}\\@example.com/", "backslashes"),
    ("http://127.0.0.1:{port}#@example.com/", "loopback"),
    ("http://127.0.0.1:{port}?@example.com/", "loopback"),
    ("http://127.0.0.1:{port} /", "whitespace"),
    ("http://127.0.0.1:{port}/\r\nHost: example.com", "control characters"),
    ("http://example.com/\x00", "control characters"),
    ("http://[::1%25lo]:{port}/", "zone identifiers"),
    ("http://[::1:{port}/", "malformed"),
    ("http://[not-an-address]:{port}/", "malformed"),
    ("http://exa$mple.com/", "not a valid host name"),
    ("http://example.com/a/../admin", "'.' or '..' segment"),
    ("http://example.com/a/%2e%2e/admin", "'.' or '..' segment"),
]


@pytest.fixture(autouse=True)
def _fresh_token_cache():
    outbound.clear_token_cache()
    yield
    outbound.clear_token_cache()


def internal(service, **kwargs) -> ConnectionSpec:
    fields = {
        "id": "c1",
        "name": "Internal CRM",
        "kind": "http",
        "base_url": service.url,
        "allow_internal": True,
        "timeout_seconds": 0.5,
        **kwargs,
    }
    return ConnectionSpec(**fields)


def test_the_corpus_is_large():
    assert len(CORPUS) >= 90


@pytest.mark.parametrize(("url", "reason"), CORPUS, ids=[u for u, _ in CORPUS])
def test_corpus_url_is_refused_and_nothing_reaches_the_server(http_service, url, reason):
    http_service.route("GET", "/", Reply(json={"ok": True}))
    target = url.format(port=http_service.port)
    with pytest.raises(OutboundRefused) as refused:
        outbound.fetch("GET", target, timeout=0.5)
    assert reason in str(refused.value)
    assert str(refused.value).startswith("refused: ")
    assert http_service.count == 0


@pytest.mark.parametrize(("url", "reason"), CORPUS, ids=[u for u, _ in CORPUS])
def test_corpus_url_is_refused_by_a_connection_not_marked_internal(http_service, url, reason):
    connection = internal(http_service, allow_internal=False, base_url=http_service.url)
    target = url.format(port=http_service.port)
    with pytest.raises(OutboundRefused):
        outbound.fetch("GET", target, connection=connection, timeout=0.5)
    assert http_service.count == 0


def test_an_internal_connection_reaches_its_own_host_and_port(http_service):
    http_service.route("GET", "/health", Reply(json={"status": "up"}))
    response = outbound.call(internal(http_service), "GET", "/health")
    assert response.status == 200
    assert response.json() == {"status": "up"}
    assert http_service.count == 1
    assert http_service.requests[0].headers["host"] == f"127.0.0.1:{http_service.port}"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{other}/",  # another loopback port
        "http://localhost:{port}/",  # its own port under another name
        "http://[::1]:{port}/",
        "http://127.0.0.2:{port}/",
        "https://127.0.0.1:{port}/",  # another scheme
        "http://127.1:{port}/",
        "http://2130706433:{port}/",
        "http://[::ffff:127.0.0.1]:{port}/",
    ],
)
def test_an_internal_connection_reaches_nothing_but_its_own_origin(make_service, url):
    own, other = make_service(), make_service()
    connection = internal(own)
    with pytest.raises(OutboundRefused):
        outbound.fetch(
            "GET", url.format(port=own.port, other=other.port), connection=connection, timeout=0.5
        )
    assert own.count == 0
    assert other.count == 0


def test_a_redirect_from_an_internal_connection_to_another_loopback_port_is_refused(
    make_service,
):
    own, other = make_service(), make_service()
    other.route("GET", "/secret", Reply(json={"secret": True}))
    own.route("GET", "/go", Reply(status=302, headers={"Location": f"{other.url}/secret"}))
    with pytest.raises(OutboundRefused) as refused:
        outbound.call(internal(own), "GET", "/go")
    assert "follows no redirects" in str(refused.value)
    assert f"127.0.0.1:{other.port}/secret" in str(refused.value)
    assert own.count == 1
    assert other.count == 0


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_no_redirect_is_followed_even_to_the_same_origin(http_service, status):
    http_service.route("GET", "/old", Reply(status=status, headers={"Location": "/new?token=x"}))
    http_service.route("GET", "/new", Reply(json={"ok": True}))
    with pytest.raises(OutboundRefused) as refused:
        outbound.call(internal(http_service), "GET", "/old")
    assert f"answered {status}" in str(refused.value)
    assert "token" not in str(refused.value)  # the location is shown without its query
    assert [r.path for r in http_service.requests] == ["/old"]


def test_an_internal_connection_still_may_not_reach_cloud_metadata():
    connection = ConnectionSpec(
        id="m", name="meta", kind="http", base_url="http://169.254.169.254", allow_internal=True
    )
    with pytest.raises(OutboundRefused, match="cloud metadata"):
        outbound.call(connection, "GET", "/latest/meta-data/")


def test_the_address_is_resolved_once_and_pinned(http_service, monkeypatch):
    """DNS rebinding: a second lookup would get a different answer; there must be none."""
    http_service.route("GET", "/data", Reply(json={"n": 1}))
    real = socket.getaddrinfo
    lookups = []

    def resolver(host, *args, **kwargs):
        if host == "crm.internal.test":
            lookups.append(host)
            address = "127.0.0.1" if len(lookups) == 1 else "192.0.2.1"
            return real(address, *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    connection = internal(http_service, base_url=f"http://crm.internal.test:{http_service.port}")
    response = outbound.call(connection, "GET", "/data")
    assert response.json() == {"n": 1}
    assert lookups == ["crm.internal.test"]
    assert http_service.requests[0].headers["host"] == f"crm.internal.test:{http_service.port}"


def test_a_host_refused_if_any_of_its_addresses_is_not_public(http_service, monkeypatch):
    real = socket.getaddrinfo

    def resolver(host, port, *args, **kwargs):
        if host == "mixed.example":
            return real("8.8.8.8", port, *args, **kwargs) + real("127.0.0.1", port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    with pytest.raises(OutboundRefused, match=r"mixed\.example resolves to 127\.0\.0\.1"):
        outbound.fetch("GET", f"http://mixed.example:{http_service.port}/", timeout=0.5)
    assert http_service.count == 0


def test_a_slow_dns_lookup_is_bounded_by_the_deadline(monkeypatch):
    real = socket.getaddrinfo
    release = threading.Event()

    def resolver(host, *args, **kwargs):
        if host == "slow-dns.example":
            release.wait(5)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    started = time.monotonic()
    try:
        with pytest.raises(SystemUnavailable, match=r"resolving slow-dns\.example took longer"):
            outbound.fetch("GET", "http://slow-dns.example/", timeout=0.3)
    finally:
        release.set()
    assert time.monotonic() - started < 1.0


def test_a_host_that_does_not_resolve_is_system_unavailable():
    with pytest.raises(SystemUnavailable, match="could not resolve"):
        outbound.fetch("GET", "http://no-such-host.invalid/", timeout=0.5)


# --- limits ----------------------------------------------------------------------------------


def test_a_response_past_the_size_cap_is_refused_naming_the_cap(http_service):
    http_service.route("GET", "/big", Reply(body=b"x" * (2 * 1024 * 1024 + 1)))
    with pytest.raises(ResponseTooLarge, match="larger than the 2 MiB cap"):
        outbound.call(internal(http_service), "GET", "/big")


def test_the_size_cap_holds_without_a_content_length(http_service):
    http_service.route("GET", "/stream", Reply(body=b"y" * 5000, chunked=True, chunk_size=1000))
    with pytest.raises(ResponseTooLarge, match="larger than the 4 KiB cap"):
        outbound.call(internal(http_service), "GET", "/stream", max_bytes=4096)
    response = outbound.call(internal(http_service), "GET", "/stream", max_bytes=5000)
    assert len(response.body) == 5000


def test_a_server_slow_to_answer_times_out_as_system_unavailable(http_service):
    http_service.route("GET", "/slow", Reply(delay=3.0, json={}))
    started = time.monotonic()
    with pytest.raises(SystemUnavailable) as unavailable:
        outbound.call(internal(http_service), "GET", "/slow")
    assert time.monotonic() - started < 1.5
    assert "did not answer within the 0.5 s allowed" in unavailable.value.message
    assert unavailable.value.target == f"{http_service.url}/slow"


def test_a_server_dripping_its_body_is_stopped_at_the_total_deadline(http_service):
    # each byte comes well within any per-read timeout; the whole would take 4 s
    http_service.route("GET", "/drip", Reply(body=b"z" * 20, chunk_size=1, drip=0.2))
    started = time.monotonic()
    with pytest.raises(SystemUnavailable):
        outbound.call(internal(http_service), "GET", "/drip")
    assert time.monotonic() - started < 1.5


def test_a_closed_port_is_system_unavailable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    connection = ConnectionSpec(
        id="c", name="closed", kind="http", base_url=f"http://127.0.0.1:{port}", allow_internal=True
    )
    with pytest.raises(SystemUnavailable, match="connection refused"):
        outbound.call(connection, "GET", "/")


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429, 408])
def test_5xx_429_and_408_are_system_unavailable_with_the_status(http_service, status):
    http_service.route("GET", "/x", Reply(status=status, json={"error": "busy"}))
    with pytest.raises(SystemUnavailable) as unavailable:
        outbound.call(internal(http_service), "GET", "/x")
    assert unavailable.value.status == status
    assert unavailable.value.context()["status"] == status


def test_a_4xx_is_returned_to_the_caller(http_service):
    http_service.route("GET", "/x", Reply(status=404, json={"error": "no such customer"}))
    response = outbound.call(internal(http_service), "GET", "/x")
    assert response.status == 404


def test_the_path_cannot_leave_the_connections_origin(http_service):
    connection = internal(http_service)
    for path in ["//example.com/x", "http://example.com/", "x", "/a#frag"]:
        with pytest.raises(OutboundRefused):
            outbound.call(connection, "GET", path)
    assert http_service.count == 0


def test_the_base_urls_path_and_query_are_kept(http_service):
    http_service.route("GET", "/api/v2/items", Reply(json=[]))
    connection = internal(http_service, base_url=f"{http_service.url}/api/v2/?api-version=7")
    outbound.call(connection, "GET", "/items", query={"q": "a b&c"})
    request = http_service.requests[0]
    assert request.path == "/api/v2/items"
    assert request.query == {"api-version": "7", "q": "a b&c"}


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory):
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return str(cert), str(key)


def test_tls_certificates_are_verified(make_service, self_signed):
    service = make_service(tls=self_signed)
    service.route("GET", "/", Reply(json={}))
    with pytest.raises(
        OutboundRefused, match=r"TLS certificate of 127\.0\.0\.1 could not be verified"
    ):
        outbound.call(internal(service), "GET", "/")
    assert service.count == 0


# --- auth and secrets ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("auth", "header", "expected"),
    [
        ({"auth_method": "bearer"}, "authorization", f"Bearer {SECRET}"),
        (
            {"auth_method": "api_key_header", "header_name": "X-Api-Key"},
            "x-api-key",
            SECRET,
        ),
        (
            {"auth_method": "basic", "username": "steward"},
            "authorization",
            "Basic " + __import__("base64").b64encode(f"steward:{SECRET}".encode()).decode(),
        ),
    ],
)
def test_the_connections_auth_is_sent(http_service, auth, header, expected):
    http_service.route("GET", "/me", Reply(json={}))
    outbound.call(internal(http_service, secret=SECRET, **auth), "GET", "/me")
    assert http_service.requests[0].headers[header] == expected


def test_no_auth_sends_no_credentials(http_service):
    http_service.route("GET", "/me", Reply(json={}))
    outbound.call(internal(http_service), "GET", "/me")
    assert "authorization" not in http_service.requests[0].headers


def _token_route(service, *, expires_in=3600):
    issued = []

    def issue(request):
        issued.append(request)
        return Reply(json={"access_token": f"tok-1-{len(issued)}", "expires_in": expires_in})

    service.route("POST", "/oauth/token", issue)
    return issued


def oauth(service, **kwargs) -> ConnectionSpec:
    return internal(
        service,
        auth_method="oauth2_client_credentials",
        username="client-7",
        secret=SECRET,
        token_url=f"{service.url}/oauth/token",
        **kwargs,
    )


def test_oauth2_client_credentials_token_is_fetched_once_and_cached(http_service):
    issued = _token_route(http_service)
    http_service.route("GET", "/me", Reply(json={}))
    connection = oauth(http_service)
    outbound.call(connection, "GET", "/me")
    outbound.call(connection, "GET", "/me")
    assert len(issued) == 1
    token_request = issued[0]
    assert token_request.body == b"grant_type=client_credentials"
    assert token_request.headers["authorization"].startswith("Basic ")
    api_calls = [r for r in http_service.requests if r.path == "/me"]
    assert [r.headers["authorization"] for r in api_calls] == ["Bearer tok-1-1"] * 2


def test_an_expired_oauth2_token_is_fetched_again(http_service):
    issued = _token_route(http_service, expires_in=0)
    http_service.route("GET", "/me", Reply(json={}))
    connection = oauth(http_service)
    outbound.call(connection, "GET", "/me")
    outbound.call(connection, "GET", "/me")
    assert len(issued) == 2


def test_a_rejected_oauth2_token_is_replaced_once(http_service):
    issued = _token_route(http_service)

    def api(request):
        ok = request.headers.get("authorization") == "Bearer tok-1-2"
        return Reply(json={}) if ok else Reply(status=401, json={"error": "expired"})

    http_service.route("GET", "/me", api)
    connection = oauth(http_service)
    first = outbound.call(connection, "GET", "/me")  # a fresh tok-1-1, refused: no retry
    assert (first.status, len(issued)) == (401, 1)
    response = outbound.call(connection, "GET", "/me")  # cached tok-1-1 -> 401 -> tok-1-2
    assert response.status == 200
    assert len(issued) == 2


def test_rejected_client_credentials_raise_auth_failed_without_the_secret(http_service):
    http_service.route("POST", "/oauth/token", Reply(status=401, json={"error": SECRET}))
    with pytest.raises(AuthFailed) as failed:
        outbound.call(oauth(http_service), "GET", "/me")
    assert "answered 401" in str(failed.value)
    assert SECRET not in str(failed.value)


def _echo_headers(request):
    return Reply(status=int(request.query.get("status", 200)), json={"headers": request.headers})


def test_secrets_never_appear_in_errors_logs_or_reprs(http_service, caplog):
    caplog.set_level(logging.DEBUG)
    http_service.route("GET", "/echo", _echo_headers)
    connection = internal(http_service, auth_method="bearer", secret=SECRET)
    assert SECRET not in repr(connection)

    response = outbound.call(connection, "GET", "/echo", query={"status": "400"})
    assert SECRET in response.body.decode()  # the server really echoed it...
    assert SECRET not in response.text()  # ...and excerpts are scrubbed
    assert SECRET not in repr(response)

    with pytest.raises(SystemUnavailable) as unavailable:
        outbound.call(connection, "GET", "/echo", query={"status": "503"})
    assert SECRET not in str(unavailable.value.context())

    for broken in (
        internal(http_service, auth_method="bearer", secret=SECRET + "\r\nX-Evil: 1"),
        internal(http_service, auth_method="basic", username="u\n", secret=SECRET),
    ):
        with pytest.raises(AuthFailed) as failed:
            outbound.call(broken, "GET", "/echo")
        assert SECRET not in str(failed.value)
    assert http_service.count == 2
    assert SECRET not in caplog.text


def test_an_oauth2_token_echoed_back_is_scrubbed_from_excerpts(http_service):
    _token_route(http_service)
    http_service.route("GET", "/echo", _echo_headers)
    response = outbound.call(oauth(http_service), "GET", "/echo")
    assert "tok-1-1" in response.body.decode()
    assert "tok-1-1" not in response.text()


def test_an_auth_header_is_not_sent_to_another_origin(make_service):
    own, other = make_service(), make_service()
    other.route("GET", "/", Reply(json={}))
    connection = internal(own, auth_method="bearer", secret=SECRET)
    with pytest.raises(OutboundRefused):
        outbound.fetch("GET", f"{other.url}/", connection=connection, timeout=0.5)
    assert other.count == 0


def test_check_connection_reports_without_raising(http_service):
    http_service.route("GET", "/", Reply(json={"ok": True}))
    ok = outbound.check_connection(internal(http_service))
    assert ok.ok
    assert ok.status == 200

    refused = outbound.check_connection(internal(http_service, allow_internal=False))
    assert not refused.ok
    assert "loopback" in refused.message

    malformed = outbound.check_connection(internal(http_service, base_url="http://[::1"))
    assert not malformed.ok
    assert "malformed" in malformed.message

    http_service.route("GET", "/v1/models", Reply(status=401, json={}))
    model = internal(http_service, kind="model", base_url=f"{http_service.url}/v1")
    denied = outbound.check_connection(model)
    assert (denied.ok, denied.status) == (False, 401)
    assert "credentials" in denied.message
