"""One asyncio Redis connection on which concurrent callers' commands are
pipelined: the ingest fast lane's client (``api.ingest_core``).

redis-py's asyncio client costs about 170 µs of CPU a command on the events
POST (pool, retry wrapper, time-out context, a read loop per reply), a sixth of
the API's work for a batch of 100 events. Here a command is packed (hiredis),
written, and its future resolved in order by the protocol as replies arrive,
nothing else.

The connection is opened and authenticated by redis-py (``connect()`` of the
twin's pool: TLS, AUTH, SELECT, client name, RESP version, its connect
retries), then the transport is handed to ``_Protocol``. Semantics kept from
redis-py: error replies raise redis-py's exception classes (``NoScriptError``,
``OutOfMemoryError``, ...), and a command with no reply within the client's
``socket_timeout`` raises ``redis.TimeoutError``. A lost connection fails the
commands in flight with ``redis.ConnectionError`` (the API answers 503; the
command may or may not have run, as with redis-py) and the next command
connects again. A command is never sent twice.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import hiredis
import redis
import redis.asyncio
from redis._parsers.base import BaseParser
from redis.exceptions import InvalidResponse

_Pending = tuple[asyncio.Future[Any], asyncio.TimerHandle | None]


class _Protocol(asyncio.Protocol):
    """Replies in order to the pending futures (see the module docstring)."""

    def __init__(self, reader: hiredis.Reader, timeout: float | None) -> None:
        self.reader = reader
        self.timeout = timeout
        self.pending: collections.deque[_Pending] = collections.deque()
        self.transport: asyncio.Transport | None = None
        self.writer: asyncio.StreamWriter | None = None  # held: its __del__ would close
        self.lost: BaseException | None = None
        self._drain: asyncio.Future[None] | None = None

    # -- asyncio callbacks -----------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        pending = self.pending
        while True:
            try:
                reply = self.reader.gets()
            except InvalidResponse as exc:  # the stream is broken: nothing more is trusted
                self.fail(redis.ConnectionError(f"invalid reply from Redis: {exc}"))
                return
            if reply is False:
                return
            if not pending:
                self.fail(redis.ConnectionError("a reply from Redis with no command waiting"))
                return
            future, timer = pending.popleft()
            if timer is not None:
                timer.cancel()
            if future.done():  # its caller was cancelled: the reply is dropped
                continue
            if isinstance(reply, redis.RedisError):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(redis.ConnectionError(f"connection to Redis lost: {exc or 'closed'}"))

    def pause_writing(self) -> None:
        if self._drain is None:
            self._drain = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)

    # -- ours ------------------------------------------------------------------

    def fail(self, error: BaseException) -> None:
        """Fail every command in flight with ``error`` and close the connection."""
        if self.lost is None:
            self.lost = error
        while self.pending:
            future, timer = self.pending.popleft()
            if timer is not None:
                timer.cancel()
            if not future.done():
                future.set_exception(error)
        self.resume_writing()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def closing(self) -> bool:
        return self.transport is None or self.transport.is_closing()

    def _timed_out(self) -> None:
        self.fail(redis.TimeoutError(f"no reply from Redis within {self.timeout} s"))

    async def send(self, packed: bytes) -> Any:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        timer = None if self.timeout is None else loop.call_later(self.timeout, self._timed_out)
        self.pending.append((future, timer))
        assert self.transport is not None
        self.transport.write(packed)
        if self._drain is not None:
            await asyncio.shield(self._drain)
        return await future


class PipelinedRedis:
    """Lean connections to the server of the redis-py asyncio client ``twin``
    (its connection settings); ``execute_command``, ``evalsha`` and
    ``script_load`` as on a redis-py client (what ``storage.scripts`` calls),
    with raw replies (no response callbacks: ``PING`` gives ``b"PONG"``).

    A command goes to an idle connection, else to a new one (up to
    ``max_connections``), else is pipelined behind the least busy: concurrent
    commands travel on separate sockets, which Redis reads in the same turn of
    its event loop (it reads at most 16 KB a socket a turn), so that one
    ``fsync`` (``appendfsync always``) covers them all. Bound to the event loop
    it first runs on."""

    def __init__(self, twin: redis.asyncio.Redis, max_connections: int = 32) -> None:
        self.pool = twin.connection_pool
        self.timeout: float | None = self.pool.connection_kwargs.get("socket_timeout")
        self.max_connections = max_connections
        self._open_ones: list[_Protocol] = []
        self._opening = 0
        self._opened: asyncio.Future[None] | None = None  # the next open ends

    async def execute_command(self, *args: Any) -> Any:
        try:
            packed = hiredis.pack_command(args)
        except TypeError as exc:
            raise redis.DataError(str(exc)) from None
        while True:
            protocol = self._pick()
            if protocol is not None:
                return await protocol.send(packed)
            if len(self._open_ones) + self._opening < self.max_connections:
                return await (await self._open_counted()).send(packed)
            if self._opened is None:  # every slot is being opened: wait for one
                self._opened = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._opened)

    async def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        return await self.execute_command("EVALSHA", sha, numkeys, *keys_and_args)

    async def script_load(self, script: str) -> Any:
        return await self.execute_command("SCRIPT", "LOAD", script)

    async def aclose(self) -> None:
        ones, self._open_ones = self._open_ones, []
        for protocol in ones:
            protocol.fail(redis.ConnectionError("the client was closed"))

    def _pick(self) -> _Protocol | None:
        """An idle live connection; else, when no other may be opened, the
        least busy (None when there is none yet, or another may be opened)."""
        ones = self._open_ones
        if any(p.lost is not None or p.closing() for p in ones):
            ones[:] = [p for p in ones if p.lost is None and not p.closing()]
        best = None
        for protocol in ones:
            if not protocol.pending:
                return protocol
            if best is None or len(protocol.pending) < len(best.pending):
                best = protocol
        return None if len(ones) + self._opening < self.max_connections else best

    async def _open_counted(self) -> _Protocol:
        self._opening += 1
        try:
            protocol = await self._open()
            self._open_ones.append(protocol)
            return protocol
        finally:
            self._opening -= 1
            opened, self._opened = self._opened, None
            if opened is not None and not opened.done():
                opened.set_result(None)

    async def _open(self) -> _Protocol:
        conn = self.pool.make_connection()
        await conn.connect()  # redis-py: socket, TLS, handshake, its retries
        writer = conn._writer
        if writer is None:  # pragma: no cover - connect() raises instead
            raise redis.ConnectionError("could not connect to Redis")
        kwargs: dict[str, Any] = {
            "protocolError": InvalidResponse,
            "replyError": BaseParser.parse_error,
        }
        if conn.encoder.decode_responses:
            kwargs["encoding"] = conn.encoder.encoding
            kwargs["errors"] = conn.encoder.encoding_errors
        protocol = _Protocol(hiredis.Reader(**kwargs), self.timeout)
        transport = writer.transport
        conn._writer = conn._reader = None  # ours now: redis-py must not close it
        protocol.transport, protocol.writer = transport, writer  # type: ignore[assignment]
        transport.set_protocol(protocol)
        if transport.is_closing():
            protocol.fail(redis.ConnectionError("connection to Redis lost while opening"))
        return protocol
