"""The FastAPI application: routers, auth, error handlers and the middlewares,
outermost first: ``RequestBodyMiddleware`` (bearer token parsed once; body
read, bounded and decoded once), ``IdempotencyMiddleware``, ``IngestFastPath``."""

from __future__ import annotations

import logging

import redis
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.security import HTTPBearer

from streamsink import __version__
from streamsink.api import hooks
from streamsink.api.deps import require_token
from streamsink.api.errors import install_error_handlers
from streamsink.api.ingest_core import Ingest
from streamsink.api.middleware.body import RequestBodyMiddleware
from streamsink.api.middleware.idempotency import IdempotencyMiddleware
from streamsink.api.middleware.ingest import IngestFastPath
from streamsink.api.routes import (
    auth,
    event_types,
    events,
    local,
    ops,
    poller,
    simulate,
    sink_delivery,
    sink_secret,
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
    {"name": "Authentication", "description": "Stream portal and sink poller tokens."},
    {"name": "Health", "description": "Liveness of the API and its Redis."},
]


class _BearerScheme(HTTPBearer):
    """The bearer scheme in the OpenAPI document (Authorize button). It does not
    parse the header again: ``require_token`` enforces it from the parsed token."""

    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        return None


bearer_scheme = _BearerScheme(
    scheme_name="HTTPBearer", auto_error=False, description="Bearer <token>"
)


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
    app.state.ingest = Ingest(redis_client)  # the events POST: fast lane and route
    app.state.on_append = hooks.default_on_append
    app.state.on_sink_change = hooks.default_on_sink_change
    install_error_handlers(app)

    api = APIRouter(prefix="/api/v1", dependencies=[Depends(bearer_scheme), Depends(require_token)])
    api.include_router(event_types.router)  # before streams: /stream/event-type is not a stream
    api.include_router(simulate.router)  # before streams: /stream/transformations is not one
    api.include_router(streams.router)
    api.include_router(sinks.router)
    api.include_router(sink_delivery.router)
    api.include_router(poller.router)
    api.include_router(sink_secret.router)
    api.include_router(events.router)
    api.include_router(auth.router)  # scoped tokens (api.scopes: what they reach)
    app.include_router(api)
    app.include_router(local.router, dependencies=[Depends(bearer_scheme)])
    app.include_router(local.receiver_router)

    app.include_router(ops.router)
    install_docs(app)

    app.add_middleware(IngestFastPath, settings=settings, ingest=app.state.ingest)
    app.add_middleware(IdempotencyMiddleware, settings=settings, client=redis_client)
    app.add_middleware(RequestBodyMiddleware, max_bytes=settings.max_body_bytes)  # outermost
    return app


def create_app_from_env() -> FastAPI:
    """The app from ``STREAMSINK_*`` settings (uvicorn's factory for API processes)."""
    from streamsink.storage.connection import connect

    settings = Settings()
    if not settings.redis_url:
        raise RuntimeError("STREAMSINK_REDIS_URL is required")
    return create_app(settings, connect(settings.redis_url))
