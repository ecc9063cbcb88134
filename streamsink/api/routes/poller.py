"""A sink's events: ``GET .../sink/{sink_id}/events`` (``poller`` sinks, Svix's
"Polling Endpoint"), ``last-acked-event`` and ``next-event`` (every sink type).

A ``poller`` sink is read by its consumer, never delivered by a worker:

1. a call without ``iterator`` answers no events and an iterator at the sink's
   position (its cursor: where the sink was created, or what its consumer last
   acknowledged, or where ``skip`` put it), or at ``after`` when given;
2. a call with an iterator answers the next events the sink selects
   (``eventTypes``), in stream order, with the iterator to come back with and
   ``done`` once caught up. Coming back with an iterator acknowledges every
   event before it: the sink's cursor moves there (forward only), so log
   retention and ``currentIterator`` work as for every sink.

An iterator names its sink: one of another sink (or not made here) is a 422.
For a sink of another type the route is a read-only view of the events the
sink selects (iterators are event ids, from the start of the log) that never
moves it.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import Field

from streamsink.api.deps import RedisDep
from streamsink.api.errors import validation_error
from streamsink.api.models import EventOut, EventStreamOut
from streamsink.api.params import SinkIdPath, StreamIdPath, ms_to_dt
from streamsink.api.responses import SINK_ERRORS
from streamsink.errors import Conflict, NotFound
from streamsink.resource_ids import SINK_PREFIX
from streamsink.storage import eventlog as event_log
from streamsink.storage import sink_position as position
from streamsink.storage import sinks as store_sinks
from streamsink.storage import streams as store_streams
from streamsink.storage.eventlog import LogEntry
from streamsink.storage.sinks import SinkRecord

router = APIRouter()
BASE = "/stream/{stream_id}/sink/{sink_id}"
_ITERATOR_LOC = ("query", "iterator")

Limit = Annotated[
    int, Query(ge=1, le=250, description="Limit the number of returned items (1..250)")
]
Iterator = Annotated[
    str | None,
    Query(max_length=256, description="The iterator returned from a prior invocation"),
]
After = Annotated[
    datetime | None,
    Query(
        description="Without `iterator`: start at events created at or after this time"
        " (a time in the future starts at the end of the log)"
    ),
]


class SinkEventOut(EventOut):
    """Svix's ``EventOut`` and the event's position in the log."""

    id: str = Field(description="the event's position in the log (an iterator for `skip`)")


def _event_out(entry: LogEntry) -> EventOut:
    return EventOut(
        event_type=entry.event_type, payload=entry.payload, timestamp=ms_to_dt(entry.ts)
    )


def _sink(client: Any, stream_id: str, sink_id: str) -> SinkRecord:
    stream = store_streams.require_stream(client, stream_id)
    return store_sinks.require_stream_sink(client, stream.id, sink_id)


def _position_at(value: datetime) -> str:
    """The log position just before the events created at or after ``value``."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    ms = max(0, int(value.timestamp() * 1000))
    return event_log.prev_id(f"{ms}-0") or event_log.START


# --- poller iterators ---------------------------------------------------------------


def encode_iterator(sink_id: str, entry_id: str) -> str:
    """A poller iterator: the sink's id and a log position, base64url."""
    return base64.urlsafe_b64encode(f"{sink_id}:{entry_id}".encode()).decode().rstrip("=")


