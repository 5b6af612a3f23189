"""Which addresses the service may call: the one URL policy of engines and webhooks (SSRF).

- `parse(url)`: the syntax every outbound URL must have: http or https, a host, no
  userinfo, no query, no fragment (a `?` would turn the engine client's fixed paths into a
  query string), and an IP address only in its usual spelling (never 2130706433, 0x7f.1,
  0177.0.0.1 or 127.1, which resolvers read as 127.0.0.1).
- `Guard`: every address a host resolves to must be public: not loopback, private,
  link-local, unspecified, multicast or reserved, with IPv4 inside IPv6 (mapped, 6to4,
  NAT64) unwrapped first, unless it lies in a network the platform allows
  (OUTBOUND_ALLOWED_NETWORKS). It is applied when a URL is set (`check`) and again on every
  connection (`GuardedAdapter`), which connects to the very address it checked: a DNS answer
  that changes between the check and the call (rebinding) reaches nothing.
- `matches(target, patterns)`: whether a URL names one of the engines the platform allows.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from provisioner.security.hostnames import is_hostname

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
DEFAULT_PORTS = {"http": 80, "https": 443}
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UrlRefused(ValueError):
    """A URL the policy does not accept (422, naming `field`)."""

    def __init__(self, message: str, field: str = "url") -> None:
        super().__init__(message)
        self.message, self.field = message, field


class DestinationRefused(Exception):
    """At call time: the host resolved to an address this service may not call."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # lowercase; an IPv6 address without brackets
    port: int

    @property
    def explicit_port(self) -> bool:
        return self.port != DEFAULT_PORTS[self.scheme]


def parse(url: str, field: str = "url") -> Target:
    """The URL's scheme, host and port if its syntax is acceptable (UrlRefused otherwise)."""
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise UrlRefused("the URL must not hold spaces or control characters", field)
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS:
        raise UrlRefused("the URL must start with http:// or https://", field)
    if "@" in parts.netloc:
        raise UrlRefused("the URL must not carry a user name or password", field)
    if "?" in url or "#" in url:
        raise UrlRefused("the URL must not have a query (?…) or a fragment (#…)", field)
    host = (parts.hostname or "").lower()
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise UrlRefused("the URL's port is not a number from 1 to 65535", field) from None
    _check_host(host, field)
    return Target(parts.scheme, host, port)


def _check_host(host: str, field: str) -> None:
    if not host:
        raise UrlRefused("the URL has no host", field)
    if ":" in host:  # IPv6, from between brackets
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise UrlRefused("the URL's IPv6 address is not valid", field) from None
        return
    last = host.rsplit(".", 1)[-1]
    if last.isdigit() or last.startswith("0x"):  # no top-level domain is numeric
        try:
            ipaddress.IPv4Address(host)  # four decimal parts, no leading zeros
        except ValueError:
            raise UrlRefused(
                "write an IP address as four decimal numbers (like 192.0.2.10)", field
            ) from None
        return
    if not is_hostname(host):
        raise UrlRefused("the URL's host is not a valid host name", field)


def matches(target: Target, patterns: tuple[str, ...]) -> bool:
    """Whether `target` is one of `patterns`: `host`, `host:port`, `*.domain[:port]`,
    `[ipv6]:port`. A pattern without a port matches only the scheme's default port."""
    for pattern in patterns:
        host, port = _split(pattern.lower())
        if (port or DEFAULT_PORTS[target.scheme]) != target.port:
            continue
        if host.startswith("*."):
            if target.host.endswith(host[1:]):
                return True
        elif target.host == host:
            return True
    return False


def _split(pattern: str) -> tuple[str, int | None]:
    if pattern.startswith("["):
        host, _, rest = pattern[1:].partition("]")
        port = rest.removeprefix(":")
    else:
        host, _, port = pattern.partition(":")
    return host, int(port) if port.isdigit() else None


def networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def guard(config: Mapping[str, Any]) -> Guard:
    """The configured guard: public addresses and OUTBOUND_ALLOWED_NETWORKS."""
    return Guard(networks(tuple(config["OUTBOUND_ALLOWED_NETWORKS"])))


@dataclass(frozen=True)
class Guard:
    """Which resolved addresses outbound calls may reach: public ones and `allowed`."""

    allowed: tuple[Network, ...] = ()

    def permits(self, address: IPAddress) -> bool:
        address = _unwrapped(address)
        if any(address in net for net in self.allowed if net.version == address.version):
            return True
        return address.is_global and not address.is_multicast

    def addresses(self, host: str, port: int) -> list[str]:
        """The addresses `host` resolves to, all of them permitted (DestinationRefused
        otherwise). A name that does not resolve is left to the connection to report."""
        try:
            found = _resolve(host, port)
        except (socket.gaierror, UnicodeError):
            return [host]
        self._refuse_any(host, found)
        return found

    def check(self, target: Target, field: str = "url") -> None:
        """At set time: the URL's host must resolve, and only to permitted addresses."""
        try:
            self._refuse_any(target.host, _resolve(target.host, target.port))
        except (socket.gaierror, UnicodeError):
            raise UrlRefused(f"the host {target.host} does not resolve", field) from None
        except DestinationRefused as exc:
            raise UrlRefused(str(exc), field) from None

    def _refuse_any(self, host: str, addresses: list[str]) -> None:
        for address in addresses:
            if not self.permits(ipaddress.ip_address(address)):
                named = address if address == host else f"{host} resolves to {address}, which"
                raise DestinationRefused(
                    f"{named} is an address this service may not call "
                    "(not public, and not in OUTBOUND_ALLOWED_NETWORKS)"
                )


def _resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]).split("%", 1)[0] for info in infos))


def _unwrapped(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, NAT64), else the address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


class _Pinned:
    """A urllib3 connection that connects only to addresses its guard permits, and to the
    exact address it checked (the Host header and TLS name stay the URL's host)."""

    guard: Guard
    _dns_host: str
    port: int

    def _new_conn(self) -> socket.socket:
        host = self._dns_host
        last: Exception | None = None
        for address in self.guard.addresses(host, self.port):
            self._dns_host = address
            try:
                return super()._new_conn()  # type: ignore[misc]
            except (NewConnectionError, ConnectTimeoutError) as exc:
                last = exc
            finally:
                self._dns_host = host
        raise last or NewConnectionError(self, f"no address for {host}")  # type: ignore[arg-type]


class GuardedAdapter(HTTPAdapter):
    """A requests adapter whose every connection goes through `guard` (mount it for http://
    and https://, on a session with trust_env off so that no proxy setting bypasses it)."""

    def __init__(self, guard: Guard, **kwargs: Any) -> None:
        self.guard = guard
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        attrs = {"guard": self.guard}
        http = type("GuardedHTTPConnection", (_Pinned, HTTPConnection), attrs)
        https = type("GuardedHTTPSConnection", (_Pinned, HTTPSConnection), attrs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("GuardedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http}),
            "https": type("GuardedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https}),
        }
