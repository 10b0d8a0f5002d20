"""Where ``http.request`` and webhooks may connect: an outbound allow/deny policy against SSRF (issue 21).

A URL a designer writes into a process or an integration registers as a webhook must not reach the server's own
neighbourhood: loopback, link-local (cloud metadata at 169.254.169.254), private, shared (CGNAT), unspecified,
multicast and reserved addresses are denied unless the operator allows them explicitly::

    SILVERFLOW_OUTBOUND_ALLOW="127.0.0.1:8080,10.0.0.0/8,erp.intern:443,[::1]:9000"

Entries are an address, a network (CIDR) or a host name, each optionally with ``:port``; a host name entry
allows that name whatever it resolves to. Public addresses are allowed unless listed in
``SILVERFLOW_OUTBOUND_DENY`` (same syntax, checked first). ``allow()`` adds entries at run time (the local
stand-ins of ``make run`` allow the loopback ports they serve).

The check resolves the host and checks *every* address, and the connection then goes to an address that was
checked (a network backend that resolves, checks and connects in one place), so a DNS answer that changes
between check and connect (rebinding) cannot slip through; redirects are not followed. Only ``http`` and
``https`` URLs are accepted. Environment proxies are not used for these calls (the proxy would be the peer).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

ALLOW_ENV = "SILVERFLOW_OUTBOUND_ALLOW"
DENY_ENV = "SILVERFLOW_OUTBOUND_DENY"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class OutboundRefused(Exception):
    """The address is not allowed for outbound calls; never worth retrying."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"outbound call to {url} is not allowed: {reason}")


@dataclass(frozen=True)
class Rule:
    network: IPNetwork | None
    host: str | None
    port: int | None

    def matches(self, host: str, address: IPAddress | None, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.host is not None:
            return host.lower().rstrip(".") == self.host
        return address is not None and self.network is not None and address in self.network


def parse_rule(entry: str) -> Rule:
    """``10.0.0.0/8``, ``127.0.0.1:8080``, ``[::1]:9000``, ``::1``, ``erp.intern:443`` or ``erp.intern``."""
    text = entry.strip()
    port: int | None = None
    if text.startswith("["):
        inner, _, rest = text[1:].partition("]")
        text = inner
        if rest.startswith(":"):
            port = int(rest[1:])
    elif text.count(":") == 1:
        text, _, port_text = text.partition(":")
        port = int(port_text)
    try:
        return Rule(ipaddress.ip_network(text, strict=False), None, port)
    except ValueError:
        if not text:
            raise ValueError(f"empty host in outbound rule '{entry}'") from None
        return Rule(None, text.lower().rstrip("."), port)


def _rules(value: str) -> list[Rule]:
    return [parse_rule(part) for part in value.split(",") if part.strip()]


_extra_allowed: list[Rule] = []
_lock = threading.Lock()


def allow(*entries: str) -> None:
    """Allow more destinations for this process (in addition to ``SILVERFLOW_OUTBOUND_ALLOW``)."""
    with _lock:
        _extra_allowed.extend(parse_rule(entry) for entry in entries)


def disallow(*entries: str) -> None:
    """Take back entries given to ``allow`` (tests, stopping local systems)."""
    rules = {parse_rule(entry) for entry in entries}
    with _lock:
        _extra_allowed[:] = [rule for rule in _extra_allowed if rule not in rules]


def _internal(address: IPAddress) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for kind, flag in (("loopback", address.is_loopback), ("link-local", address.is_link_local),
                       ("unspecified", address.is_unspecified), ("multicast", address.is_multicast),
                       ("private", address.is_private), ("reserved", address.is_reserved)):
        if flag:
            return kind
    if isinstance(address, ipaddress.IPv4Address) and address in ipaddress.ip_network("100.64.0.0/10"):
        return "shared (carrier-grade NAT)"
    if not address.is_global:
        return "non-public"
    return None


def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise httpx.ConnectError(f"cannot resolve host '{host}': {exc}") from exc
    addresses: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def checked_addresses(host: str, port: int, url: str | None = None) -> list[IPAddress]:
    """The addresses of ``host`` if every one of them is allowed, else ``OutboundRefused`` naming the first that
    is not. A host name listed in the allow list is allowed whatever it resolves to."""
    where = url or f"{host}:{port}"
    deny = _rules(os.environ.get(DENY_ENV, ""))
    with _lock:
        allowed = _rules(os.environ.get(ALLOW_ENV, "")) + list(_extra_allowed)
    addresses = _resolve(host, port)
    if not addresses:
        raise httpx.ConnectError(f"host '{host}' has no address")
    for address in addresses:
        if any(rule.matches(host, address, port) for rule in deny):
            raise OutboundRefused(where, f"{address} is on the deny list ({DENY_ENV})")
        kind = _internal(address)
        if kind and not any(rule.matches(host, address, port) for rule in allowed):
            raise OutboundRefused(where, f"{host} resolves to {address}, a {kind} address; allow it explicitly "
                                         f"with {ALLOW_ENV}=\"{_suggest(address, port)}\"")
    return addresses


def _suggest(address: IPAddress, port: int) -> str:
    return f"[{address}]:{port}" if isinstance(address, ipaddress.IPv6Address) else f"{address}:{port}"


def check_url(url: str) -> None:
    """Refuse (``OutboundRefused``) a URL that is not http(s) or whose host resolves to a denied address."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise OutboundRefused(url, "only http and https URLs are allowed")
    if not parts.hostname:
        raise OutboundRefused(url, "the URL has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise OutboundRefused(url, "the port is not a number") from None
    checked_addresses(parts.hostname, port, url)


class _CheckedBackend(httpcore.SyncBackend):
    """Resolves, checks and connects in one place, to an address that passed the check."""

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Any = None) -> httpcore.NetworkStream:
        last: Exception | None = None
        for address in checked_addresses(host, port):
            try:
                return super().connect_tcp(str(address), port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                last = exc
        raise last or httpcore.ConnectError(f"cannot connect to {host}:{port}")


def client(timeout: float) -> httpx.Client:
    """An httpx client whose connections pass the outbound policy; it does not follow redirects."""
    transport = httpx.HTTPTransport()
    transport._pool._network_backend = _CheckedBackend()  # noqa: SLF001 - httpx exposes no backend option
    return httpx.Client(transport=transport, timeout=timeout, follow_redirects=False, trust_env=False)
