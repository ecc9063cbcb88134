"""The answer side of ``sinkhttp.http1``: one pooled socket (``Conn``) and a small
HTTP/1.1 response parser with h11's grammar and httpcore's limits: status line,
headers (obsolete line folding, repeated names joined with ", "), bodies framed
by ``Transfer-Encoding: chunked``, ``Content-Length`` or the end of the
connection, content-decoding as httpx does, at most ``limit`` bytes read.
Protocol violations raise ``RemoteProtocolError``, socket errors
``ReadError``/``ReadTimeout`` (every wait bounded by the request deadline).
"""

from __future__ import annotations

import contextlib
import re
import socket
from collections.abc import Iterator
from typing import Any, NamedTuple

import httpx

from streamsink.errors import (
    ReadError,
    ReadTimeout,
    RemoteProtocolError,
    WriteError,
    WriteTimeout,
)
from streamsink.sinkhttp.deadline import bounded
from streamsink.sinkhttp.sockets import read_bounded

READ_BYTES = 64 * 1024
MAX_HEAD = 100 * 1024  # httpcore's limit for an incomplete status line + headers
_TOKEN = rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+"
_VCHAR = rb"[\x21-\x7e\x80-\xff]"
_HEADER = re.compile(rb"(%s):[ \t]*((?:%s+(?:[ \t]+%s+)*)?)[ \t]*" % (_TOKEN, _VCHAR, _VCHAR))
_STATUS = re.compile(rb"HTTP/([0-9]\.[0-9]) ([0-9]{3})(?: [ \t\x21-\x7e\x80-\xff]*)?")
_CHUNK = re.compile(rb"([0-9A-Fa-f]{1,20})(?:;.*)?[ \t]*")
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_LINE_END = re.compile(rb"\r?\n")


class Conn:
    """A socket and the bytes read from it but not parsed yet."""

    __slots__ = ("sock", "buf", "idle_since")

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = bytearray()
        self.idle_since = 0.0

    def recv(self, timeout: float | None) -> bytes:
        self.sock.settimeout(bounded(timeout, ReadTimeout))
        try:
            return self.sock.recv(READ_BYTES)
        except TimeoutError as exc:
            raise ReadTimeout(str(exc)) from exc
        except OSError as exc:
            raise ReadError(str(exc)) from exc

    def send(self, data: bytes, timeout: float | None) -> None:
        view = memoryview(data)
        while view:
            self.sock.settimeout(bounded(timeout, WriteTimeout))
            try:
                sent = self.sock.send(view)
            except TimeoutError as exc:
                raise WriteTimeout(str(exc)) from exc
            except OSError as exc:
                raise WriteError(str(exc)) from exc
            view = view[sent:]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class Answer(NamedTuple):
    """A status line and headers (the body is still to be read)."""

    status: int
    headers: dict[str, str]  # lower-case names, repeated headers joined with ", "
    reusable: bool  # keep-alive and a framed body


def read_head(conn: Conn, timeout: float | None) -> Answer:
    buf = conn.buf
    start = 0
    while True:
        found = _HEAD_END.search(buf, start)
        if found is not None:
            break
        if len(buf) > MAX_HEAD:
            raise RemoteProtocolError("Receive buffer too long")
        start = max(0, len(buf) - 3)
        data = conn.recv(timeout)
        if not data:
            if buf:
                raise RemoteProtocolError("peer unexpectedly closed connection")
            raise RemoteProtocolError("Server disconnected without sending a response.")
        buf += data
    head = bytes(buf[: found.start()])
    del buf[: found.end()]
    return _parse_head(_LINE_END.split(head))


