"""The outermost step of every request: the bearer token parsed once, the body
read, bounded and decoded once.

``RequestBodyMiddleware`` parses ``Authorization`` into ``scope[deps.TOKEN]``.
For POST, PUT and PATCH it then reads the body once, answering as the API
always has:

- 400 ``bad_request`` for a Content-Length that is not a number;
- 413 ``payload_too_large`` for a declared or received body over
  ``STREAMSINK_MAX_BODY_BYTES`` (read stops at the limit + 1 byte);
- under ``/api/``: 415 ``unsupported_media_type`` for a Content-Encoding other
  than gzip or identity, gzip decoded (every member) up to the same limit of
  output (413 past it, 400 for a body that is not gzip).

The decoded body is left in ``scope[BODY]`` (the idempotency check and the
ingest fast lane read it there, no copy) and replayed as one
``http.request`` message to whatever reads ``receive`` (FastAPI). A decoded
body's request loses its Content-Encoding and gets its new Content-Length.

Not buffered: ``POST /v1/traces``, the OTLP receiver, which reads its body as
it arrives, decompressing, up to its own limit (STREAMSINK_LOCAL_MAX_BODY_BYTES)
and answers OTLP errors. A client that leaves before its body is complete (or
that ``api.httpserver`` times out: a 408 was already written) gets no answer.
"""

from __future__ import annotations

import zlib

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from streamsink.api.deps import parse_token
from streamsink.api.errors import error_response
from streamsink.api.middleware.encoding import SUPPORTED, codings_of, gunzip, is_gzip
from streamsink.errors import BodyTooLarge

BODY = "streamsink.body"  #: scope key: the decoded request body (bytes)
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
_THREAD_FROM = 256 * 1024  # decode larger bodies off the event loop


class RequestBodyMiddleware:
    """See the module docstring."""

    UNBOUNDED_PATHS = frozenset({"/v1/traces"})

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        parse_token(scope)
        if scope["method"] not in _WITH_BODY or scope["path"] in self.UNBOUNDED_PATHS:
            return await self.app(scope, receive, send)
        for name, value in scope["headers"]:
            if name.lower() == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    return await _error(send, 400, "bad_request", "invalid Content-Length")
                if declared > self.max_bytes:
                    return await self._too_large(send)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None  # the client left (or timed out: answered 408 already)
            chunk = message.get("body", b"")
            if chunk:
                chunks.append(chunk)
                size += len(chunk)
                if size > self.max_bytes:
                    return await self._too_large(send)
            if not message.get("more_body", False):
                break
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        codings = codings_of(scope) if scope["path"].startswith("/api/") else []
        if codings:
            unknown = next((c for c in codings if not is_gzip(c)), None)
            if unknown is not None:
                detail = (
                    f"Content-Encoding {unknown!r} is not supported; send the body"
                    f" with one of: {', '.join(SUPPORTED)}"
                )
                response = error_response(415, "unsupported_media_type", detail)
                return await response(scope, _replay(body, receive), send)
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
            scope = {**scope, "headers": headers}
        scope[BODY] = body
        await self.app(scope, _replay(body, receive), send)

    async def _too_large(self, send: Send) -> None:
        detail = f"request body larger than {self.max_bytes} bytes (STREAMSINK_MAX_BODY_BYTES)"
        await _error(send, 413, "payload_too_large", detail)


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` that gives ``body`` as one message first (the same object)."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


async def _error(send: Send, status: int, code: str, detail: str) -> None:
    """An error answer before the body is read (the connection is closed)."""
    body = orjson.dumps({"code": code, "detail": detail})
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
