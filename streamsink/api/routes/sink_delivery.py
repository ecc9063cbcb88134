"""Routes about a sink's delivery: attempts, force-retry and skip."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import Field

from streamsink.api.deps import RedisDep
from streamsink.api.errors import validation_error
from streamsink.api.models import StreamSinkOut
from streamsink.api.params import SinkIdPath, StreamIdPath, render_sink
from streamsink.api.responses import SINK_ERRORS
from streamsink.api.wire import WireModel
from streamsink.delivery import scheduling
from streamsink.errors import Conflict, NotFound
from streamsink.storage import attempts
from streamsink.storage import eventlog as event_log
from streamsink.storage import sinks as store_sinks
from streamsink.storage import streams as store_streams

router = APIRouter(tags=["Stream Sink"])
BASE = "/stream/{stream_id}/sink/{sink_id}"


class SinkAttemptOut(WireModel):
    """Svix's ``SinkAttemptOut`` and, beside it, streamsink's detail."""

    id: str
    sink_id: str
    status: int = Field(
        description="Svix's MessageStatus: 0 success; 2 fail (retrying, failed, split, switched)"
    )
    status_text: Literal["success", "pending", "fail", "sending", "canceled"]
    first_event_id: str | None = None
    last_event_id: str | None = None
    num_events: int = Field(description="events in the batch (0: not recorded, older records)")
    response_duration_ms: int
    timestamp: datetime
    outcome: str = Field(
        description="success | retrying | failed | split (413) |"
        " switched (auto encoding changed after a 415)"
    )
    status_code: int | None = None
    error: str | None = None
    spans_sent: int
    rejected_spans: int
    duration_ms: float
    response_excerpt: str | None = None


class ListResponseSinkAttemptOut(WireModel):
    data: list[SinkAttemptOut]
    iterator: str | None
    prev_iterator: str | None = None
    done: bool


class SinkSkipIn(WireModel):
    """Svix's ``SkipParams``; the iterator may come in the query instead."""

    iterator: str | None = Field(
        default=None,
        max_length=64,
        description="event id to resume after: events up to and including it are skipped",
    )


def _sink(client: Any, stream_id: str, sink_id: str) -> store_sinks.SinkRecord:
    stream = store_streams.require_stream(client, stream_id)
    return store_sinks.require_stream_sink(client, stream.id, sink_id)


def _restart(client: Any, sink: store_sinks.SinkRecord, **changes: Any) -> StreamSinkOut:
    """Apply ``changes``, forget the retry count and any scheduled wake-up, and
    kick the sink so delivery starts now (a ``poller`` sink is never kicked)."""
    store_sinks.update_sink_state(client, sink.id, **changes)
    store_sinks.reset_retry_state(client, sink.id)
    scheduling.clear_wait(client, sink.id)
    if not sink.polled:
        scheduling.kick(client, sink.stream_id, sink.id)
    return render_sink(store_sinks.require_stream_sink(client, sink.stream_id, sink.id))


@router.get(
    BASE + "/attempt",
    operation_id="v1.streaming.sink.list-attempts",
    response_model=ListResponseSinkAttemptOut,
    responses=SINK_ERRORS,
)
def list_attempts(
    stream_id: StreamIdPath,
    sink_id: SinkIdPath,
    client: RedisDep,
    limit: Annotated[int, Query(ge=1, le=250)] = 50,
    iterator: Annotated[
        str | None,
        Query(
            pattern=attempts.ATTEMPT_ID_PATTERN,
            description="The iterator returned from a prior invocation (an attempt id)",
        ),
    ] = None,
    status: Annotated[
        int | None,
        Query(ge=0, le=4, description="Svix's MessageStatus: 0 success, 2 fail"),
    ] = None,
    before: Annotated[
        datetime | None, Query(description="Only attempts made before this time")
    ] = None,
    after: Annotated[
        datetime | None, Query(description="Only attempts made after this time")
    ] = None,
) -> dict[str, Any]:
    """Recent delivery attempts, newest first."""
    sink = _sink(client, stream_id, sink_id)
    data, next_iterator, done = attempts.list_attempts(
        client, sink.id, limit=limit, iterator=iterator, status=status, before=before, after=after
    )
    return {"data": data, "iterator": next_iterator, "prevIterator": None, "done": done}


