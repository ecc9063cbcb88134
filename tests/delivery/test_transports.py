"""The ``Transport`` seam: both real transports raise ``streamsink.errors``' tree
and connect through the one destination-checked ``connect``; the httpx fallback
(credentials in the URL) keeps TLS, keep-alive, the policy and the deadline."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpcore
import httpx
import pytest

from streamsink import errors
from streamsink.sinkhttp.client import DeliveryClient, Outcome
from streamsink.sinkhttp.http1 import RawPool, raw_head
from streamsink.sinkhttp.httpx_transport import HttpxTransport, translate
from streamsink.sinkhttp.netguard import DestinationPolicy, DestinationRefused
from streamsink.sinkhttp.transport import MockTransport, Request, Response
from tests.delivery.test_http1 import OK, ScriptedServer, _server_tls, _trusting, answer
from tests.helpers.receiver_server import closed_port_url

BODY = b'{"resourceSpans":[]}'


@pytest.fixture
def serve() -> Iterator[Callable[..., ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(*scripts: Callable[[bytes], bytes | None], **kw: Any) -> ScriptedServer:
        servers.append(ScriptedServer(list(scripts), **kw))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def _request(url: str) -> Request:
    built = httpx.Request("POST", url, headers={"Content-Type": "application/json"})
    built.extensions["timeout"] = {"connect": 2.0, "read": 2.0, "write": 2.0, "pool": 2.0}
    u = built.url
    headers = tuple((k, v) for k, v in built.headers.raw if k.lower() != b"content-length")
    origin = (u.scheme, u.host, u.port or 80)
    return Request(url, origin, headers, built.extensions["timeout"], raw_head(built))


@pytest.mark.parametrize("kind", ["raw", "httpx"])
def test_real_transports_raise_the_streamsink_tree(kind: str) -> None:
    request = _request(closed_port_url())
    if kind == "raw":
        transport: RawPool | HttpxTransport = RawPool(
            None, None, max_connections=2, max_keepalive=2, keepalive_expiry=5
        )
    else:
        transport = HttpxTransport(httpx.Client(trust_env=False))
    try:
        with pytest.raises(errors.ConnectError) as info:
            transport.send(request, BODY, 1024)
    finally:
        transport.close()
    assert isinstance(info.value, errors.TransportError)
    assert not isinstance(info.value, httpx.HTTPError)


def test_translate_keeps_the_class_name() -> None:
    assert type(translate(httpx.ReadTimeout("t"))) is errors.ReadTimeout
    assert type(translate(httpcore.WriteError("w"))) is errors.WriteError
    assert type(translate(httpx.LocalProtocolError("bad header"))) is errors.InvalidRequest
    assert type(translate(httpx.UnsupportedProtocol("ftp"))) is errors.InvalidRequest
    assert type(translate(httpcore.RemoteProtocolError("junk"))) is errors.RemoteProtocolError
    assert str(translate(httpx.ConnectError("refused"))) == "refused"


def test_mock_transport_bounds_the_body_and_records() -> None:
    mock = MockTransport(lambda req, body: Response(200, {"X-Echo": "1"}, b"x" * 100))
    with DeliveryClient(transport=mock) as client:
        result = client.send("http://u:p@sink.invalid/v1/traces", BODY, {"X-Api-Key": "k"})
    assert result.ok and result.response_excerpt == "x" * 100
    ((request, body),) = mock.sent
    assert body == BODY and request.header("x-api-key") == "k"
    assert request.origin == ("http", "sink.invalid", 80)
    assert mock.send(request, b"", 10) == Response(200, {"x-echo": "1"}, b"x" * 10)


def test_fallback_https_with_credentials_keeps_the_connection(
    serve: Callable[..., ScriptedServer],
) -> None:
    """Credentials in the URL go through httpx (Basic auth) over our TLS stream."""
    server = serve(answer(OK), answer(OK), tls=_server_tls())
    url = server.url("u:pw@localhost")
    with DeliveryClient(verify=_trusting(), policy=DestinationPolicy()) as client:
        for _ in range(2):
            result = client.send(url, BODY)
            assert result.ok, result
    assert b"\r\nAuthorization: Basic dTpwdw==\r\n" in server.requests[0]  # u:pw
    assert server.connections == 1  # kept alive by httpcore over our stream


def test_fallback_connects_through_the_destination_policy(
    serve: Callable[..., ScriptedServer],
) -> None:
    server = serve(answer(OK))
    with DeliveryClient(policy=DestinationPolicy(block_private=True)) as client:
        result = client.send(server.url("u:pw@localhost"), BODY)
    assert result.outcome is Outcome.PERMANENT, result
    assert (result.error or "").startswith("destination refused:")
    assert server.connections == 0


def test_destination_refused_is_the_errors_class() -> None:
    assert DestinationRefused is errors.DestinationRefused
    with pytest.raises(errors.DestinationRefused):
        DestinationPolicy(block_private=True).resolve("127.0.0.1", 80)


def test_fallback_ends_a_dripping_answer_at_the_request_deadline() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def drip() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"y" * 200:
                if stop.wait(0.05):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    url = f"http://u:p@127.0.0.1:{listener.getsockname()[1]}/v1/traces"
    try:
        with DeliveryClient(read_timeout=1.0, total_timeout=0.6) as client:
            started = time.monotonic()
            result = client.send(url, BODY)
        assert time.monotonic() - started < 1.5
        assert result.outcome is Outcome.RETRYABLE
        assert "ReadTimeout" in (result.error or "")
    finally:
        stop.set()
        thread.join(5)
        listener.close()
