"""The app's wake-up hooks (``app.state.on_append``, ``app.state.on_sink_change``)
and the calls routes and the ingest fast lane make to them. A hook never fails
a request: the data is durable and the reaper re-kicks sinks with pending work."""

from __future__ import annotations

import logging
from typing import Any

import redis
from starlette.requests import Request

from streamsink.storage.sinks import SinkRecord

log = logging.getLogger(__name__)


def default_on_append(client: redis.Redis, stream_id: str, event_types: set[str]) -> None:
    """Kick every idle enabled sink of the stream that selects one of ``event_types``."""
    from streamsink.delivery import scheduling

    scheduling.kick_matching(client, stream_id, event_types)


def default_on_sink_change(client: redis.Redis, stream_id: str, sink_id: str) -> None:
    """Kick an enabled sink whose configuration changed (it may now have work)."""
    from streamsink.delivery import scheduling

    scheduling.kick(client, stream_id, sink_id)


def wake(state: Any, client: redis.Redis, stream_id: str, event_types: set[str]) -> None:
    """Run ``state.on_append`` (if set) for appended events; logs, never raises."""
    hook = getattr(state, "on_append", None)
    if hook is not None:
        try:
            hook(client, stream_id, event_types)
        except Exception:
            log.exception("on_append(%s) failed", stream_id)


def after_append(request: Request, stream_id: str, event_types: set[str]) -> None:
    """Wake the delivery engine (``app.state.on_append``); never fails the request."""
    wake(request.app.state, request.app.state.redis, stream_id, event_types)


def after_sink_change(request: Request, sink: SinkRecord) -> None:
    """``app.state.on_sink_change`` for an enabled sink that a worker delivers
    (not a ``poller`` sink); never fails the request."""
    hook = getattr(request.app.state, "on_sink_change", None)
    if hook is not None and sink.status == "enabled" and not sink.polled:
        try:
            hook(request.app.state.redis, sink.stream_id, sink.id)
        except Exception:
            log.exception("on_sink_change(%s) failed", sink.id)
