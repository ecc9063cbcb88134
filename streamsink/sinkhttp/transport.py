"""The delivery client's one transport seam: httpx over httpcore's socket
backend, with two additions, and a raw HTTP/1.1 fast path for POSTs.

- Destination policy: a host is resolved here and only addresses the
  ``DestinationPolicy`` allows are connected to (the check and the connection
  use the same address: no DNS rebinding).
- Request deadline: inside ``request_deadline(seconds)`` (``otlp.deadline``),
  every socket read and write waits at most until the deadline, so a receiver
  that drips its status line, headers or body a byte at a time (each read
  beating the read timeout) still ends in a ``ReadTimeout`` at the deadline.

``DeliveryTransport.post`` is the hot path: a ``Prepared`` request (URL, headers
and timeouts built once by httpx per sink) goes to ``otlp.http1``'s keep-alive
pool (same policy, TLS context, timeouts, deadline and httpx exceptions), or,
for a request h11 would refuse, to httpcore's pool, which says why.

Every request runs inside ``network_wait``'s hook when one is set for the
thread (the worker's delivery pool sets it: ``streamsink.delivery.lanes``), with the
request's origin: the pool moves the thread to its waiting lane meanwhile.
"""

from __future__ import annotations

import contextlib
import typing
from collections.abc import Callable
from contextvars import ContextVar
from typing import NamedTuple

import httpcore
import httpx
from httpx._transports.default import ResponseStream, map_httpcore_exceptions

from streamsink.sinkhttp.deadline import bounded as _bounded
from streamsink.sinkhttp.deadline import request_deadline
from streamsink.sinkhttp.http1 import Http1Pool, RawRequest
from streamsink.sinkhttp.netguard import DestinationPolicy

__all__ = [
    "DeliveryBackend",
    "DeliveryTransport",
    "Origin",
    "Prepared",
    "network_wait",
    "request_deadline",
]

Origin = tuple[str, str, int]  # scheme, host (IPv6 without brackets), port
#: Entered around each request of this thread, given its origin (None: no hook).
network_wait: ContextVar[Callable[[Origin], typing.ContextManager[None]] | None] = ContextVar(
    "streamsink_network_wait", default=None
)


def _waiting(origin: Origin) -> typing.ContextManager[None]:
    hook = network_wait.get()
    return contextlib.nullcontext() if hook is None else hook(origin)


class DeadlineStream(httpcore.NetworkStream):
    """A network stream whose reads and writes respect the request deadline."""

    def __init__(self, inner: httpcore.NetworkStream):
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: typing.Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        return DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, bounded))

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class DeliveryBackend(httpcore.SyncBackend):
    """httpcore's socket backend + destination policy + request deadline."""

    def __init__(self, policy: DestinationPolicy | None = None):
        self.policy = policy

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        timeout = _bounded(timeout, httpcore.ConnectTimeout)
        if self.policy is None:
            inner = super().connect_tcp(host, port, timeout, local_address, socket_options)
            return DeadlineStream(inner)
        try:
            addresses = self.policy.resolve(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        last: Exception | None = None
        for address in addresses:
            try:
                inner = super().connect_tcp(address, port, timeout, local_address, socket_options)
                return DeadlineStream(inner)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last


class DeliveryTransport(httpx.HTTPTransport):
    """``httpx.HTTPTransport`` whose pool connects through ``DeliveryBackend``."""

    def __init__(
        self, policy: DestinationPolicy | None, limits: httpx.Limits, **kwargs: typing.Any
    ):
        super().__init__(limits=limits, **kwargs)
        old = self._pool
        assert isinstance(old, httpcore.ConnectionPool)
        self._pool = httpcore.ConnectionPool(
            ssl_context=old._ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=old._http1,
            http2=old._http2,
            retries=old._retries,
            network_backend=DeliveryBackend(policy),
        )
        old.close()
        ssl_context = self._pool._ssl_context
        if ssl_context is not None:
            ssl_context.set_alpn_protocols(["http/1.1"])  # as httpcore sets it (no HTTP/2)
        self._http1 = Http1Pool(
            policy,
            ssl_context,
            max_connections=limits.max_connections,
            max_keepalive=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
        )

    def close(self) -> None:
        self._http1.close()
        super().close()

    def post(
        self, prepared: Prepared, body: bytes, limit: int
    ) -> tuple[int, typing.Mapping[str, str], bytes]:
        """POST ``body``: (status, headers, at most ``limit`` bytes of the decoded body).
        Raises httpx's exceptions, like ``httpx.Client.send``. Header names in
        the answer are looked up in lower case."""
        raw = prepared.raw
        if raw is not None:
            with _waiting(("https" if raw.https else "http", raw.host, raw.port)):
                return self._http1.post(raw, body, limit)
        headers = prepared.headers
        if body:
            headers = [*headers, (b"Content-Length", str(len(body)).encode())]
        url = prepared.url
        request = httpcore.Request(
            b"POST", url, headers=headers, content=body, extensions=prepared.extensions
        )
        with _waiting(_origin(url.scheme, url.host, url.port)):
            with map_httpcore_exceptions():
                response = self._pool.handle_request(request)
            try:
                answer = httpx.Headers(response.headers)
                return response.status, answer, _read_bounded(response, answer, limit)
            finally:
                response.close()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """httpx.Client's path (URLs with credentials): waiting for the answer's
        head counts as waiting; its body is read after (bounded by the deadline)."""
        url = request.url
        with _waiting(_origin(url.raw_scheme, url.raw_host, url.port)):
            return super().handle_request(request)


class Prepared(NamedTuple):
    """A POST's URL, headers (all but Content-Length) and timeouts, as httpx built
    them; ``raw``: the same for ``otlp.http1`` (None when h11 refuses them)."""

    url: httpcore.URL
    headers: list[tuple[bytes, bytes]]
    extensions: dict[str, typing.Any]
    raw: RawRequest | None = None

    @classmethod
    def of(cls, request: httpx.Request) -> Prepared:
        u = request.url
        url = httpcore.URL(scheme=u.raw_scheme, host=u.raw_host, port=u.port, target=u.raw_path)
        headers = [(k, v) for k, v in request.headers.raw if k.lower() != b"content-length"]
        return cls(url, headers, dict(request.extensions), RawRequest.of(request))


def _origin(scheme: bytes, host: bytes, port: int | None) -> Origin:
    name = scheme.decode("ascii")
    return (name, host.decode("ascii"), port or (443 if name == "https" else 80))


def _read_bounded(response: httpcore.Response, headers: httpx.Headers, limit: int) -> bytes:
    """At most ``limit`` bytes, content-decoded as httpx would; a broken body
    only shortens what was read (a slow drip ends at the request deadline)."""
    assert isinstance(response.stream, typing.Iterable)
    chunks: typing.Iterable[bytes] = response.stream
    if headers.get("content-encoding", "identity").strip().lower() != "identity":
        wrapped = httpx.Response(response.status, headers=headers, stream=ResponseStream(chunks))
        chunks = wrapped.iter_bytes()
    out: list[bytes] = []
    size = 0
    try:
        with map_httpcore_exceptions():
            for chunk in chunks:
                out.append(chunk)
                size += len(chunk)
                if size >= limit:
                    break
    except (httpx.HTTPError, ValueError):
        pass
    return b"".join(out)[:limit]
