"""Raw HTTP/1.1 keep-alive POSTs: the delivery transport's hot path.

What httpcore + h11 did per POST, without their per-request layers: one
pooled socket per request (``http`` or ``https`` with the transport's own,
verifying ``ssl.SSLContext``), the request head built and validated once per
sink (``RawRequest.of``), one ``send`` of head and body, and ``otlp.wire``'s
parser of the answer (1xx answers skipped).

Same rules as ``DeliveryBackend``: addresses from the ``DestinationPolicy``
only, connect/read/write/pool timeouts from httpx's ``Timeout``, every wait
bounded by the request deadline (``otlp.deadline``), and httpx's
exceptions (``ConnectError``, ``ReadTimeout``, ``RemoteProtocolError``, ...)
so the client classifies outcomes exactly as before. A write error still
reads the answer (a server may answer 413 and close before the body is in);
an idle connection that expired or became readable (closed by the server) is
dropped before use, never retried after a request was sent.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import threading
import time
from typing import NamedTuple

import h11
import httpx

from streamsink.otlp.wire import Answer, Conn, read_body, read_head
from streamsink.sinkhttp.deadline import bounded
from streamsink.sinkhttp.netguard import DestinationPolicy


class RawRequest(NamedTuple):
    """A POST's origin, timeouts and head (all but Content-Length), built once."""

    https: bool
    host: str  # as resolved / connected to (IPv6 without brackets)
    port: int
    sni: str
    head: bytes  # request line + headers, each line ending in CRLF, no blank line
    timeouts: dict[str, float | None]

    @classmethod
    def of(cls, request: httpx.Request) -> RawRequest | None:
        """None when h11 would refuse the request (the httpcore path says why)."""
        url = request.url
        headers = [(k, v) for k, v in request.headers.raw if k.lower() != b"content-length"]
        try:
            event = h11.Request(method=b"POST", target=url.raw_path, headers=headers)
        except h11.LocalProtocolError:
            return None
        items = event.headers.raw_items()
        lines = [b"POST %s HTTP/1.1\r\n" % event.target]
        lines += [b"%s: %s\r\n" % (k, v) for k, v in items if k.lower() == b"host"]
        lines += [b"%s: %s\r\n" % (k, v) for k, v in items if k.lower() != b"host"]
        https = url.scheme == "https"
        host = url.raw_host.decode("ascii")
        timeouts = dict(request.extensions.get("timeout") or {})
        return cls(https, host, url.port or (443 if https else 80), host, b"".join(lines), timeouts)


class Http1Pool:
    """Keep-alive connections by origin; thread-safe."""

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
        self._idle: dict[tuple[bool, str, int], list[Conn]] = {}
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

    def post(self, req: RawRequest, body: bytes, limit: int) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, at most ``limit`` bytes of the decoded body)."""
        timeouts = req.timeouts
        if not self._slots.acquire(timeout=bounded(timeouts.get("pool"), httpx.PoolTimeout)):
            raise httpx.PoolTimeout("no connection slot available in time")
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
            return answer.status, answer.headers, data
        finally:
            self._slots.release()

    def _exchange(self, conn: Conn, req: RawRequest, body: bytes) -> Answer:
        length = b"Content-Length: %d\r\n\r\n" % len(body) if body else b"\r\n"
        # On a write error the server may have answered (e.g. 413) and closed: read it.
        with contextlib.suppress(httpx.WriteError):
            conn.send(req.head + length + body, req.timeouts.get("write"))
        while True:
            answer = read_head(conn, req.timeouts.get("read"))
            if not 100 <= answer.status < 200 or answer.status == 101:
                return answer

    def _checkout(self, req: RawRequest) -> Conn | None:
        key = (req.https, req.host, req.port)
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
                conn.buf or _readable(conn.sock)
            ):
                conn.close()  # expired, closed by the server, or junk: not reused
                continue
            return conn

    def _checkin(self, req: RawRequest, conn: Conn) -> None:
        conn.idle_since = time.monotonic()
        drop: Conn | None = None
        with self._lock:
            if self._closed:
                drop = conn
            else:
                self._idle.setdefault((req.https, req.host, req.port), []).append(conn)
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

    def _connect(self, req: RawRequest) -> Conn:
        timeout = bounded(req.timeouts.get("connect"), httpx.ConnectTimeout)
        if self.policy is None:
            addresses = [req.host]
        else:
            try:
                addresses = self.policy.resolve(req.host, req.port)
            except OSError as exc:
                raise httpx.ConnectError(f"cannot resolve {req.host}: {exc}") from exc
        sock = _open(addresses, req.port, timeout)
        if req.https:
            sock = self._start_tls(sock, req)
        return Conn(sock)

    def _start_tls(self, sock: socket.socket, req: RawRequest) -> socket.socket:
        context = self.ssl_context or ssl.create_default_context()
        try:
            sock.settimeout(bounded(req.timeouts.get("connect"), httpx.ConnectTimeout))
            return context.wrap_socket(sock, server_hostname=req.sni)
        except TimeoutError as exc:
            sock.close()
            raise httpx.ConnectTimeout(str(exc)) from exc
        except OSError as exc:  # ssl.SSLError (certificate, handshake) included
            sock.close()
            raise httpx.ConnectError(str(exc)) from exc
        except BaseException:
            sock.close()
            raise


def _open(addresses: list[str], port: int, timeout: float | None) -> socket.socket:
    last: Exception | None = None
    for address in addresses:
        try:
            sock = socket.create_connection((address, port), timeout)
        except TimeoutError as exc:
            last = httpx.ConnectTimeout(str(exc))
            last.__cause__ = exc
            continue
        except OSError as exc:
            last = httpx.ConnectError(str(exc))
            last.__cause__ = exc
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    assert last is not None
    raise last


def _readable(sock: socket.socket) -> bool:
    """Data (or the end) waiting on an idle connection, as httpcore checks it;
    plus bytes TLS already decrypted."""
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))
