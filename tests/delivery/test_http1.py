"""The raw HTTP/1.1 fast path (``sinkhttp.http1``) against scripted servers:
framing, keep-alive, stale connections, early answers, bounds and TLS."""

from __future__ import annotations

import gzip
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from streamsink.sinkhttp.client import DeliveryClient, Outcome
from streamsink.sinkhttp.netguard import DestinationPolicy

TLS = Path(__file__).parent / "tls"
BODY = b'{"resourceSpans":[]}'
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"

# A script answers one request on one connection: (request bytes) -> bytes to
# send, or None to close the connection without answering.
Script = Callable[[bytes], bytes | None]


class ScriptedServer:
    """Answers each request with the next script; records connections."""

    def __init__(self, scripts: list[Script], tls: ssl.SSLContext | None = None):
        self.scripts = list(scripts)
        self.tls = tls
        self.connections = 0
        self.requests: list[bytes] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def url(self, host: str = "127.0.0.1") -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{host}:{self.port}/v1/traces"

    def _serve(self) -> None:
        self.listener.settimeout(0.1)
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                continue
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            if self.tls:
                conn = self.tls.wrap_socket(conn, server_side=True)
            conn.settimeout(5)
            while self.scripts and not self.stop.is_set():
                request = _read_request(conn)
                if request is None:
                    return
                self.requests.append(request)
                answer = self.scripts.pop(0)(request)
                if answer is None:
                    return
                conn.sendall(answer)
        except OSError:
            return
        finally:
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.listener.close()


def _read_request(conn: socket.socket) -> bytes | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        body += chunk
    return head + b"\r\n\r\n" + body


def answer(raw: bytes) -> Script:
    return lambda _request: raw


@pytest.fixture
def serve() -> Iterator[Callable[..., ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(*scripts: Script, tls: ssl.SSLContext | None = None) -> ScriptedServer:
        server = ScriptedServer(list(scripts), tls)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def client() -> Iterator[DeliveryClient]:
    policy = DestinationPolicy()
    with DeliveryClient(connect_timeout=2, read_timeout=2, total_timeout=5, policy=policy) as c:
        yield c


def test_request_head_and_body_on_the_wire(serve, client) -> None:  # type: ignore[no-untyped-def]
    server = serve(answer(OK))
    assert client.send(server.url(), BODY, {"Authorization": "Bearer t"}).ok
    head, _, body = server.requests[0].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /v1/traces HTTP/1.1"
    assert lines[1] == f"Host: 127.0.0.1:{server.port}".encode()
    assert b"Authorization: Bearer t" in lines and b"Content-Length: 20" in lines
    assert b"Content-Type: application/json" in lines
    assert body == BODY


def test_keep_alive_reuses_one_connection(serve, client) -> None:  # type: ignore[no-untyped-def]
    server = serve(*[answer(OK)] * 5)
    for _ in range(5):
        assert client.send(server.url(), BODY).ok
    assert server.connections == 1


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"1;ext=1\r\n{\r\n1\r\n}\r\n0\r\nX-T: 1\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
        b"HTTP/1.1 200 OK\nContent-Length: 2\n\n{}",
        b"HTTP/1.1 200\r\nContent-Length: 2, 2\r\n\r\n{}",
    ],
    ids=["chunked", "informational", "bare-lf", "no-reason"],
)
def test_framings_keep_the_connection(serve, client, raw: bytes) -> None:  # type: ignore[no-untyped-def]
    server = serve(answer(raw), answer(OK))
    result = client.send(server.url(), BODY)
    assert result.ok and result.response_excerpt == "{}", result
    assert client.send(server.url(), BODY).ok
    assert server.connections == 1


def test_body_until_close_and_connection_close(serve, client) -> None:  # type: ignore[no-untyped-def]
    until_close = b"HTTP/1.0 400 Bad Request\r\n\r\nno length here"
    closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"
    server = serve(answer(until_close))
    result = client.send(server.url(), BODY)
    assert result.outcome is Outcome.PERMANENT and result.response_excerpt == "no length here"
    server.scripts = [answer(closing), answer(OK)]
    assert client.send(server.url(), BODY).ok
    assert client.send(server.url(), BODY).ok
    assert server.connections == 3


def test_folded_and_repeated_headers(serve, client) -> None:  # type: ignore[no-untyped-def]
    raw = (
        b"HTTP/1.1 503 Busy\r\nRetry-After:\r\n  7\r\nX-A: 1\r\nX-A: 2\r\nContent-Length: 0\r\n\r\n"
    )
    server = serve(answer(raw))
    result = client.send(server.url(), BODY)
    assert result.outcome is Outcome.RETRYABLE and result.retry_after == 7.0


def test_gzip_answer_is_decoded(serve, client) -> None:  # type: ignore[no-untyped-def]
    packed = gzip.compress(b'{"partialSuccess":{"rejectedSpans":"2","errorMessage":"bad"}}')
    raw = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(packed), packed)
    )
    server = serve(answer(raw))
    result = client.send(server.url(), BODY)
    assert result.ok and result.partial_success is not None
    assert result.partial_success.rejected_spans == 2


