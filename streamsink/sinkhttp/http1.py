"""Raw HTTP/1.1 keep-alive POSTs: the default ``Transport`` and the hot path.

What httpcore + h11 did per POST, without their per-request layers: one
pooled socket per request (``http`` or ``https`` with the transport's own,
verifying ``ssl.SSLContext``), the request head built and validated once per
sink (``raw_head``), one ``send`` of head and body, and ``sinkhttp.wire``'s
parser of the answer (1xx answers skipped).

Addresses from the ``DestinationPolicy`` only (``sinkhttp.sockets.connect``),
connect/read/write/pool timeouts from httpx's ``Timeout``, every wait bounded
by the request deadline (``sinkhttp.deadline``), errors from the transport tree
of ``streamsink.errors``. A write error still reads the answer (a server may
answer 413 and close before the body is in); an idle connection that expired or
became readable (closed by the server) is dropped before use, never retried
after a request was sent.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
import time

import h11
import httpx

from streamsink.errors import PoolTimeout, WriteError
from streamsink.sinkhttp.deadline import bounded
from streamsink.sinkhttp.netguard import DestinationPolicy
from streamsink.sinkhttp.sockets import connect, readable, start_tls
from streamsink.sinkhttp.transport import Origin, Request, Response
from streamsink.sinkhttp.wire import Answer, Conn, read_body, read_head


def raw_head(request: httpx.Request) -> bytes | None:
    """The request line and headers (all but Content-Length, Host first) as the
    raw pool sends them; None when h11 would refuse them (httpx says why)."""
    headers = [(k, v) for k, v in request.headers.raw if k.lower() != b"content-length"]
    try:
        event = h11.Request(method=request.method, target=request.url.raw_path, headers=headers)
    except h11.LocalProtocolError:
        return None
    items = event.headers.raw_items()
    lines = [b"%s %s HTTP/1.1\r\n" % (event.method, event.target)]
    lines += [b"%s: %s\r\n" % (k, v) for k, v in items if k.lower() == b"host"]
    lines += [b"%s: %s\r\n" % (k, v) for k, v in items if k.lower() != b"host"]
    return b"".join(lines)


class RawPool:
    """The default ``Transport``: keep-alive connections by origin; thread-safe."""

    def __init__(
        self,
        policy: DestinationPolicy | None,
        ssl_context: ssl.SSLContext | None,
        *,
        max_connections: int | None,
        max_keepalive: int | None,
        keepalive_expiry: float | None,
    ):
        self.policy = policy
        self.ssl_context = ssl_context
        self.max_keepalive = max_keepalive if max_keepalive is not None else 1 << 30
        self.keepalive_expiry = keepalive_expiry
        self._slots = threading.BoundedSemaphore(max_connections or 1 << 30)
        self._idle: dict[Origin, list[Conn]] = {}
        self._idle_count = 0
        self._lock = threading.Lock()
        self._closed = False

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle, self._idle_count = self._idle, {}, 0
        for conns in idle.values():
            for conn in conns:
                conn.close()

    def send(self, req: Request, body: bytes, limit: int) -> Response:
        """POST ``body`` (``req.head`` must be set: ``raw_head``)."""
        timeouts = req.timeouts
        if not self._slots.acquire(timeout=bounded(timeouts.get("pool"), PoolTimeout)):
            raise PoolTimeout("no connection slot available in time")
        try:
            conn = self._checkout(req) or self._connect(req)
            try:
                answer = self._exchange(conn, req, body)
                data, complete = read_body(conn, answer, timeouts.get("read"), limit)
            except BaseException:
                conn.close()
                raise
            if complete and answer.reusable:
                self._checkin(req, conn)
            else:
                conn.close()
            return Response(answer.status, answer.headers, data)
        finally:
            self._slots.release()

    def _exchange(self, conn: Conn, req: Request, body: bytes) -> Answer:
        length = b"Content-Length: %d\r\n\r\n" % len(body) if body else b"\r\n"
        assert req.head is not None
        # On a write error the server may have answered (e.g. 413) and closed: read it.
        with contextlib.suppress(WriteError):
            conn.send(req.head + length + body, req.timeouts.get("write"))
        while True:
            answer = read_head(conn, req.timeouts.get("read"))
            if not 100 <= answer.status < 200 or answer.status == 101:
                return answer

    def _checkout(self, req: Request) -> Conn | None:
        key = req.origin
        while True:
            with self._lock:
                conns = self._idle.get(key)
                if not conns:
                    return None
                conn = conns.pop()
                self._idle_count -= 1
                if not conns:
                    del self._idle[key]
            expiry = self.keepalive_expiry
            if (expiry is not None and time.monotonic() - conn.idle_since > expiry) or (
                conn.buf or readable(conn.sock)
            ):
                conn.close()  # expired, closed by the server, or junk: not reused
                continue
            return conn

    def _checkin(self, req: Request, conn: Conn) -> None:
        conn.idle_since = time.monotonic()
        drop: Conn | None = None
        with self._lock:
            if self._closed:
                drop = conn
            else:
                self._idle.setdefault(req.origin, []).append(conn)
                self._idle_count += 1
                if self._idle_count > self.max_keepalive:
                    drop = self._oldest()
        if drop is not None:
            drop.close()

    def _oldest(self) -> Conn:
        key = min(self._idle, key=lambda k: self._idle[k][0].idle_since)
        conns = self._idle[key]
        conn = conns.pop(0)
        if not conns:
            del self._idle[key]
        self._idle_count -= 1
        return conn

    def _connect(self, req: Request) -> Conn:
        scheme, host, port = req.origin
        connect_timeout = req.timeouts.get("connect")
        sock = connect(self.policy, host, port, connect_timeout)
        if scheme == "https":
            context = self.ssl_context or ssl.create_default_context()
            sock = start_tls(sock, context, host, connect_timeout)
        return Conn(sock)
