"""Sink destinations: link-local and metadata addresses are always refused,
private ones only when asked; the check holds on the resolved address."""

from __future__ import annotations

import socket

import pytest

from streamsink.netguard import DestinationPolicy, DestinationRefused
from streamsink.otlp.client import DeliveryClient, Outcome
from tests.helpers.receiver_server import ReceiverServer

OPEN = DestinationPolicy(block_private=False)
CLOSED = DestinationPolicy(block_private=True)


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",
        "169.254.0.1",
        "fe80::1",
        "fd00:ec2::254",
        "100.100.100.200",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "::",
        "::ffff:169.254.169.254",
    ],
)
def test_link_local_and_metadata_are_always_refused(address: str) -> None:
    assert OPEN.refusal(address)
    assert CLOSED.refusal(address)


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.16.0.9", "192.168.1.1", "::1", "fd12::1", "100.64.0.1"],
)
def test_private_ranges_are_allowed_unless_blocked(address: str) -> None:
    assert OPEN.refusal(address) is None
    assert "private" in (CLOSED.refusal(address) or "")


def test_public_addresses_are_allowed() -> None:
    assert OPEN.refusal("93.184.216.34") is None
    assert CLOSED.refusal("2606:4700::1111") is None


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://example.com/x", "http and https"),
        ("file:///etc/passwd", "http and https"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[fd00:ec2::254]/", "link-local"),
        ("http://metadata.google.internal/computeMetadata/v1/", "metadata"),
        ("http:///nohost", "no host"),
    ],
)
def test_check_url_refuses(url: str, why: str) -> None:
    with pytest.raises(DestinationRefused, match=why):
        OPEN.check_url(url)


def test_check_url_private_only_when_blocked() -> None:
    OPEN.check_url("http://127.0.0.1:4318/v1/traces")
    OPEN.check_url("https://collector.example.com/v1/traces")
    with pytest.raises(DestinationRefused, match="private"):
        CLOSED.check_url("http://10.0.0.5/v1/traces")


def test_resolved_address_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """A public-looking name that resolves to a metadata address (DNS rebinding)
    is refused when connecting, and delivery fails permanently without a request."""

    def fake_getaddrinfo(host: str, port: int, *args: object, **kwargs: object) -> list:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    with pytest.raises(DestinationRefused, match="refused addresses"):
        OPEN.resolve("rebind.example.com", 80)
    with DeliveryClient(policy=OPEN, connect_timeout=1, read_timeout=1) as client:
        result = client.send("http://rebind.example.com/v1/traces", b"{}")
    assert result.outcome is Outcome.PERMANENT
    assert "destination refused" in (result.error or "")


def test_guarded_client_delivers_to_allowed_and_refuses_blocked_loopback() -> None:
    with ReceiverServer() as sink:
        with DeliveryClient(policy=OPEN) as client:
            assert client.send(sink.traces_url, b"{}").outcome is Outcome.SUCCESS
        with DeliveryClient(policy=CLOSED) as client:
            result = client.send(sink.traces_url, b"{}")
        assert result.outcome is Outcome.PERMANENT
        assert "private or loopback" in (result.error or "")
        assert len(sink.requests) == 1