def test_large_answer_is_bounded_and_connection_dropped(serve, client) -> None:  # type: ignore[no-untyped-def]
    big = b"x" * 200_000
    raw = b"HTTP/1.1 400 Bad\r\nContent-Length: %d\r\n\r\n%s" % (len(big), big)
    server = serve(answer(raw), answer(OK))
    result = client.send(server.url(), BODY)
    assert result.outcome is Outcome.PERMANENT and len(result.response_excerpt) == 500
    assert client.send(server.url(), BODY).ok
    assert server.connections == 2


def test_stale_idle_connection_is_not_used(serve, client) -> None:  # type: ignore[no-untyped-def]
    def then_close(_request: bytes) -> bytes:
        return OK  # the handler ends after this (no scripts left): it closes

    server = serve(then_close)
    assert client.send(server.url(), BODY).ok
    time.sleep(0.2)  # the server has closed the idle connection
    server.scripts.append(answer(OK))
    assert client.send(server.url(), BODY).ok
    assert server.connections == 2


def test_early_answer_before_the_body_is_read(serve, client) -> None:  # type: ignore[no-untyped-def]
    """A server that answers 413 and closes while the body is still being sent."""
    listener = socket.create_server(("127.0.0.1", 0))

    def early() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(1024)
            conn.sendall(
                b"HTTP/1.1 413 Too Large\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbig"
            )
            conn.shutdown(socket.SHUT_WR)
            time.sleep(0.3)

    thread = threading.Thread(target=early, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1/traces"
    try:
        result = client.send(url, b"x" * 20_000_000)
        assert result.outcome is Outcome.TOO_LARGE, result
        assert result.response_excerpt == "big"
    finally:
        thread.join(5)
        listener.close()


@pytest.mark.parametrize(
    "raw",
    [
        b"garbage\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n{}",
    ],
)
def test_protocol_errors_are_retryable(serve, client, raw: bytes) -> None:  # type: ignore[no-untyped-def]
    server = serve(answer(raw))
    result = client.send(server.url(), BODY)
    assert result.outcome is Outcome.RETRYABLE and result.status_code is None, result
    assert "RemoteProtocolError" in (result.error or "")


def test_no_answer_is_retryable(serve, client) -> None:  # type: ignore[no-untyped-def]
    server = serve(lambda _r: None)
    result = client.send(server.url(), BODY)
    assert result.outcome is Outcome.RETRYABLE
    assert "Server disconnected without sending a response" in (result.error or "")


def test_truncated_body_keeps_the_status(serve, client) -> None:  # type: ignore[no-untyped-def]
    server = serve(answer(b"HTTP/1.1 502 Bad\r\nContent-Length: 100\r\n\r\npartial"), answer(OK))
    server.scripts.insert(1, lambda _r: None)  # closes after the partial answer
    result = client.send(server.url(), BODY)
    assert result.outcome is Outcome.RETRYABLE and result.status_code == 502
    assert result.response_excerpt == "partial"


def test_pool_timeout_when_all_connections_are_busy(serve) -> None:  # type: ignore[no-untyped-def]
    def slow(_request: bytes) -> bytes:
        time.sleep(1.0)
        return OK

    server = serve(slow, answer(OK))
    with DeliveryClient(max_connections=1, connect_timeout=0.2, read_timeout=3) as client:
        first = threading.Thread(target=client.send, args=(server.url(), BODY))
        first.start()
        time.sleep(0.2)
        result = client.send(server.url(), BODY)
        first.join()
    assert result.outcome is Outcome.RETRYABLE and "PoolTimeout" in (result.error or "")


def _server_tls() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(TLS / "server.pem", TLS / "server-key.pem")
    return context


def _trusting() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(TLS / "ca.pem"))


def test_https_with_a_trusted_certificate(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(*[answer(OK)] * 3, tls=_server_tls())
    with DeliveryClient(verify=_trusting(), policy=DestinationPolicy()) as client:
        for host in ("localhost", "127.0.0.1", "localhost"):
            result = client.send(server.url(host), BODY)
            assert result.ok, result
    assert server.requests[0].endswith(BODY)
    assert server.connections == 2  # one per origin (host name), kept alive


def test_https_refuses_an_unknown_ca_and_a_wrong_host(  # type: ignore[no-untyped-def]
    serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = serve(answer(OK), answer(OK), tls=_server_tls())
    monkeypatch.setattr(DestinationPolicy, "resolve", lambda _self, _host, _port: ["127.0.0.1"])
    with DeliveryClient(connect_timeout=2) as client:  # certifi's CAs only
        result = client.send(server.url("localhost"), BODY)
    assert result.outcome is Outcome.RETRYABLE
    assert "CERTIFICATE_VERIFY_FAILED" in (result.error or "")
    with DeliveryClient(verify=_trusting(), policy=DestinationPolicy()) as client:
        result = client.send(server.url("other.example"), BODY)  # not in the certificate
    assert result.outcome is Outcome.RETRYABLE
    assert "CERTIFICATE_VERIFY_FAILED" in (result.error or "")
    assert "other.example" in (result.error or "")
    assert server.requests == []