def decode_iterator(iterator: str, sink: SinkRecord) -> str:
    """The log position of ``iterator`` (422 naming it when it is not one of
    this sink's iterators)."""
    try:
        text = base64.urlsafe_b64decode(iterator + "=" * (-len(iterator) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    owner, _, entry_id = text.partition(":")
    if not owner.startswith(SINK_PREFIX) or not event_log.is_entry_id(entry_id):
        raise validation_error(
            _ITERATOR_LOC,
            f"iterator {iterator!r} is not an iterator of this endpoint: pass the"
            " `iterator` a previous call answered, or none to start at the sink's position",
        )
    if owner != sink.id:
        raise validation_error(
            _ITERATOR_LOC,
            f"iterator {iterator!r} belongs to another sink ({owner}), not to sink"
            f" {sink.id} of stream {sink.stream_id}",
        )
    ms, _, seq = entry_id.partition("-")
    return f"{int(ms)}-{int(seq)}"


def _poll(
    client: Any, sink: SinkRecord, limit: int, iterator: str | None, after: datetime | None
) -> EventStreamOut:
    if sink.status == "disabled":
        raise Conflict(
            f"sink {sink.id} is disabled: set its status to enabled to poll it",
            code="sink_disabled",
        )
    last = event_log.last_id(client, sink.stream_id)
    if iterator is None:
        start = sink.cursor if after is None else _position_at(after)
        if position.id_key(start) > position.id_key(last):
            start = last
        done = position.id_key(start) >= position.id_key(last)
        return EventStreamOut(data=[], iterator=encode_iterator(sink.id, start), done=done)
    start = decode_iterator(iterator, sink)
    if position.id_key(start) > position.id_key(last):
        raise validation_error(
            _ITERATOR_LOC,
            f"iterator {iterator!r} is past the end of the stream (its last event is {last})",
        )
    position.acknowledge(client, sink.id, start)
    page = position.page_after(client, sink, start, limit)
    return EventStreamOut(
        data=[_event_out(e) for e in page.entries],
        iterator=encode_iterator(sink.id, page.scanned_to),
        done=page.done,
    )


def _browse(
    client: Any, sink: SinkRecord, limit: int, iterator: str | None, after: datetime | None
) -> EventStreamOut:
    """A sink a worker delivers: a read-only view (iterators are event ids)."""
    if iterator is not None:
        if not event_log.is_entry_id(iterator):
            raise validation_error(_ITERATOR_LOC, "Invalid iterator: expected an event id")
        start = iterator
    else:
        start = event_log.START if after is None else _position_at(after)
    page = position.page_after(client, sink, start, limit)
    return EventStreamOut(
        data=[_event_out(e) for e in page.entries], iterator=page.scanned_to, done=page.done
    )


@router.get(
    BASE + "/events",
    operation_id="v1.streaming.events.get",
    response_model=EventStreamOut,
    responses=SINK_ERRORS,
    tags=["Stream Events"],
)
def sink_events(
    stream_id: StreamIdPath,
    sink_id: SinkIdPath,
    client: RedisDep,
    limit: Limit = 50,
    iterator: Iterator = None,
    after: After = None,
) -> EventStreamOut:
    """Iterate over the events of a ``poller`` sink (its ``eventTypes``), in
    stream order. The first call (no ``iterator``) answers no events and the
    iterator to start from: the sink's position, or ``after``. Each later call
    answers the next events, the ``iterator`` for the call after and ``done``
    once caught up; coming back with an iterator acknowledges the events before
    it (the sink's cursor moves there). 409 while the sink is disabled.

    For a sink of another type: a read-only view of the events it selects, from
    the start of the log, after ``iterator`` (an event id) or from ``after``."""
    sink = _sink(client, stream_id, sink_id)
    if sink.polled:
        return _poll(client, sink, limit, iterator or None, after)
    return _browse(client, sink, limit, iterator or None, after)


# --- the sink's position -------------------------------------------------------------


def _sink_event(entry: LogEntry) -> SinkEventOut:
    return SinkEventOut(
        id=entry.id,
        event_type=entry.event_type,
        payload=entry.payload,
        timestamp=ms_to_dt(entry.ts),
    )


@router.get(
    BASE + "/last-acked-event",
    operation_id="v1.streaming.sink.get-last-acked-event",
    response_model=SinkEventOut,
    responses=SINK_ERRORS,
    tags=["Stream Sink"],
)
def last_acked_event(stream_id: StreamIdPath, sink_id: SinkIdPath, client: RedisDep) -> Any:
    """The last event the sink passed (delivered, acknowledged by its poller, or
    skipped): the newest event it selects at or before its ``currentIterator``.
    404 when there is none in the log."""
    sink = _sink(client, stream_id, sink_id)
    entry = position.last_passed(client, sink)
    if entry is None:
        raise NotFound(
            f"sink {sink.id} has passed no event that is still in the log"
            f" (its currentIterator is {sink.cursor})"
        )
    return _sink_event(entry)


@router.get(
    BASE + "/next-event",
    operation_id="v1.streaming.sink.events.get-next-event",
    response_model=SinkEventOut,
    responses=SINK_ERRORS,
    tags=["Stream Sink"],
)
def next_event(stream_id: StreamIdPath, sink_id: SinkIdPath, client: RedisDep) -> Any:
    """The next event the sink owes: the first one after its ``currentIterator``
    that it selects (``eventTypes``). 404 when it owes none."""
    sink = _sink(client, stream_id, sink_id)
    entry = position.next_owed(client, sink)
    if entry is None:
        raise NotFound(f"sink {sink.id} owes no event (its currentIterator is {sink.cursor})")
    return _sink_event(entry)