def _parse_head(lines: list[bytes]) -> Answer:
    status_line = _STATUS.fullmatch(lines[0])
    if status_line is None:
        raise RemoteProtocolError(f"illegal status line: {lines[0][:100]!r}")
    fields: list[list[bytes]] = []
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t") and fields:  # obsolete line folding
            fields[-1][1] += b" " + line.strip(b" \t")
            continue
        field = _HEADER.fullmatch(line)
        if field is None:
            raise RemoteProtocolError(f"illegal header line: {line[:100]!r}")
        fields.append([field.group(1).lower(), field.group(2)])
    headers: dict[str, str] = {}
    for name, value in fields:
        key, text = name.decode("ascii"), _text(value)
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    version, status = status_line.group(1), int(status_line.group(2))
    tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    return Answer(status, headers, version == b"1.1" and "close" not in tokens)


def _text(value: bytes) -> str:
    try:
        return value.decode("ascii")
    except UnicodeDecodeError:
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value.decode("iso-8859-1")


def read_body(conn: Conn, answer: Answer, timeout: float | None, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` decoded bytes and whether the body was read to its end
    (a broken or dripping body only shortens what was read)."""
    headers, status = answer.headers, answer.status
    reader = _BodyReader(conn, timeout)
    if status in (204, 304) or status < 200:
        chunks: Iterator[bytes] = iter(())
        reader.done = status != 101
    elif "transfer-encoding" in headers:
        if headers["transfer-encoding"].strip().lower() != "chunked":
            raise RemoteProtocolError("unsupported Transfer-Encoding")
        chunks = reader.chunked()
    elif "content-length" in headers:
        lengths = {v.strip() for v in headers["content-length"].split(",")}
        if len(lengths) != 1 or not next(iter(lengths)).isdigit():
            raise RemoteProtocolError("bad Content-Length")
        chunks = reader.sized(int(next(iter(lengths))))
    else:
        chunks = reader.until_close()
        answer = answer._replace(reusable=False)
    encoding = headers.get("content-encoding", "identity").strip().lower()
    if encoding != "identity":
        raw = [(k.encode(), v.encode("utf-8")) for k, v in headers.items()]
        chunks = httpx.Response(status, headers=raw, stream=_Stream(chunks)).iter_bytes()
    data, complete = read_bounded(chunks, limit)
    return data, complete and reader.done


class _Stream(httpx.SyncByteStream):
    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks


class _BodyReader:
    """The raw body chunks of one answer; ``done`` once it was read to its end."""

    def __init__(self, conn: Conn, timeout: float | None):
        self.conn = conn
        self.timeout = timeout
        self.done = False

    def _more(self) -> bytes:
        data = self.conn.recv(self.timeout)
        if not data:
            raise RemoteProtocolError(
                "peer closed connection without sending complete message body"
            )
        return data

    def sized(self, length: int) -> Iterator[bytes]:
        yield from self._take(length)
        self.done = True

    def _take(self, left: int) -> Iterator[bytes]:
        buf = self.conn.buf
        while left > 0:
            if not buf:
                buf += self._more()
            take = bytes(buf[:left])
            del buf[: len(take)]
            left -= len(take)
            yield take

    def chunked(self) -> Iterator[bytes]:
        while size := int(self._line(_CHUNK).group(1), 16):
            yield from self._take(size)
            if self._line(None) is not None:
                raise RemoteProtocolError("chunk data not followed by CRLF")
        while self._line(None) is not None:  # trailers, up to the blank line
            pass
        self.done = True

    def _line(self, pattern: re.Pattern[bytes] | None) -> Any:
        """The next line matched against ``pattern`` (None: any line; returns
        None for an empty line)."""
        buf = self.conn.buf
        while (end := _LINE_END.search(buf)) is None:
            if len(buf) > MAX_HEAD:
                raise RemoteProtocolError("Receive buffer too long")
            buf += self._more()
        line = bytes(buf[: end.start()])
        del buf[: end.end()]
        if pattern is None:
            return line or None
        found = pattern.fullmatch(line)
        if found is None:
            raise RemoteProtocolError(f"illegal chunk header: {line[:100]!r}")
        return found

    def until_close(self) -> Iterator[bytes]:
        buf = self.conn.buf
        if buf:
            yield bytes(buf)
            buf.clear()
        while data := self.conn.recv(self.timeout):
            yield data
        self.done = True
