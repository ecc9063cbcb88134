"""Which destinations a sink may send to (server-side request forgery guard).

Always refused: link-local and cloud metadata addresses (169.254.0.0/16,
fe80::/10, fd00:ec2::254, 100.100.100.200), "this network" 0.0.0.0/8,
multicast and broadcast. Private and loopback ranges are allowed (a
self-hosted tool sends to its neighbours) unless ``block_private`` is set
(``STREAMSINK_BLOCK_PRIVATE_DESTINATIONS=true``).

Checked twice: on the URL when a sink is saved (scheme, literal addresses,
metadata host names), and on every resolved address when connecting
(``otlp.transport``), so a name that later resolves to a refused address (DNS
rebinding) is refused too: the check and the connection use the same address.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from streamsink.errors import StreamsinkError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_ALWAYS_BLOCKED = [
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "169.254.0.0/16",
        "100.100.100.200/32",
        "224.0.0.0/4",
        "255.255.255.255/32",
        "fe80::/10",
        "fd00:ec2::254/128",
        "ff00::/8",
        "::/128",
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
    )
]
METADATA_HOSTS = frozenset(
    {
        "metadata.google.internal",
        "metadata.goog",
        "metadata",
        "instance-data",
        "instance-data.ec2.internal",
    }
)


class DestinationRefused(StreamsinkError):
    """A sink URL or the address it resolves to is not allowed."""


@dataclass(frozen=True, slots=True)
class DestinationPolicy:
    block_private: bool = False

    def refusal(self, address: str) -> str | None:
        """Why ``address`` (an IP) is refused, or None when it is allowed."""
        try:
            ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return f"{address!r} is not an IP address"
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in net for net in _ALWAYS_BLOCKED):
            return f"{ip} is a link-local, metadata or non-unicast address"
        if self.block_private and any(ip in net for net in _PRIVATE):
            return f"{ip} is a private or loopback address (STREAMSINK_BLOCK_PRIVATE_DESTINATIONS)"
        return None

    def check_url(self, url: str) -> None:
        """Raise ``DestinationRefused`` for a URL no sink may have."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise DestinationRefused("only http and https URLs are allowed")
        host = (parts.hostname or "").rstrip(".").lower()
        if not host:
            raise DestinationRefused("the URL has no host")
        if host in METADATA_HOSTS:
            raise DestinationRefused(f"{host} is a cloud metadata service")
        try:
            ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return  # a name: its addresses are checked when connecting
        reason = self.refusal(host)
        if reason:
            raise DestinationRefused(reason)

    def resolve(self, host: str, port: int) -> list[str]:
        """The allowed addresses of ``host``; ``DestinationRefused`` when none is."""
        if host.rstrip(".").lower() in METADATA_HOSTS:
            raise DestinationRefused(f"{host} is a cloud metadata service")
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
