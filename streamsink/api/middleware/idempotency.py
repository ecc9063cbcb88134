"""``Idempotency-Key`` on POST: the first answer is replayed for the TTL.

The replay key is a SHA-256 over the bearer token, method, path (with query) and
the client's key, so two tokens never share answers. The first request claims
the key with ``SET NX`` (a short-lived "pending" marker) before it runs; a
concurrent duplicate waits for the first one's answer (409 ``conflict`` if it
takes too long) and never runs the handler itself, so nothing is written twice.
Answers with status < 500 are stored (except 401/429 and answers marked
``Cache-Control: no-store``, such as a freshly minted token, which must not sit
in Redis in plain text) for ``STREAMSINK_IDEMPOTENCY_TTL_SECS``; on a 5xx or an
exception the claim is dropped, so a retry runs again. Replays carry
``Idempotent-Replayed: true``. An answer over ``MAX_STORED_BYTES`` is not
stored either (only a simulation answers that much, and it writes nothing):
Redis holds at most that much per key, for the TTL.

The SHA-256 of the request body is kept with the claim and the answer: the same
key with a different body is refused with 422 ``idempotency_conflict`` (as
Stripe does), never answered with the first request's answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time

import orjson
import redis
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from streamsink.api.deps import authorized, scope_token
from streamsink.api.middleware.body import BODY
from streamsink.settings import Settings
from streamsink.storage import keys, scripts

KEY_PREFIX = keys.IDEMPOTENCY_KEY_PREFIX
PENDING_TTL_SECS = 120
#: The largest answer kept for replay (bytes of body).
MAX_STORED_BYTES = 64 * 1024
WAIT_SECS = 10.0
_POLL_SECS = 0.05
_NOT_STORED = {401, 429}
_THREAD_FROM = 1024 * 1024  # hash larger bodies off the event loop
_CONFLICT = orjson.dumps(
    {
        "code": "idempotency_conflict",
        "detail": "this Idempotency-Key was used with a different request body;"
        " use a new key for a different request",
    }
)


def replay_key(token: str, method: str, path: str, key: str) -> str:
    digest = hashlib.sha256("\n".join((token, method, path, key)).encode()).hexdigest()
    return keys.idempotency(digest)


def body_hash(body: bytes) -> bytes:
    """The fingerprint of a request body kept with its key (hex SHA-256)."""
    return hashlib.sha256(body).hexdigest().encode()


def _stored_hash(stored: bytes) -> bytes | None:
    """The body hash in a pending claim or a stored answer (None in records
    written before hashes were kept)."""
    if stored.startswith(b"pending:"):
        parts = stored.split(b":")
        return parts[2] if len(parts) > 2 else None
    if stored.startswith(b"h:"):
        return stored[2 : stored.index(b"\n")]
    return None


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope.get("headers", []):
        if k.lower() == name:
            return v.decode("latin-1")
    return None


class IdempotencyMiddleware:
    """ASGI middleware applied to authenticated ``POST /api/...`` with the header."""

    def __init__(self, app: ASGIApp, settings: Settings, client: redis.Redis) -> None:
        self.app = app
        self.settings = settings
        self.client = client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        key = (_header(scope, b"idempotency-key") or "").strip()
        token = scope_token(scope)
        if not key or not token or not authorized(scope, self.settings):
            return await self.app(scope, receive, send)
        path = scope["path"]
        if scope.get("query_string"):
            path += "?" + scope["query_string"].decode("latin-1")
        rkey = replay_key(token, "POST", path, key)
        body = scope.get(BODY)
        if body is None:
            body = await _read_body(receive)
            if body is None:
                return None  # the client left before sending its body
            receive = _replay_body(body, receive)
        if len(body) > _THREAD_FROM:
            digest = await run_in_threadpool(body_hash, body)
        else:
            digest = body_hash(body)
        nonce = f"pending:{secrets.token_hex(8)}:{digest.decode()}"
        deadline = time.monotonic() + WAIT_SECS
        while True:
            claimed = await run_in_threadpool(
                self.client.set, rkey, nonce, nx=True, ex=PENDING_TTL_SECS
            )
            if claimed:
                return await self._run_and_store(rkey, nonce, digest, scope, receive, send)
            stored = await run_in_threadpool(self.client.get, rkey)
            if isinstance(stored, str):  # a client with decode_responses=True
                stored = stored.encode()
            if stored is not None and _stored_hash(stored) not in (None, digest):
                return await _send(send, 422, b"application/json", _CONFLICT, replayed=False)
            if stored is not None and not stored.startswith(b"pending:"):
                return await _replay(stored, send)
            if time.monotonic() > deadline:
                body = orjson.dumps(
                    {
                        "code": "conflict",
                        "detail": "a request with this idempotency key is still in progress",
                    }
                )
                return await _send(send, 409, b"application/json", body, replayed=False)
            await asyncio.sleep(_POLL_SECS)

    async def _run_and_store(
        self, rkey: str, nonce: str, digest: bytes, scope: Scope, receive: Receive, send: Send
    ) -> None:
        status = 500
        content_type = b"application/json"
        no_store = False
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status, content_type, no_store
            if message["type"] == "http.response.start":
                status = message["status"]
                for k, v in message.get("headers", []):
                    if k.lower() == b"content-type":
                        content_type = v
                    elif k.lower() == b"cache-control" and b"no-store" in v.lower():
                        no_store = True
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, capture)
        except BaseException:
            await run_in_threadpool(scripts.RELEASE_IF_HELD, self.client, [rkey], [nonce])
            raise
        too_big = sum(len(c) for c in chunks) > MAX_STORED_BYTES
        if status >= 500 or status in _NOT_STORED or no_store or too_big:
            await run_in_threadpool(scripts.RELEASE_IF_HELD, self.client, [rkey], [nonce])
            return
        record = b"h:%s\n%d\n%s\n" % (digest, status, content_type) + b"".join(chunks)
        await run_in_threadpool(
            self.client.set, rkey, record, ex=self.settings.idempotency_ttl_secs
        )


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body when no ``RequestBodyMiddleware`` read it (an app
    built without it), or None when the client disconnected first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay_body(body: bytes, receive: Receive) -> Receive:
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


async def _replay(stored: bytes, send: Send) -> None:
    if stored.startswith(b"h:"):
        stored = stored.split(b"\n", 1)[1]
    status, content_type, body = stored.split(b"\n", 2)
    await _send(send, int(status), content_type, body, replayed=True)


async def _send(send: Send, status: int, content_type: bytes, body: bytes, replayed: bool) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if replayed:
        headers.append((b"idempotent-replayed", b"true"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