@router.get(
    BASE + "/attempt/{attempt_id}",
    operation_id="v1.streaming.sink.get-attempt",
    response_model=SinkAttemptOut,
    responses=SINK_ERRORS,
)
def get_attempt(
    stream_id: StreamIdPath,
    sink_id: SinkIdPath,
    attempt_id: Annotated[str, Path(max_length=64, description="The attempt's id")],
    client: RedisDep,
) -> dict[str, Any]:
    """One delivery attempt (404 once it left the log of the newest 200)."""
    sink = _sink(client, stream_id, sink_id)
    found = attempts.get_attempt(client, sink.id, attempt_id)
    if found is None:
        raise NotFound(f"the sink has no attempt {attempt_id!r} (the newest 200 are kept)")
    return found


@router.post(
    BASE + "/force-retry",
    status_code=204,
    operation_id="v1.streaming.sink.force-retry",
    response_class=Response,
    responses=SINK_ERRORS,
)
def force_retry(stream_id: StreamIdPath, sink_id: SinkIdPath, client: RedisDep) -> Response:
    """Retry now: a retrying sink skips its wait, a sink disabled by a failure
    is retried from its cursor (a sink disabled by a user stays disabled).
    204 with no body, as Svix; ``GET`` the sink for its new state."""
    sink = _sink(client, stream_id, sink_id)
    if sink.polled:
        raise Conflict("a poller sink is not delivered, so there is nothing to retry")
    if sink.status == "disabled" and not sink.failure_reason:
        raise Conflict("the sink was disabled by a user: set its status to enabled instead")
    status = "retrying" if sink.status in ("retrying", "disabled") else sink.status
    _restart(client, sink, status=status, next_retry_at=None)
    return Response(status_code=204)


@router.post(
    BASE + "/skip",
    status_code=202,
    operation_id="v1.streaming.sink.skip",
    response_model=StreamSinkOut,
    responses=SINK_ERRORS,
)
def skip(
    stream_id: StreamIdPath,
    sink_id: SinkIdPath,
    client: RedisDep,
    body: SinkSkipIn | None = None,
    iterator: Annotated[
        str | None, Query(max_length=64, description="the event id (or in the body)")
    ] = None,
) -> StreamSinkOut:
    """Move the cursor to ``iterator`` (in the query or the body): an event of the
    stream, the last one (skip everything pending) or ``0-0`` (replay the log),
    as in ``currentIterator``. Delivery resumes with the event after it. A sink
    disabled by a failure (a poison event, say) is enabled again."""
    loc, target = _skip_target(iterator, body)
    sink = _sink(client, stream_id, sink_id)
    target = _existing_position(client, sink, target, loc)
    changes: dict[str, Any] = {"cursor": target, "next_retry_at": None}
    if sink.status == "retrying" or (sink.status == "disabled" and sink.failure_reason):
        changes.update(status="enabled", failure_reason=None)
    return _restart(client, sink, **changes)


def _skip_target(query: str | None, body: SinkSkipIn | None) -> tuple[tuple[str, str], str]:
    """Where the iterator was given and its value (422 when absent or given twice
    with different values)."""
    in_body = body.iterator if body is not None else None
    if query is not None and in_body is not None and query != in_body:
        raise validation_error(
            ("query", "iterator"),
            f"iterator {query!r} in the query differs from {in_body!r} in the body",
        )
    if query is not None:
        return ("query", "iterator"), query
    if in_body is not None:
        return ("body", "iterator"), in_body
    raise validation_error(
        ("query", "iterator"),
        "Field required: the event id to skip to, as ?iterator= or in the body",
        "missing",
    )


def _existing_position(
    client: Any, sink: store_sinks.SinkRecord, value: str, loc: tuple[str, str]
) -> str:
    """``value`` as a log position a cursor may take: ``0-0``, the sink's own
    cursor, an event of the stream, or the stream's last event id (``0-0`` for
    an empty log). Anything else is a 422: a cursor past the end would silently
    skip every event posted until that time."""
    if not event_log.is_entry_id(value):
        raise validation_error(loc, f"{value!r} is not an event id like 1700000000000-0")
    ms, _, seq = value.partition("-")
    value = f"{int(ms)}-{int(seq)}"
    if value in (event_log.START, sink.cursor):
        return value
    stream_id = sink.stream_id
    last = event_log.last_id(client, stream_id)
    if value == last:
        return value
    if _id_key(value) > _id_key(last):
        raise validation_error(
            loc,
            f"{value!r} is past the end of the stream (its last event is {last!r}):"
            " skipping there would drop every event posted until then",
        )
    before = event_log.prev_id(value) or event_log.START
    found = event_log.entries_after(client, stream_id, before, 1)
    if not found or found[0].id != value:
        raise validation_error(loc, f"the stream has no event {value!r}")
    return value


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq)
