"""The SSRF guard: which addresses may be fetched, checked where the socket is made (no Beam import).

Input: an IP address (``refusal``), or a host and port to connect to
(``open_connection``, used by the urllib3 connection classes of
transforms/deadline.py). Output: None / a socket to an allowed address, or
``AddressRefused`` (the client's ``private_address`` failure) with a detail.

Why at connect time: a guard that resolves the name itself while the HTTP library
resolves it again to connect is a DNS-rebinding hole (the first answer public, the
second 127.0.0.1). Here the one lookup whose answers are connected to is the one
that is checked; the connected peer (``getpeername``) is checked again before a
byte is sent. Pooled keep-alive connections were checked when they were made.
The Host header, TLS SNI and certificate checks still use the host name: only the
TCP connect is ours.

Refused (``refusal``): every address that is not globally routable. Python's
``ipaddress.is_global`` differs between patch releases, so the special-purpose
ranges are also listed here (``_REFUSED``): loopback, RFC 1918, 100.64.0.0/10
(shared address space; cloud metadata lives there), 169.254.0.0/16, 0.0.0.0/8,
multicast, 240/4 and broadcast, documentation and benchmarking nets, fc00::/7,
fe80::/10, fec0::/10 (site-local), ::/8 (IPv4-compatible and other deprecated
forms), 2001::/23, 64:ff9b:1::/48 (local NAT64), 5f00::/16, 3fff::/20. IPv6 forms
that carry an IPv4 address are judged by it: IPv4-mapped ``::ffff:a.b.c.d``,
NAT64 ``64:ff9b::a.b.c.d``, 6to4 ``2002:AABB:CCDD::`` and Teredo (server and
de-obfuscated client). A name with any refused address is refused as a whole.
Anything that is not an address (garbage, a name) is refused too: ``refusal``
never raises.

Not guarded here: ``allow_private_networks``, and ``guard_exempt`` ("host:port"
entries, the test servers). Through an HTTP(S) proxy from the environment the
socket's peer is the proxy, trusted as configured: the client then checks the
target's own resolution before the request, best effort (the proxy resolves the
name again; rebinding is the proxy's to stop), and refuses IP literals as always.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from dataclasses import dataclass
from typing import Optional, Union

from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util import connection as _u3conn

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network
# Listed rather than left to ``is_global``, whose table changed in 3.11.10 / 3.12.4.
_REFUSED = tuple((net, why) for net, why in (
    (_V4("0.0.0.0/8"), "this network"), (_V4("10.0.0.0/8"), "private"),
    (_V4("100.64.0.0/10"), "shared address space"), (_V4("127.0.0.0/8"), "loopback"),
    (_V4("169.254.0.0/16"), "link-local"), (_V4("172.16.0.0/12"), "private"),
    (_V4("192.0.0.0/24"), "IETF protocol assignments"), (_V4("192.0.2.0/24"), "documentation"),
    (_V4("192.88.99.0/24"), "6to4 relay anycast"), (_V4("192.168.0.0/16"), "private"),
    (_V4("198.18.0.0/15"), "benchmarking"), (_V4("198.51.100.0/24"), "documentation"),
    (_V4("203.0.113.0/24"), "documentation"), (_V4("224.0.0.0/4"), "multicast"),
    (_V4("240.0.0.0/4"), "reserved"),
    (_V6("::/128"), "unspecified"), (_V6("::1/128"), "loopback"),
    (_V6("::/96"), "IPv4-compatible (deprecated)"), (_V6("64:ff9b:1::/48"), "local-use NAT64"),
    (_V6("::/8"), "reserved"),
    (_V6("100::/64"), "discard-only"), (_V6("2001::/23"), "IETF protocol assignments"),
    (_V6("2001:db8::/32"), "documentation"), (_V6("3fff::/20"), "documentation"),
    (_V6("5f00::/16"), "segment routing"), (_V6("fc00::/7"), "unique local"),
    (_V6("fe80::/10"), "link-local"), (_V6("fec0::/10"), "site-local"), (_V6("ff00::/8"), "multicast"),
))
_NAT64 = _V6("64:ff9b::/96")


class AddressRefused(NewConnectionError):
    """A connection the guard did not make: the address is not one we may fetch from."""

    def __init__(self, conn, detail: str):
        super().__init__(conn, f"refused by the SSRF guard: {detail}")
        self.detail = detail


def parse_address(address) -> Optional[Union[ipaddress.IPv4Address, ipaddress.IPv6Address]]:
    """An IP address from text (a ``%zone`` suffix dropped); None for anything else."""
    if not isinstance(address, str):
        return None
    try:
        return ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None


def _embedded(ip: ipaddress.IPv6Address) -> Optional[tuple[str, tuple]]:
    """(form, the IPv4 addresses it carries) for the IPv6 forms that reach an IPv4 host."""
    if ip.ipv4_mapped is not None:
        return "IPv4-mapped", (ip.ipv4_mapped,)
    if ip in _NAT64:
        return "NAT64", (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF),)
    if ip.sixtofour is not None:
        return "6to4", (ip.sixtofour,)
    if ip.teredo is not None:
        return "Teredo", ip.teredo  # (server, client)
    return None


def _own_refusal(ip) -> Optional[str]:
    for net, why in _REFUSED:
        if ip.version == net.version and ip in net:
            return why
    if ip.is_multicast or ip.is_unspecified or ip.is_loopback:
        return "not unicast"
    if not ip.is_global:
        return "not globally routable"
    return None


def refusal(address) -> Optional[str]:
    """Why the guard refuses ``address`` ("loopback", "6to4 of 127.0.0.1: loopback", ...); None = allowed."""
    ip = parse_address(address)
    if ip is None:
        return "not an IP address"
    if ip.version == 6:
        carried = _embedded(ip)
        if carried is not None:
            form, inner = carried
            for v4 in inner:
                why = _own_refusal(v4)
                if why:
                    return f"{form} of {v4}: {why}"
            return None  # judged by what it carries, whatever is_global says of the wrapper
    return _own_refusal(ip)


def is_blocked_address(address) -> bool:
    """True for addresses the SSRF guard refuses (see ``refusal``)."""
    return refusal(address) is not None


def _host_key(host: str) -> str:
    return host.strip().lower().strip("[]").rstrip(".")


def exempt_key(host: str, port: int) -> str:
    """The "host:port" form ``guard_exempt`` entries are compared in."""
    return f"{_host_key(host)}:{port}"


@dataclass(frozen=True)
class AddressPolicy:
    """What the guard lets through: everything (``allow_private``), or exempt "host:port" entries."""

    allow_private: bool = False
    exempt: frozenset = frozenset()

    @classmethod
    def of(cls, allow_private: bool, exempt) -> "AddressPolicy":
        keys = set()
        for entry in exempt or ():
            host, _, port = str(entry).rpartition(":")
            keys.add(f"{_host_key(host)}:{port}")
        return cls(bool(allow_private), frozenset(keys))

    def unguarded(self, host: str, port: int) -> bool:
        return self.allow_private or exempt_key(host, port) in self.exempt


def refused_among(host: str, addresses) -> Optional[str]:
    """Detail for the first refused address of a name (None when every one is allowed)."""
    for address in addresses:
        why = refusal(address)
        if why:
            return f"{host} resolves to {address} ({why})"
    return None


def check_resolved(host: str, addresses, conn=None) -> None:
    """The connect-time check: refuse the name if any address it resolved to is refused."""
    detail = refused_among(host, addresses)
    if detail:
        raise AddressRefused(conn, detail)


def verify_peer(sock: socket.socket, host: str, conn=None) -> None:
    """Second line: the address the socket is connected to, before a byte is sent."""
    try:
        peer = sock.getpeername()[0]
    except OSError as exc:
        raise AddressRefused(conn, f"{host}: no peer address ({exc})") from None
    why = refusal(peer)
    if why:
        raise AddressRefused(conn, f"{host} connected to {peer} ({why})")


def open_connection(host: str, port: int, timeout, source_address=None, socket_options=None,
                    policy: AddressPolicy = AddressPolicy(), conn=None) -> socket.socket:
    """urllib3's create_connection, connecting only to addresses the guard allows.

    One lookup; every answer is checked before any is tried, then each is tried in
    turn (as urllib3 does) and the connected peer is checked again."""
    if policy.unguarded(host, port):
        return _u3conn.create_connection((host, port), timeout, source_address, socket_options)
    name = host.strip("[]")
    infos = socket.getaddrinfo(name, port, _u3conn.allowed_gai_family(), socket.SOCK_STREAM)
    check_resolved(host, [info[4][0] for info in infos], conn)
    err: Optional[OSError] = None
    for family, socktype, proto, _canon, address in infos:
        sock = socket.socket(family, socktype, proto)
        try:
            for option in socket_options or ():
                sock.setsockopt(*option)
            if timeout is not _u3conn._DEFAULT_TIMEOUT:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(address)
            verify_peer(sock, host, conn)
            return sock
        except AddressRefused:
            sock.close()
            raise
        except OSError as exc:
            err = exc
            sock.close()
    raise err if err is not None else OSError(f"getaddrinfo returned no address for {host}")


def guarded(base: type) -> type:
    """A urllib3 connection class whose TCP connect goes through ``open_connection`` under ``policy``."""

    class Guarded(base):
        policy: Optional[AddressPolicy] = None

        def _new_conn(self) -> socket.socket:
            if self.policy is None:
                return super()._new_conn()
            try:
                sock = open_connection(self._dns_host, self.port, self.timeout, self.source_address,
                                       self.socket_options, self.policy, self)
            except AddressRefused:
                raise
            except socket.gaierror as exc:
                raise NameResolutionError(self.host, self, exc) from exc
            except socket.timeout as exc:
                raise ConnectTimeoutError(self, f"Connection to {self.host} timed out. "
                                                f"(connect timeout={self.timeout})") from exc
            except (OSError, ValueError) as exc:  # ValueError: a NUL or a bad IDNA label in the name
                raise NewConnectionError(self, f"Failed to establish a new connection: {exc}") from exc
            sys.audit("http.client.connect", self, self.host, self.port)
            return sock

    Guarded.__name__ = f"Guarded{base.__name__}"
    return Guarded


def refusal_in(exc: BaseException) -> Optional[AddressRefused]:
    """The AddressRefused a requests/urllib3 exception wraps (``MaxRetryError.reason``, args, causes)."""
    seen, todo = set(), [exc]
    while todo and len(seen) < 32:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, AddressRefused):
            return current
        todo.extend(a for a in getattr(current, "args", ()) if isinstance(a, BaseException))
        todo.extend(x for x in (getattr(current, "reason", None), current.__cause__, current.__context__)
                    if isinstance(x, BaseException))
    return None
