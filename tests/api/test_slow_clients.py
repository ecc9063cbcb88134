"""Slow clients (slowloris): a request's headers and body must arrive within
STREAMSINK_HTTP_HEADER_TIMEOUT / STREAMSINK_HTTP_BODY_TIMEOUT, else the
connection is answered 408 (or closed) and freed. Real `streamsink api`
processes (one, and two sharing the port) on 127.0.0.1, raw sockets."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

import pytest

from tools.devstack import Stack

HEADER_TIMEOUT, BODY_TIMEOUT = 1.0, 2.0
SLACK = 4.0  # generous: the server's timer plus a loaded 2-core machine


@pytest.fixture(scope="module", params=["1", "2"], ids=["one-process", "two-processes"])
def stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    env = {
        "STREAMSINK_HTTP_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
        "STREAMSINK_HTTP_BODY_TIMEOUT": str(BODY_TIMEOUT),
        "STREAMSINK_API_PROCESSES": request.param,
    }
    with Stack(workers=0, env=env) as s:
        yield s


def connect(stack: Stack) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", stack.port), timeout=5)
    sock.settimeout(HEADER_TIMEOUT + BODY_TIMEOUT + SLACK + 5)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (socket timeout: it didn't)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def read_response(sock: socket.socket) -> bytes:
    """One whole response (headers and a Content-Length body) on a kept-alive socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.lower().split(b"\r\n")
        if line.startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def request(stack: Stack, body: bytes = b"") -> bytes:
    head = (
        f"POST /api/v1/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {stack.token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


@pytest.mark.parametrize(
    "partial",
    [b"", b"POST /api/v1/str", b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: a"],
    ids=["nothing", "partial-request-line", "partial-headers"],
)
def test_stalled_headers_are_closed_within_the_header_timeout(stack: Stack, partial: bytes) -> None:
    with connect(stack) as sock:
        sock.sendall(partial)
        started = time.monotonic()
        answer = read_until_closed(sock)
        elapsed = time.monotonic() - started
    assert elapsed < HEADER_TIMEOUT + SLACK, elapsed
    if partial:
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert b"STREAMSINK_HTTP_HEADER_TIMEOUT" in answer
    else:
        assert answer == b""


def test_dripping_body_is_answered_408_within_the_body_timeout(stack: Stack) -> None:
    with connect(stack) as sock:
        full = request(stack, b'{"name": "' + b"x" * 200 + b'"}')
        head, body = full.split(b"\r\n\r\n", 1)
        sock.sendall(head + b"\r\n\r\n")
        started = time.monotonic()
        sock.settimeout(0.3)
        answer = b""
        for byte in body[:40]:  # one byte every 0.3 s: 12 s for the body, bounded
            try:
                sock.sendall(bytes([byte]))
                answer += sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:  # reset once closed
                break
            if answer:
                break
        sock.settimeout(SLACK)
        with contextlib.suppress(OSError):  # reset instead of a clean close
            answer += read_until_closed(sock)
        elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"STREAMSINK_HTTP_BODY_TIMEOUT" in answer and b"connection: close" in answer
    assert elapsed < BODY_TIMEOUT + SLACK, elapsed


def test_many_slow_sockets_are_all_freed_and_others_are_served(stack: Stack) -> None:
    socks = [connect(stack) for _ in range(100)]
    try:
        for i, sock in enumerate(socks):
            sock.sendall(b"GET /health HTTP/1.1\r\n" if i % 2 else request(stack, b"{")[:-1])
        # meanwhile a normal client is served
        with connect(stack) as ok:
            ok.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert read_until_closed(ok).startswith(b"HTTP/1.1 200 ")
        deadline = time.monotonic() + BODY_TIMEOUT + SLACK
        for sock in socks:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            assert read_until_closed(sock).startswith(b"HTTP/1.1 408 ")
    finally:
        for sock in socks:
            sock.close()


def test_requests_within_the_deadlines_are_served(stack: Stack) -> None:
    """A body in two parts, and a kept-alive connection idle for longer than
    the header timeout between requests (the keep-alive timeout governs it)."""
    with connect(stack) as sock:
        full = request(stack, b'{"name": "slow", "uid": "slow-ok"}')
        sock.sendall(full[:-10])
        time.sleep(BODY_TIMEOUT / 4)
        sock.sendall(full[-10:])
        first = read_response(sock)
        assert first.startswith((b"HTTP/1.1 201 ", b"HTTP/1.1 409 ")), first  # 409: 2nd run
        time.sleep(HEADER_TIMEOUT * 1.5)  # idle, below uvicorn's 5 s keep-alive
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 200 ")
