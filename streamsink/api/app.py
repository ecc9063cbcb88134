"""The FastAPI application: routers, auth, error handlers, body limit, idempotency."""

from __future__ import annotations

import logging

import orjson
import redis
from fastapi import APIRouter, Depends, FastAPI
from fastapi.security import HTTPBearer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from streamsink import __version__
from streamsink.api import hooks
from streamsink.api.deps import require_token
from streamsink.api.errors import install_error_handlers
from streamsink.api.middleware.encoding import ContentEncodingMiddleware
from streamsink.api.middleware.idempotency import IdempotencyMiddleware
from streamsink.api.middleware.ingest import IngestFastPath
from streamsink.api.routes import (
    event_types,
    events,
    local,
    ops,
    simulate,
    sink_delivery,
    sinks,
    streams,
)
from streamsink.api.routes.docs import install_docs
from streamsink.settings import Settings

log = logging.getLogger(__name__)

TAGS = [
    {"name": "Stream", "description": "Streams: append-only event logs."},
    {"name": "Stream Event Type", "description": "Event types of streams."},
    {"name": "Stream Sink", "description": "Sinks: where a stream's events are delivered."},
    {"name": "Stream Events", "description": "Writing and reading events."},
    {"name": "Health", "description": "Liveness of the API and its Redis."},
]

#: Shown in the OpenAPI document (Authorize button); ``require_token`` enforces it.
bearer_scheme = HTTPBearer(auto_error=False, description="Bearer <token>")


def create_app(settings: Settings, redis_client: redis.Redis) -> FastAPI:
    """The API app.

    Hooks that wake the delivery engine (replace or set to None in ``app.state``):
    ``on_append(redis, stream_id, event_types)`` after events are stored, and
    ``on_sink_change(redis, stream_id, sink_id)`` after an enabled sink is edited.
    Their failures are logged, never returned: the reaper re-kicks sinks anyway."""
    app = FastAPI(
        title="streamsink",
        version=__version__,
        description="Svix-Stream-compatible event streams to OpenTelemetry traces.",
        openapi_tags=TAGS,
        docs_url=None,  # install_docs: the same pages, assets served from the package
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.redis = redis_client
    app.state.on_append = hooks.default_on_append
    app.state.on_sink_change = hooks.default_on_sink_change
    install_error_handlers(app)

    api = APIRouter(prefix="/api/v1", dependencies=[Depends(bearer_scheme), Depends(require_token)])
    api.include_router(event_types.router)  # before streams: /stream/event-type is not a stream
    api.include_router(simulate.router)  # before streams: /stream/transformations is not one
    api.include_router(streams.router)
    api.include_router(sinks.router)
    api.include_router(sink_delivery.router)
    api.include_router(events.router)
    app.include_router(api)
    app.include_router(local.router, dependencies=[Depends(bearer_scheme)])
    app.include_router(local.receiver_router)

    app.include_router(ops.router)
    install_docs(app)

    app.add_middleware(IngestFastPath, settings=settings, client=redis_client)
    app.add_middleware(IdempotencyMiddleware, settings=settings, client=redis_client)
    app.add_middleware(ContentEncodingMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    return app


def create_app_from_env() -> FastAPI:
    """The app from ``STREAMSINK_*`` settings (uvicorn's factory for API processes)."""
    from streamsink.storage.connection import connect

    settings = Settings()
    if not settings.redis_url:
        raise RuntimeError("STREAMSINK_REDIS_URL is required")
    return create_app(settings, connect(settings.redis_url))


class BodyLimitMiddleware:
    """413 ``payload_too_large`` for bodies over ``max_bytes``: checks Content-Length,
    then reads at most ``max_bytes + 1`` bytes and hands the buffered body on.
    Not for the OTLP receiver: it reads its body as it arrives, decompressing,
    up to its own limit (STREAMSINK_LOCAL_MAX_BODY_BYTES) and answers OTLP errors."""

    UNBOUNDED_PATHS = frozenset({"/v1/traces"})

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in ("POST", "PUT", "PATCH")
            or scope["path"] in self.UNBOUNDED_PATHS
        ):
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", []):
            if name.lower() == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    return await _error(send, 400, "bad_request", "invalid Content-Length")
                if declared > self.max_bytes:
                    return await self._too_large(send)
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                return await self._too_large(send)
            if not message.get("more_body", False):
                break
        buffered: list[Message] = [{"type": "http.request", "body": bytes(body)}]

        async def replay() -> Message:
            return buffered.pop() if buffered else await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send) -> None:
        detail = f"request body larger than {self.max_bytes} bytes (STREAMSINK_MAX_BODY_BYTES)"
        await _error(send, 413, "payload_too_large", detail)


async def _error(send: Send, status: int, code: str, detail: str) -> None:
    body = orjson.dumps({"code": code, "detail": detail})
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
