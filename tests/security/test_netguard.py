"""Sink destinations: link-local and metadata addresses are always refused,
private ones only when asked, in every notation of the address (numeric IPv4
forms, IDNA dots, IPv4 embedded in IPv6); the check holds on the resolved
address, and nothing is connected to before it."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator

import pytest

from streamsink.sinkhttp.client import DeliveryClient, Outcome
from streamsink.sinkhttp.netguard import DestinationPolicy, DestinationRefused, parse_ipv4
from tests.helpers.receiver_server import ReceiverServer

OPEN = DestinationPolicy(block_private=False)
CLOSED = DestinationPolicy(block_private=True)

ALWAYS_REFUSED_ADDRESSES = [
    "169.254.169.254",
    "169.254.0.1",
    "fe80::1",
    "fe80::1%eth0",
    "febf::1",
    "fd00:ec2::254",
    "fd20:ce::254",
    "100.100.100.200",
    "168.63.129.16",
    "0.0.0.0",
    "0.1.2.3",
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "::",
    "ff02::1",
    # IPv4 embedded in IPv6: each form of 169.254.169.254
    "::ffff:169.254.169.254",  # mapped
    "::ffff:a9fe:a9fe",
    "::a9fe:a9fe",  # compatible
    "::ffff:0:a9fe:a9fe",  # translated
    "64:ff9b::a9fe:a9fe",  # NAT64 well-known prefix
    "64:ff9b::169.254.169.254",
    "64:ff9b:1::a9fe:a9fe",  # NAT64 local-use, /96
    "64:ff9b:1:a9fe:a9:fe00::",  # NAT64 local-use, /48 (RFC 6052 layout)
    "64:ff9b:1:a9:fe:a9fe::",  # NAT64 local-use, /56
    "64:ff9b:1:0:a9:fea9:fe00:0",  # NAT64 local-use, /64
    "2002:a9fe:a9fe::1",  # 6to4
    "2001:0:4136:e378:8000:63bf:5601:5601",  # Teredo, client = ~0x5601_5601
    "2001:db8::5efe:a9fe:a9fe",  # ISATAP
    "2001:db8::200:5efe:a9fe:a9fe",
    # other always-refused IPv4 addresses, embedded
    "::ffff:168.63.129.16",
    "64:ff9b::6464:64c8",  # 100.100.100.200
    "2002:0:0::1",  # 6to4 of 0.0.0.0
]


@pytest.mark.parametrize("address", ALWAYS_REFUSED_ADDRESSES)
def test_link_local_and_metadata_are_always_refused(address: str) -> None:
    assert OPEN.refusal(address)
    assert CLOSED.refusal(address)


PRIVATE_ADDRESSES = [
    "127.0.0.1",
    "10.1.2.3",
    "172.16.0.9",
    "192.168.1.1",
    "::1",
    "fd12::1",
    "fec0::1",
    "100.64.0.1",
    "::ffff:10.1.2.3",
    "::ffff:127.0.0.1",
    "::ffff:0:7f00:1",
    "::7f00:1",
    "64:ff9b::c0a8:101",
    "64:ff9b:1::a00:1",
    "2002:c0a8:101::1",
    "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo client 10.0.0.1
]


@pytest.mark.parametrize("address", PRIVATE_ADDRESSES)
def test_private_ranges_are_allowed_unless_blocked(address: str) -> None:
    assert OPEN.refusal(address) is None
    assert "private" in (CLOSED.refusal(address) or "")


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "2606:4700::1111", "64:ff9b::5db8:d822", "2002:5db8:d822::1"]
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert OPEN.refusal(address) is None
    assert CLOSED.refusal(address) is None


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("169.254.169.254", "169.254.169.254"),
        ("2852039166", "169.254.169.254"),
        ("0xa9fea9fe", "169.254.169.254"),
        ("0251.0376.0251.0376", "169.254.169.254"),
        ("169.254.43518", "169.254.169.254"),
        ("169.16689662", "169.254.169.254"),
        ("169.0xfe.43518", "169.254.169.254"),
        ("0xa9.0376.169.0xfe", "169.254.169.254"),
        ("0", "0.0.0.0"),
        ("0x", "0.0.0.0"),
        ("127.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("1.2.3.4", "1.2.3.4"),
    ],
)
def test_parse_ipv4_reads_numeric_forms_as_inet_aton(host: str, address: str) -> None:
    assert parse_ipv4(host) == ipaddress.IPv4Address(address)
    if host != "0x":  # the URL standard reads "0x" as 0, inet_aton refuses it
        assert socket.inet_aton(host.lower()) == socket.inet_aton(address)


@pytest.mark.parametrize("host", ["example.com", "1.2.3.com", "0x1.example", "localhost"])
def test_parse_ipv4_leaves_names(host: str) -> None:
    assert parse_ipv4(host) is None


@pytest.mark.parametrize(
    "host",
    ["1.2.3.256", "1.2.3.4.5", "09", "1.2.0x1g.3", "1..2", "256.1", "1.2.65536", "4294967296"],
)
def test_parse_ipv4_refuses_malformed_numbers(host: str) -> None:
    with pytest.raises(ValueError, match="not an IPv4 address"):
        parse_ipv4(host)


#: (url, part of the reason): every notation of an always-refused destination.
REFUSED_URLS = [
    ("ftp://example.com/x", "http and https"),
    ("file:///etc/passwd", "http and https"),
    ("http:///nohost", "no host"),
    ("http://./", "no host"),
    ("http://%2e/", "no host"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[fd00:ec2::254]/", "AWS metadata"),
    ("http://[fd20:ce::254]/", "Google Cloud metadata"),
    ("http://168.63.129.16/machine?comp=goalstate", "Azure WireServer"),
    ("http://100.100.100.200/latest/meta-data/", "Alibaba"),
    ("http://metadata.google.internal/computeMetadata/v1/", "metadata service"),
    ("http://METADATA.Google.Internal./computeMetadata/v1/", "metadata service"),
    ("http://metadata/computeMetadata/v1/", "metadata service"),
    ("http://instance-data/latest/", "metadata service"),
    ("http://metadata\uff0egoogle\u3002internal/", "metadata service"),
    # numeric IPv4 notations of 169.254.169.254
    ("http://2852039166/", "is the address 169.254.169.254"),
    ("http://0xa9fea9fe/", "is the address 169.254.169.254"),
    ("http://0251.0376.0251.0376/", "is the address 169.254.169.254"),
    ("http://169.254.43518/", "is the address 169.254.169.254"),
    ("http://169.0xfe.43518/", "is the address 169.254.169.254"),
    ("http://169\u3002254\u3002169\u3002254/", "is the address 169.254.169.254"),
    ("http://169\uff0e254\uff0e169\uff0e254/", "is the address 169.254.169.254"),
    ("http://169\uff61254\uff61169\uff61254/", "is the address 169.254.169.254"),
    ("http://\uff11\uff16\uff19.254.169.254/", "is the address 169.254.169.254"),
    ("http://169.254.169.254./", "is the address 169.254.169.254"),
    ("http://169.254.169.254%2e/", "is the address 169.254.169.254"),
    ("http://%31%36%39.254.169.254/", "is the address 169.254.169.254"),
    ("http://0:4318/v1/traces", "is the address 0.0.0.0"),
    ("http://0.0.0.0:4318/", "unspecified"),
    ("http://[::]:4318/", "unspecified"),
    ("http://0x0a9fea9fe/", "is the address 169.254.169.254"),
    ("http://0XA9FEA9FE/", "is the address 169.254.169.254"),
    ("http://2822734096/", "Azure WireServer"),  # 168.63.129.16
    # IPv6 embeddings
    ("http://[64:ff9b::a9fe:a9fe]/", "NAT64"),
    ("http://[64:ff9b:1::a9fe:a9fe]/", "NAT64"),
    ("http://[::a9fe:a9fe]/", "IPv4-compatible"),
    ("http://[2002:a9fe:a9fe::1]/", "6to4"),
    ("http://[::ffff:0:a9fe:a9fe]/", "IPv4-translated"),
    ("http://[::ffff:a9fe:a9fe]/", "IPv4-mapped"),
    ("http://[2001:0:4136:e378:8000:63bf:5601:5601]/", "Teredo"),
    ("http://[fe80::1%25eth0]:4318/", "link-local"),
    ("http://[64:ff9b::a83f:8110]/", "Azure WireServer"),
    # malformed numbers are no name either
    ("http://1.2.3.256/", "not an IPv4 address"),
    ("http://169.254.169.254.1/", "not an IPv4 address"),
]


@pytest.mark.parametrize(("url", "why"), REFUSED_URLS)
def test_check_url_refuses_every_notation(url: str, why: str) -> None:
    for policy in (OPEN, CLOSED):
        with pytest.raises(DestinationRefused, match=why) as caught:
            policy.check_url(url)
        assert repr(url) in str(caught.value)  # the message names the URL


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5/v1/traces",
        "http://127.1:4318/",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://0177.0.0.1/",
        "http://127\u30020\u30020\u30021/",
        "http://[::ffff:10.0.0.5]/",
        "http://[::ffff:0:a00:5]/",
        "http://[64:ff9b::a00:5]/",
        "http://[2002:a00:5::1]/",
        "http://[::1]/",
        "http://[fec0::1]/",
    ],
)
def test_check_url_private_only_when_blocked(url: str) -> None:
    OPEN.check_url(url)
    with pytest.raises(DestinationRefused, match="private"):
        CLOSED.check_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://collector.example.com/v1/traces",
        "http://127.0.0.1:4318/v1/traces",
        "http://localhost:4318/v1/traces",
        "http://8.8.8.8./",
        "http://[2606:4700::1111]/",
        "https://b\u00fccher.example/",
    ],
)
def test_check_url_allows(url: str) -> None:
    OPEN.check_url(url)


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Every IP address a socket connects to; anything but 127.0.0.1 is refused
    here, before a packet is sent (Unix sockets, such as Redis's, pass)."""
    seen: list[object] = []
    real = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> None:
        if self.family == socket.AF_UNIX:
            return real(self, address)
        seen.append(address)
        if not (isinstance(address, tuple) and address[0] == "127.0.0.1"):
            raise ConnectionRefusedError(f"test guard: no connection to {address}")
        real(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    yield seen


def fake_resolver(monkeypatch: pytest.MonkeyPatch, names: dict[str, str]) -> list[str]:
    """``socket.getaddrinfo`` answering ``names`` (name -> address), the real one
    for numeric hosts; returns the names looked up."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def fake(host: str, port: int, *args: object, **kwargs: object) -> list:
        asked.append(host)
        if host in names:
            address = names[host]
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sockaddr = (address, port, 0, 0) if ":" in address else (address, port)
            return [(family, socket.SOCK_STREAM, 6, "", sockaddr)]
        return real(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return asked


@pytest.mark.parametrize(
    "resolved",
    [
        "169.254.169.254",
        "168.63.129.16",
        "64:ff9b::a9fe:a9fe",  # DNS64 answer for a name whose A record is 169.254.169.254
        "::ffff:a9fe:a9fe",
        "::a9fe:a9fe",
        "::ffff:0:a9fe:a9fe",
        "2002:a9fe:a9fe::1",
        "2001:0:4136:e378:8000:63bf:5601:5601",
        "fe80::1",
        "fd00:ec2::254",
        "::",
        "0.0.0.0",
    ],
)
def test_resolved_address_is_checked(
    monkeypatch: pytest.MonkeyPatch, connects: list[object], resolved: str
) -> None:
    """A public-looking name that resolves to a refused address (DNS rebinding,
    DNS64) is refused when connecting: delivery fails permanently, unconnected."""
    fake_resolver(monkeypatch, {"rebind.example.com": resolved})
    with pytest.raises(DestinationRefused, match="refused addresses"):
        OPEN.resolve("rebind.example.com", 80)
    with DeliveryClient(policy=OPEN, connect_timeout=1, read_timeout=1) as client:
        result = client.send("http://rebind.example.com/v1/traces", b"{}")
    assert result.outcome is Outcome.PERMANENT, result
    assert "destination refused" in (result.error or "")
    assert connects == []


DELIVERY_URLS = [
    "http://2852039166/v1/traces",
    "http://0xa9fea9fe/v1/traces",
    "http://169.254.43518/v1/traces",
    "http://169.0xfe.43518/v1/traces",
    "http://169\u3002254\u3002169\u3002254/v1/traces",
    "http://169.254.169.254./v1/traces",
    "http://0:4318/v1/traces",
    "http://168.63.129.16/v1/traces",
    "http://[64:ff9b::a9fe:a9fe]/v1/traces",
    "http://[64:ff9b:1::a9fe:a9fe]/v1/traces",
    "http://[::a9fe:a9fe]/v1/traces",
    "http://[2002:a9fe:a9fe::1]/v1/traces",
    "http://[::ffff:0:a9fe:a9fe]/v1/traces",
    "http://[::ffff:a9fe:a9fe]/v1/traces",
    "http://[2001:0:4136:e378:8000:63bf:5601:5601]/v1/traces",
    "http://[::]:4318/v1/traces",
]


@pytest.mark.parametrize("url", DELIVERY_URLS)
def test_delivery_refuses_every_notation(
    monkeypatch: pytest.MonkeyPatch, connects: list[object], url: str
) -> None:
    """A URL saved before the policy knew its notation is refused at delivery,
    before any connection and without asking DNS about the number."""
    asked = fake_resolver(monkeypatch, {})
    with DeliveryClient(policy=OPEN, connect_timeout=1, read_timeout=1) as client:
        result = client.send(url, b"{}")
    assert result.outcome is Outcome.PERMANENT, result
    assert "destination refused" in (result.error or "")
    assert connects == []
    assert all(":" in host for host in asked)  # only IPv6 literals reach getaddrinfo


def test_numeric_loopback_forms_connect_to_loopback(connects: list[object]) -> None:
    """A numeric form of an allowed address is connected to as the address it names."""
    with ReceiverServer() as sink:
        port = sink.port
        with DeliveryClient(policy=OPEN) as client:
            for host in ("2130706433", "0x7f000001", "127.1"):
                result = client.send(f"http://{host}:{port}/v1/traces", b"{}")
                assert result.outcome is Outcome.SUCCESS, result
        with DeliveryClient(policy=CLOSED) as client:
            result = client.send(f"http://2130706433:{port}/v1/traces", b"{}")
        assert result.outcome is Outcome.PERMANENT
        assert "private or loopback" in (result.error or "")
        assert len(sink.requests) == 3
    assert {a[0] for a in connects if isinstance(a, tuple)} == {"127.0.0.1"}


def test_guarded_client_delivers_to_allowed_and_refuses_blocked_loopback() -> None:
    with ReceiverServer() as sink:
        with DeliveryClient(policy=OPEN) as client:
            assert client.send(sink.traces_url, b"{}").outcome is Outcome.SUCCESS
        with DeliveryClient(policy=CLOSED) as client:
            result = client.send(sink.traces_url, b"{}")
        assert result.outcome is Outcome.PERMANENT
        assert "private or loopback" in (result.error or "")
        assert len(sink.requests) == 1
