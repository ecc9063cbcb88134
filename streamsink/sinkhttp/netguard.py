"""Which destinations a sink may send to (server-side request forgery guard).

Always refused: link-local and cloud metadata addresses (169.254.0.0/16,
fe80::/10, fd00:ec2::254, fd20:ce::254, 100.100.100.200, Azure's WireServer
168.63.129.16) and names (``metadata.google.internal``, ``instance-data``...),
the unspecified addresses 0.0.0.0/8 and ``::``, multicast, reserved and
broadcast. Private and loopback ranges are allowed (a self-hosted tool sends
to its neighbours) unless ``block_private`` is set
(``STREAMSINK_BLOCK_PRIVATE_DESTINATIONS=true``).

Every notation of an address is read the way a resolver or a WHATWG URL
parser reads it, once (``host_address``): percent-decoding, UTS 46 mapping
(fullwidth digits, ideographic and other IDNA dots), one trailing dot, IPv4 in
1 to 4 decimal, octal or hex parts (``2852039166``, ``0xa9fea9fe``,
``0251.0376.0251.0376``, ``169.254.43518``), and an IPv4 address embedded in
IPv6 (mapped, compatible, translated, NAT64 ``64:ff9b::/96`` and
``64:ff9b:1::/48``, 6to4, Teredo, ISATAP) is judged as that IPv4 address.

Checked twice: on the URL when a sink is saved (``check_url``), and on every
resolved address when connecting (``resolve``, called by ``sinkhttp.sockets.connect``
for every transport), so a name that later resolves to a refused address (DNS
rebinding, DNS64) is refused too: the check and the connection use the same
address.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import unicodedata
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from streamsink.errors import DestinationRefused

__all__ = ["DestinationPolicy", "DestinationRefused", "host_address", "parse_ipv4"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPv4 = ipaddress.IPv4Address
IPv6 = ipaddress.IPv6Address

_ALWAYS_BLOCKED = [
    (ipaddress.ip_network(net), what)
    for net, what in (
        ("0.0.0.0/8", "an unspecified ('this network') address"),
        ("169.254.0.0/16", "a link-local (cloud metadata) address"),
        ("168.63.129.16/32", "the Azure WireServer address"),
        ("100.100.100.200/32", "the Alibaba Cloud metadata address"),
        ("224.0.0.0/4", "a multicast address"),
        ("240.0.0.0/4", "a reserved or broadcast address"),
        ("::/128", "the unspecified address"),
        ("fe80::/10", "a link-local address"),
        ("fd00:ec2::254/128", "the AWS metadata address"),
        ("fd20:ce::254/128", "the Google Cloud metadata address"),
        ("ff00::/8", "a multicast address"),
    )
]
_PRIVATE = [
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "127.0.0.0/8",
        "100.64.0.0/10",
        "198.18.0.0/15",
        "::1/128",
        "fc00::/7",
        "fec0::/10",
    )
]
METADATA_HOSTS = frozenset(
    {
        "metadata.google.internal",
        "metadata.goog",
        "metadata",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.tencentyun.com",
    }
)
_ALWAYS_NOTE = "link-local, metadata and non-unicast addresses are always refused"
_PRIVATE_NOTE = "a private or loopback address (STREAMSINK_BLOCK_PRIVATE_DESTINATIONS)"

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_NUMBER_RE = re.compile(r"0x[0-9a-f]*|[0-9]+")
#: IDNA label separators a resolver or URL parser reads as "." (after NFKC).
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})


def normalise_host(host: str) -> str:
    """``host`` as a URL parser hands it to a resolver: percent-decoded, UTS 46
    mapped (NFKC, case-folded, every IDNA dot a "."), without one trailing dot."""
    host = unicodedata.normalize("NFKC", unquote(host)).casefold().translate(_DOTS)
    return host[:-1] if host.endswith(".") else host


def _ipv4_part(part: str) -> int:
    if part.startswith("0x"):
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part.startswith("0"):
        return int(part, 8)
    if not part.isdigit():
        raise ValueError(part)
    return int(part)


def parse_ipv4(host: str) -> IPv4 | None:
    """The IPv4 address a normalised ``host`` names as ``inet_aton`` and URL
    parsers read it (1 to 4 decimal, octal or hex parts, the last filling the
    remaining bytes), None for a name; ``ValueError`` when it ends in a number
    but is no valid address (``1.2.3.256``, ``09``)."""
    parts = host.split(".")
    if not _NUMBER_RE.fullmatch(parts[-1]):
        return None
    try:
        values = [_ipv4_part(p) for p in parts]
    except ValueError:
        raise ValueError(f"host {host!r} ends in a number but is not an IPv4 address") from None
    last_bytes = 5 - len(values)
    if last_bytes < 1 or any(v > 255 for v in values[:-1]) or values[-1] >= 256**last_bytes:
        raise ValueError(f"host {host!r} ends in a number but is not an IPv4 address")
    number = values[-1]
    for i, value in enumerate(values[:-1]):
        number |= value << (8 * (3 - i))
    return IPv4(number)


def host_address(host: str) -> IPAddress | None:
    """The IP address ``host`` (a URL's host, without brackets) names in any
    notation, None for a name; ``ValueError`` for a malformed address."""
    name = normalise_host(host)
    if ":" in name:
        try:
            return IPv6(name.split("%", 1)[0])
        except ValueError:
            raise ValueError(f"host {host!r} is not a valid IPv6 address") from None
    return parse_ipv4(name)


def _rfc6052(n: int, prefix: int) -> IPv4:
    """The IPv4 address in an RFC 6052 IPv4-embedded IPv6 address of prefix length ``prefix``."""
    if prefix == 96:
        return IPv4(n & 0xFFFFFFFF)
    squeezed = ((n >> 64) << 56) | (n & ((1 << 56) - 1))  # without the u octet (bits 64-71)
    return IPv4((squeezed >> (120 - prefix - 32)) & 0xFFFFFFFF)


def embedded_ipv4(ip: IPv6) -> list[tuple[str, IPv4]]:
    """Every IPv4 address ``ip`` carries, with the name of the embedding."""
    n = int(ip)
    found: list[tuple[str, IPv4]] = []
    if n >> 32 == 0xFFFF:
        found.append(("IPv4-mapped", IPv4(n & 0xFFFFFFFF)))
    elif n >> 32 == 0xFFFF0000:
        found.append(("IPv4-translated", IPv4(n & 0xFFFFFFFF)))
    elif n >> 32 == 0 and n > 1:
        found.append(("IPv4-compatible", IPv4(n & 0xFFFFFFFF)))
    if ip in _NAT64:
        found.append(("NAT64", _rfc6052(n, 96)))
    if ip in _NAT64_LOCAL:  # the operator picks the prefix length: try each layout
        found.append(("NAT64 local-use", _rfc6052(n, 96)))
        for length in (48, 56, 64):
            v4 = _rfc6052(n, length)
            if v4.packed[0]:  # 0.x.x.x: zero bits, not this layout
                found.append((f"NAT64 local-use /{length}", v4))
    if ip.sixtofour is not None:
        found.append(("6to4", ip.sixtofour))
    if ip.teredo is not None:
        server, client = ip.teredo
        found += [("Teredo client", client), ("Teredo server", server)]
    if (n >> 32) & 0xFCFFFFFF == 0x5EFE:  # ISATAP interface identifier
        found.append(("ISATAP", IPv4(n & 0xFFFFFFFF)))
    return found


@dataclass(frozen=True, slots=True)
class DestinationPolicy:
    block_private: bool = False

    def refusal(self, address: str) -> str | None:
        """Why ``address`` (an IP, IPv6 with an optional zone) is refused, or None
        when it is allowed."""
        try:
            ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return f"{address!r} is not an IP address"
        return self.ip_refusal(ip)

    def ip_refusal(self, ip: IPAddress) -> str | None:
        """Why ``ip`` is refused (itself or an IPv4 address it embeds), or None."""
        own = self._own_refusal(ip)
        if own or isinstance(ip, IPv4):
            return own
        for how, v4 in embedded_ipv4(ip):
            reason = self._own_refusal(v4)
            if reason:
                return f"{ip} embeds {v4} ({how}): {reason}"
        return None

    def _own_refusal(self, ip: IPAddress) -> str | None:
        for net, what in _ALWAYS_BLOCKED:
            if ip in net:
                return f"{ip} is {what}; {_ALWAYS_NOTE}"
        if self.block_private and any(ip in net for net in _PRIVATE):
            return f"{ip} is {_PRIVATE_NOTE}"
        return None

    def check_url(self, url: str) -> None:
        """Raise ``DestinationRefused`` naming the URL and why, for a URL no sink may have."""
        shown = repr(url if len(url) <= 200 else url[:200] + "...")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise DestinationRefused(f"{shown}: only http and https URLs are allowed")
        host = parts.hostname or ""
        if not host.rstrip("."):
            raise DestinationRefused(f"{shown}: the URL has no host")
        try:
            reason = self.host_refusal(host)
        except ValueError as exc:
            raise DestinationRefused(f"{shown}: {exc}") from None
        if reason:
            raise DestinationRefused(f"{shown}: {reason}")

    def host_refusal(self, host: str) -> str | None:
        """Why a URL's ``host`` (name or address in any notation) is refused, or
        None (a name's addresses are checked when connecting);
        ``ValueError`` for a malformed address."""
        name = normalise_host(host)
        if not name:
            return "the URL has no host"
        if name in METADATA_HOSTS:
            return f"{name} is a cloud metadata service; {_ALWAYS_NOTE}"
        ip = host_address(host)
        if ip is None:
            return None
        reason = self.ip_refusal(ip)
        if reason and isinstance(ip, IPv4) and host != str(ip):
            return f"host {host!r} is the address {ip}: {reason}"
        return reason

    def resolve(self, host: str, port: int) -> list[str]:
        """The allowed addresses of ``host``; ``DestinationRefused`` when none is.
        An IPv4 literal in any notation is read here, not by the resolver."""
        try:
            reason = self.host_refusal(host)
            ip = host_address(host)
        except ValueError as exc:
            raise DestinationRefused(str(exc)) from None
        if reason:
            raise DestinationRefused(reason)
        if isinstance(ip, IPv4):
            return [str(ip)]
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        allowed: list[str] = []
        reasons: list[str] = []
        for _family, _type, _proto, _canon, sockaddr in infos:
            address = str(sockaddr[0])
            reason = self.refusal(address)
            if reason:
                reasons.append(reason)
            elif address not in allowed:
                allowed.append(address)
        if not allowed:
            raise DestinationRefused(f"{host} resolves only to refused addresses: {reasons[0]}")
        return allowed
