"""Routes that write and read events: ``POST /stream/{id}/events`` (append to the
log, atomically) and ``GET /stream/{id}/events/latest``. A sink's events
(``GET /stream/{id}/sink/{sink}/events``) are in ``routes.poller``."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response
from fastapi.routing import APIRoute
from redis.client import Pipeline

from streamsink.api.deps import RedisDep, SettingsDep
from streamsink.api.errors import validation_error
from streamsink.api.hooks import after_append
from streamsink.api.ingest_core import Ingest, check_count, event_types
from streamsink.api.middleware.body import BODY
from streamsink.api.models import (
    CreateStreamEventsIn,
    EmptyResponse,
    EventOut,
    EventStreamOut,
)
from streamsink.api.params import StreamIdPath, ms_to_dt
from streamsink.api.responses import ERRORS, EVENT_ERRORS
from streamsink.api.text import surrogate_error
from streamsink.errors import NotFound
from streamsink.storage import appends, scripts
from streamsink.storage import eventlog as event_log
from streamsink.storage import streams as store_streams
from streamsink.storage.base import transaction
from streamsink.storage.eventlog import LogPolicy

log = logging.getLogger(__name__)


class OrjsonRequest(Request):
    """A request whose JSON body is parsed by orjson (its decode error is a
    ``json.JSONDecodeError``, so FastAPI still answers 422 ``json_invalid``).

    orjson refuses lone surrogates (``"\\udfff"``) while parsing; such a body is
    parsed again by the stdlib so that the models' 422 names the field.

    The body is the one ``api.middleware.body`` read (``scope[BODY]``), not a copy."""

    async def body(self) -> bytes:
        if not hasattr(self, "_body"):
            kept = self.scope.get(BODY)
            self._body = kept if kept is not None else await super().body()
        return self._body

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                self._json = _with_surrogates(body, exc)
        return self._json


def _refuse_constant(name: str) -> Any:
    raise ValueError(name)


def _with_surrogates(body: bytes, error: orjson.JSONDecodeError) -> Any:
    """``body`` parsed by the stdlib when it is valid JSON but for lone surrogates,
    else ``error`` raised (NaN and Infinity stay refused, as orjson does)."""
    try:
        doc = json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise error from None
    if surrogate_error(doc) is None:
        raise error
    return doc


class OrjsonRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            return await handler(OrjsonRequest(request.scope, request.receive))

        return run


router = APIRouter(tags=["Stream Events"], route_class=OrjsonRoute)


@router.post(
    "/stream/{stream_id}/events",
    status_code=202,
    operation_id="v1.streaming.events.create",
    response_model=EmptyResponse,
    responses=EVENT_ERRORS,
)
def create_events(
    stream_id: StreamIdPath,
    body: CreateStreamEventsIn,
    client: RedisDep,
    settings: SettingsDep,
    request: Request,
) -> dict[str, Any]:
    """Append the events, all or none, to the stream's log; answered once durable.
    With ``stream``, a missing stream is created (the path is its uid, or its id
    when it looks like ``strm_...``). Payload objects are stored as JSON text."""
    check_count(len(body.events), settings.max_events_per_request)
    events = [(e.event_type, _payload_text(e.payload)) for e in body.events]
    if body.stream is None:  # the usual case: one atomic script, one round trip
        ingest: Ingest = request.app.state.ingest
        if ingest.append(request.app.state, stream_id, events) is None:
            raise NotFound(f"stream {stream_id!r} not found")
        return {}
    create = body.stream.model_dump()
    policy = LogPolicy.for_settings(settings)
    existing = store_streams.get_stream(client, stream_id)
    if existing is not None:  # the budget, as the append script checks it
        event_log.check_budget(client, existing.id, events, policy)
    watch = store_streams.stream_watch_keys(client, stream_id, create)

    def run(pipe: Pipeline) -> str:
        sid, created = store_streams.ensure_stream(pipe, stream_id, create)
        if created is None:
            pipe.multi()
        scripts.APPEND(pipe, *appends.append_call(sid, events, policy=policy))
        return sid

    with appends.refusals(policy):
        sid = transaction(client, run, *watch)
    after_append(request, sid, event_types(events))
    return {}


def _payload_text(payload: str | dict[str, Any] | list[Any]) -> str:
    """A payload object as compact JSON text (stdlib fallback past orjson's depth limit)."""
    if isinstance(payload, str):
        return payload
    try:
        return orjson.dumps(payload).decode()
    except orjson.JSONEncodeError:
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def _entry_id(value: str | None, name: str) -> str | None:
    if value is not None and not event_log.is_entry_id(value):
        raise validation_error(("query", name), "Invalid iterator: expected an event id")
    return value


def _ms(value: datetime | None) -> int | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return max(0, int(value.timestamp() * 1000))


def _event_out(entry: event_log.LogEntry) -> EventOut:
    return EventOut(
        event_type=entry.event_type, payload=entry.payload, timestamp=ms_to_dt(entry.ts)
    )


Limit = Annotated[int, Query(ge=1, le=250, description="Limit the number of returned items")]
Iterator = Annotated[str | None, Query(max_length=64, description="An iterator (event id)")]
After = Annotated[datetime | None, Query(description="Only events created at or after this")]


@router.get(
    "/stream/{stream_id}/events/latest",
    operation_id="v1.streaming.events.latest",
    response_model=EventStreamOut,
    responses=ERRORS,
)
def latest_events(
    stream_id: StreamIdPath,
    client: RedisDep,
    limit: Limit = 50,
    iterator: Iterator = None,
    after: After = None,
) -> EventStreamOut:
    """The most recent events, newest first. Pass the returned ``iterator`` to page
    further back; ``done`` is true when no older event remains."""
    before = _entry_id(iterator, "iterator")
    sid = store_streams.require_stream(client, stream_id).id
    entries = event_log.latest(client, sid, limit + 1, before=before, after_ms=_ms(after))
    page = entries[:limit]
    return EventStreamOut(
        data=[_event_out(e) for e in page],
        iterator=page[-1].id if page else (before or event_log.START),
        done=len(entries) <= limit,
    )
