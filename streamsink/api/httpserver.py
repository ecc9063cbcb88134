"""uvicorn's HTTP/1.1 protocol with deadlines for slow clients (slowloris).

uvicorn has no timeout while a request arrives: ``timeout_keep_alive`` only
covers the idle time between requests and is reset by every byte, and ASGI
middleware runs only once the headers are complete. ``DeadlineProtocol``
arms one timer per connection:

- headers: from the connection (or the first byte of a kept-alive
  connection's next request) to the end of the headers, ``header_timeout`` s;
- body: from the end of the headers to the end of the body, ``body_timeout``
  s, whether or not the app reads it.

On expiry the connection gets a 408 (unless a response was started, or no
byte of a request came) and is closed; the app, if it was waiting for the
body, sees ``http.disconnect``. Responses are never timed: the timer is
disarmed once the request is in.

The connection's writes go through ``CoalescingTransport``: uvicorn writes a
response's head and its body separately (two ``send`` calls, two TCP segments
and two wake-ups of the client for a 202 ``{}``); writes made in one turn of
the event loop now leave in one ``write`` at its end, in order.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from streamsink.settings import Settings


class CoalescingTransport:
    """A transport whose writes made in one turn of the event loop are joined
    and written once, at the end of that turn (``call_soon``), in order; any
    other use of the transport (close, EOF, ...) writes what is held first.
    Everything else is the wrapped transport's."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(bytes(data))

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def flush(self) -> None:
        held, self._held = self._held, []
        if held and not self._transport.is_closing():
            self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.flush()
        self._transport.set_protocol(protocol)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class DeadlineProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with header and body deadlines (class attributes)."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._request_begun = False

    # -- timer ---------------------------------------------------------------

    def _arm(self, waiting_for: str, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired, waiting_for, seconds)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self, waiting_for: str, seconds: float) -> None:
        self._deadline = None
        if self.transport is None or self.transport.is_closing():
            return
        cycle = self.cycle
        started = cycle is not None and not cycle.response_complete and cycle.response_started
        if waiting_for == "body" and cycle is not None and cycle.response_complete:
            started = True  # answered without reading the body: just close
        if (waiting_for == "body" or self._request_begun) and not started:
            setting = f"STREAMSINK_HTTP_{waiting_for.upper()}_TIMEOUT"
            self._write_408(f"request {waiting_for} not received within {seconds:g} s ({setting})")
        self.logger.info("closing a connection: request %s not received in time", waiting_for)
        self.transport.close()

    def _write_408(self, detail: str) -> None:
        body = orjson.dumps({"code": "request_timeout", "detail": detail})
        head = [STATUS_LINE[408]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"connection: close\r\n\r\n",
        ]
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.response_started = True  # the app's answer, if any, is dropped
            self.cycle.keep_alive = False
        self.transport.write(b"".join(head) + body)

    # -- protocol and parser hooks -------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        coalescing = CoalescingTransport(transport, self.loop)
        super().connection_made(coalescing)  # type: ignore[arg-type]
        self._arm("header", self.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        idle = self.cycle is None or self.cycle.response_complete
        if self._deadline is None and idle:  # the next request on a kept-alive connection
            self._arm("header", self.header_timeout)
        super().data_received(data)

    def on_message_begin(self) -> None:
        self._request_begun = True
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._arm("body", self.body_timeout)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._request_begun = False
        super().on_message_complete()


def deadline_protocol(header_timeout: float, body_timeout: float) -> type[DeadlineProtocol]:
    """A ``DeadlineProtocol`` with these timeouts (for ``uvicorn.Config(http=...)``)."""
    attrs = {"header_timeout": header_timeout, "body_timeout": body_timeout}
    return type("DeadlineProtocol", (DeadlineProtocol,), attrs)


class EnvDeadlineProtocol(DeadlineProtocol):
    """Timeouts from ``STREAMSINK_HTTP_*`` in the environment: for the API
    processes uvicorn spawns (``--api-processes``), which get the protocol by
    its import path ``streamsink.api.httpserver:EnvDeadlineProtocol``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout, self.body_timeout = _env_timeouts()


@functools.cache
def _env_timeouts() -> tuple[float, float]:
    settings = Settings()
    return settings.http_header_timeout, settings.http_body_timeout
