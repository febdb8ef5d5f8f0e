"""Which URLs and addresses the outbound door accepts (rules 1-3 and 7 of the package)."""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from agents.engine.taxonomy import SystemUnavailable
from agents.outbound.errors import OutboundRefused

SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_URL_LENGTH = 8192

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


def resolve(target: Target, deadline: float | None = None) -> list[str]:
    """Every address the host resolves to, in the resolver's order (one lookup).

    getaddrinfo has no timeout of its own (a slow DNS server can hold it for tens of
    seconds), so with a `deadline` the lookup runs in a daemon thread we stop waiting for."""
    result: dict = {}

    def lookup():
        try:
            result["infos"] = socket.getaddrinfo(
                target.host, target.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
        except (OSError, UnicodeError) as exc:
            result["error"] = exc

    if deadline is None:
        lookup()
    else:
        thread = threading.Thread(target=lookup, name="steward-dns", daemon=True)
        thread.start()
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            raise SystemUnavailable(
                f"resolving {target.host} took longer than the time allowed",
                target=target.redacted,
            )
    if "error" in result:
        exc = result["error"]
        raise SystemUnavailable(
            f"could not resolve {target.host}: {getattr(exc, 'strerror', None) or exc}",
            target=target.redacted,
        )
    infos = result["infos"]
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
