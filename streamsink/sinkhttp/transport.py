"""The one seam between the delivery client and the network.

A ``Transport`` sends one prepared POST (``Request``, built once per sink by the
client) and returns a ``Response``: status, headers, at most ``limit`` bytes of
the decoded body. It raises ``streamsink.errors``' transport tree
(``ConnectError``, ``ReadTimeout``, ...) or ``DestinationRefused``; the client
classifies both. Implementations:

- ``sinkhttp.http1.RawPool``: raw HTTP/1.1 keep-alive pool, the default and hot path;
- ``sinkhttp.httpx_transport.HttpxTransport``: httpx, for what the raw pool does
  not do (credentials in the URL, requests h11 refuses, a caller's own client);
- ``MockTransport``: an in-memory handler, for tests.

Both real transports connect through ``sinkhttp.sockets.connect`` (destination
policy) and bound every wait by the request deadline (``sinkhttp.deadline``).

Every request runs inside ``network_wait``'s hook when one is set for the
thread (the worker's delivery pool sets it: ``streamsink.delivery.lanes``), with the
request's origin: the pool moves the thread to its waiting lane meanwhile.
"""

from __future__ import annotations

import contextlib
import threading
import typing
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import NamedTuple, Protocol

from streamsink.sinkhttp.deadline import request_deadline

__all__ = [
    "MockTransport",
    "Origin",
    "Request",
    "Response",
    "Transport",
    "network_wait",
    "request_deadline",
    "waiting",
]

Origin = tuple[str, str, int]  # scheme, host (IPv6 without brackets), port
#: Entered around each request of this thread, given its origin (None: no hook).
network_wait: ContextVar[Callable[[Origin], typing.ContextManager[None]] | None] = ContextVar(
    "streamsink_network_wait", default=None
)


def waiting(origin: Origin) -> typing.ContextManager[None]:
    """The thread's ``network_wait`` hook for ``origin`` (a no-op without one)."""
    hook = network_wait.get()
    return contextlib.nullcontext() if hook is None else hook(origin)


class Request(NamedTuple):
    """A POST as built once per sink: everything but the body and Content-Length."""

    url: str  # as given (may carry credentials: only httpx sends those)
    origin: Origin
    headers: tuple[tuple[bytes, bytes], ...]  # as sent, Host first
    timeouts: Mapping[str, float | None]  # httpx's: connect, read, write, pool
    head: bytes | None  # the raw pool's request line + headers (None: httpx only)
    method: str = "POST"  # http sinks: also PUT or PATCH

    def header(self, name: str) -> str | None:
        """A request header's value (the first of that name), for tests and logs."""
        key = name.lower().encode("ascii")
        for k, v in self.headers:
            if k.lower() == key:
                return v.decode("latin-1")
        return None


class Response(NamedTuple):
    status: int
    headers: Mapping[str, str]  # looked up by lower-case name
    body: bytes  # at most the ``limit`` asked for, content-decoded


class Transport(Protocol):
    def send(self, request: Request, body: bytes, limit: int) -> Response:
        """POST ``body``; raises the transport error tree or ``DestinationRefused``."""
        ...

    def close(self) -> None: ...


Handler = Callable[[Request, bytes], Response]


class MockTransport:
    """Answers every request with ``handler(request, body)`` in memory (like
    ``httpx.MockTransport``); the handler may raise a transport error to play a
    network failure. Records each (request, body) in ``sent``; thread-safe."""

    def __init__(self, handler: Handler):
        self.handler = handler
        self.sent: list[tuple[Request, bytes]] = []
        self._lock = threading.Lock()

    def send(self, request: Request, body: bytes, limit: int) -> Response:
        with self._lock:
            self.sent.append((request, body))
        status, headers, data = self.handler(request, body)
        return Response(status, {k.lower(): v for k, v in headers.items()}, data[:limit])

    def close(self) -> None:
        pass
