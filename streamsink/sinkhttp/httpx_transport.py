"""The httpx-based ``Transport``: the fallback for what the raw pool does not do
(credentials in the URL, requests h11 refuses, a caller's own ``httpx.Client``).

``guarded_client`` builds an ``httpx.Client`` whose transport is httpcore's
connection pool over ``GuardedBackend``: connections are opened by
``sinkhttp.sockets.connect`` (destination policy) and every socket wait is
bounded by the request deadline. Only public httpx and httpcore interfaces are
used. httpx's and httpcore's exceptions are translated into the transport tree
of ``streamsink.errors`` (same class names).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
import typing
from collections.abc import Iterator

import httpcore
import httpx

from streamsink import errors
from streamsink.sinkhttp.deadline import bounded
from streamsink.sinkhttp.netguard import DestinationPolicy
from streamsink.sinkhttp.sockets import connect, read_bounded, readable, start_tls
from streamsink.sinkhttp.transport import Request, Response

_HTTPCORE_ERRORS = (
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
    httpcore.ProxyError,
)
_NAMES: dict[str, type[errors.TransportError]] = {
    "ConnectTimeout": errors.ConnectTimeout,
    "ReadTimeout": errors.ReadTimeout,
    "WriteTimeout": errors.WriteTimeout,
    "PoolTimeout": errors.PoolTimeout,
    "TimeoutException": errors.TimeoutException,
    "ConnectError": errors.ConnectError,
    "ReadError": errors.ReadError,
    "WriteError": errors.WriteError,
    "NetworkError": errors.NetworkError,
    "ProxyError": errors.ConnectError,
    "RemoteProtocolError": errors.RemoteProtocolError,
    "LocalProtocolError": errors.InvalidRequest,
    "UnsupportedProtocol": errors.InvalidRequest,
    "InvalidURL": errors.InvalidRequest,
    "ProtocolError": errors.RemoteProtocolError,
}


def translate(exc: Exception) -> errors.TransportError:
    """The ``streamsink.errors`` transport error for an httpx or httpcore one."""
    for cls in type(exc).__mro__:
        found = _NAMES.get(cls.__name__)
        if found is not None:
            return found(str(exc))
    return errors.TransportError(str(exc))


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except (httpx.TransportError, httpx.InvalidURL, *_HTTPCORE_ERRORS) as exc:
        raise translate(exc) from exc


class HttpxTransport:
    """POSTs through ``client`` (``httpx.Client.send``: Basic auth from URL
    credentials, the client's own transport)."""

    def __init__(self, client: httpx.Client):
        self.client = client

    def send(self, request: Request, body: bytes, limit: int) -> Response:
        with _translated():
            req = httpx.Request(
                request.method,
                request.url,
                headers=list(request.headers),
                content=body,
                extensions={"timeout": dict(request.timeouts)},
            )
            response = self.client.send(req, stream=True)
        try:
            data, _ = read_bounded(response.iter_bytes(), limit)
        finally:
            response.close()
        return Response(response.status_code, response.headers, data)

    def close(self) -> None:
        self.client.close()


def ssl_context(verify: ssl.SSLContext | bool) -> ssl.SSLContext:
    """httpx's TLS context for ``verify`` (certifi's CAs by default), HTTP/1.1 only."""
    context = verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(verify)
    context.set_alpn_protocols(["http/1.1"])  # as httpcore sets it (no HTTP/2)
    return context


def guarded_client(
    policy: DestinationPolicy | None,
    context: ssl.SSLContext,
    limits: httpx.Limits,
    **kwargs: typing.Any,
) -> httpx.Client:
    """An ``httpx.Client`` connecting only through ``GuardedBackend``."""
    pool = httpcore.ConnectionPool(
        ssl_context=context,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=GuardedBackend(policy),
    )
    return httpx.Client(transport=_PoolTransport(pool), limits=limits, **kwargs)


class _PoolTransport(httpx.BaseTransport):
    """httpx over an httpcore pool (what ``httpx.HTTPTransport`` does, with our pool)."""

    def __init__(self, pool: httpcore.ConnectionPool):
        self._pool = pool

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        assert isinstance(request.stream, typing.Iterable)
        req = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _translated():
            response = self._pool.handle_request(req)
        return httpx.Response(
            response.status,
            headers=response.headers,
            stream=_Body(response),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()


class _Body(httpx.SyncByteStream):
    def __init__(self, response: httpcore.Response):
        self._response = response

    def __iter__(self) -> Iterator[bytes]:
        assert isinstance(self._response.stream, typing.Iterable)
        with _translated():
            yield from self._response.stream

    def close(self) -> None:
        self._response.close()


class GuardedBackend(httpcore.NetworkBackend):
    """httpcore's network backend: ``sockets.connect`` + the request deadline."""

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
        return _Stream(connect(self.policy, host, port, timeout))

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        raise errors.InvalidRequest("unix sockets are not sinks")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class _Stream(httpcore.NetworkStream):
    """A socket whose waits end at the request deadline; httpcore's errors (its
    HTTP/1.1 code reads an early answer after a ``WriteError``)."""

    def __init__(self, sock: socket.socket):
        self._sock = sock

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self._sock.settimeout(bounded(timeout, httpcore.ReadTimeout))
        try:
            return self._sock.recv(max_bytes)
        except TimeoutError as exc:
            raise httpcore.ReadTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpcore.ReadError(str(exc)) from exc

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        view = memoryview(buffer)
        while view:
            self._sock.settimeout(bounded(timeout, httpcore.WriteTimeout))
            try:
                view = view[self._sock.send(view) :]
            except TimeoutError as exc:
                raise httpcore.WriteTimeout(str(exc)) from exc
            except OSError as exc:
                raise httpcore.WriteError(str(exc)) from exc

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        return _Stream(start_tls(self._sock, ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> typing.Any:
        sock = self._sock
        if info == "ssl_object":
            return sock if isinstance(sock, ssl.SSLSocket) else None
        if info == "client_addr":
            return sock.getsockname()
        if info == "server_addr":
            return sock.getpeername()
        if info == "socket":
            return sock
        if info == "is_readable":
            return readable(sock)
        return None
