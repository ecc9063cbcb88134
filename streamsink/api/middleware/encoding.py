"""``Content-Encoding`` of API request bodies: gzip is decoded, anything else is a 415.

ASGI middleware just inside the body limit, so both lanes of the events POST,
the idempotency check and every route see the decoded body. OTLP/HTTP and
other clients compress with gzip (``x-gzip`` is its alias). Decoding stops at
``STREAMSINK_MAX_BODY_BYTES`` of output (413), so a small compressed body cannot
expand past the limit the plain body has.
"""

from __future__ import annotations

import zlib

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from streamsink.api.errors import error_response
from streamsink.errors import BodyTooLarge

SUPPORTED = ("gzip", "identity")
_GZIP = frozenset({"gzip", "x-gzip"})
_IDENTITY = frozenset({"", "identity"})
_THREAD_FROM = 256 * 1024  # decode larger bodies off the event loop


def gunzip(data: bytes, limit: int) -> bytes:
    """The gzip ``data`` decoded (every member), at most ``limit`` bytes of it.

    ``BodyTooLarge`` past ``limit``; ``zlib.error`` when ``data`` is not gzip or
    is truncated."""
    out = bytearray()
    while True:
        decoder = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        out += decoder.decompress(data, limit + 1 - len(out))
        if len(out) > limit or decoder.unconsumed_tail:
            raise BodyTooLarge
        if not decoder.eof:
            raise zlib.error("the gzip data is truncated")
        data = decoder.unused_data
        if not data:
            return bytes(out)


def _encodings(scope: Scope) -> list[str]:
    """The codings applied to the body, in the order they were applied."""
    found: list[str] = []
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-encoding":
            for part in value.decode("latin-1").split(","):
                coding = part.strip().lower()
                if coding not in _IDENTITY:
                    found.append(coding)
    return found


class ContentEncodingMiddleware:
    """Decode gzip request bodies under ``/api/`` (POST, PUT, PATCH); 415 for
    an encoding other than gzip or identity, 400 for a body that is not gzip."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in ("POST", "PUT", "PATCH")
            or not scope["path"].startswith("/api/")
        ):
            return await self.app(scope, receive, send)
        codings = _encodings(scope)
        if not codings:
            return await self.app(scope, receive, send)
        unknown = next((c for c in codings if c not in _GZIP), None)
        if unknown is not None:
            detail = (
                f"Content-Encoding {unknown!r} is not supported; send the body"
                f" with one of: {', '.join(SUPPORTED)}"
            )
            response = error_response(415, "unsupported_media_type", detail)
            return await response(scope, receive, send)
        body = await _read_body(receive)
        if body is None:
            return None  # the client left
        try:
            for _ in codings:
                if len(body) > _THREAD_FROM:
                    body = await run_in_threadpool(gunzip, body, self.max_bytes)
                else:
                    body = gunzip(body, self.max_bytes)
        except BodyTooLarge:
            detail = (
                f"request body larger than {self.max_bytes} bytes once decompressed"
                " (STREAMSINK_MAX_BODY_BYTES)"
            )
            response = error_response(413, "payload_too_large", detail)
            return await response(scope, receive, send)
        except zlib.error as exc:
            detail = f"the body is not valid gzip (Content-Encoding: gzip): {exc}"
            return await error_response(400, "bad_request", detail)(scope, receive, send)
        headers = [
            (k, v)
            for k, v in scope["headers"]
            if k.lower() not in (b"content-encoding", b"content-length")
        ]
        headers.append((b"content-length", str(len(body)).encode()))
        await self.app({**scope, "headers": headers}, _replay(body, receive), send)


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay
