"""Routes about a sink's delivery: attempts, force-retry and skip."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import Field

from streamsink import attempts, scheduling, store_sinks, store_streams
from streamsink import log as event_log
from streamsink.api.deps import RedisDep
from streamsink.api.errors import validation_error
from streamsink.api.sinks import SINK_ERRORS, SinkIdPath, render_sink
from streamsink.api.streams import StreamIdPath
from streamsink.batch import retry_count_key
from streamsink.errors import Conflict
from streamsink.models import StreamSinkOut, WireModel

router = APIRouter(tags=["Stream Sink"])
BASE = "/stream/{stream_id}/sink/{sink_id}"


class SinkAttemptOut(WireModel):
    id: str
    timestamp: str
    outcome: str = Field(description="success | retrying | failed")
    status_code: int | None = None
    error: str | None = None
    spans_sent: int
    rejected_spans: int
    duration_ms: float
    response_excerpt: str | None = None
    first_event_id: str | None = None
    last_event_id: str | None = None


class ListResponseSinkAttemptOut(WireModel):
    data: list[SinkAttemptOut]
    iterator: str | None
    prev_iterator: str | None = None
    done: bool


class SinkSkipIn(WireModel):
    iterator: str = Field(
        max_length=64,
        description="event id to resume after: events up to and including it are skipped",
    )


def _sink(client: Any, stream_id: str, sink_id: str) -> store_sinks.SinkRecord:
    stream = store_streams.require_stream(client, stream_id)
    return store_sinks.require_stream_sink(client, stream.id, sink_id)


def _restart(client: Any, sink: store_sinks.SinkRecord, **changes: Any) -> StreamSinkOut:
    """Apply ``changes``, forget the retry count and any scheduled wake-up, and
    kick the sink so delivery starts now."""
    store_sinks.update_sink_state(client, sink.id, **changes)
    client.delete(retry_count_key(sink.id))
    scheduling.clear_wait(client, sink.id)
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
    iterator: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    """Recent delivery attempts, newest first."""
    sink = _sink(client, stream_id, sink_id)
    data, next_iterator, done = attempts.list_attempts(
        client, sink.id, limit=limit, iterator=iterator
    )
    return {"data": data, "iterator": next_iterator, "prevIterator": None, "done": done}


@router.post(
    BASE + "/force-retry",
    status_code=202,
    operation_id="v1.streaming.sink.force-retry",
    response_model=StreamSinkOut,
    responses=SINK_ERRORS,
)
def force_retry(stream_id: StreamIdPath, sink_id: SinkIdPath, client: RedisDep) -> StreamSinkOut:
    """Retry now: a retrying sink skips its wait, a sink disabled by a failure
    is retried from its cursor (a sink disabled by a user stays disabled)."""
    sink = _sink(client, stream_id, sink_id)
    if sink.status == "disabled" and not sink.failure_reason:
        raise Conflict("the sink was disabled by a user: set its status to enabled instead")
    status = "retrying" if sink.status in ("retrying", "disabled") else sink.status
    return _restart(client, sink, status=status, next_retry_at=None)


@router.post(
    BASE + "/skip",
    status_code=202,
    operation_id="v1.streaming.sink.skip",
    response_model=StreamSinkOut,
    responses=SINK_ERRORS,
)
def skip(
    stream_id: StreamIdPath, sink_id: SinkIdPath, body: SinkSkipIn, client: RedisDep
) -> StreamSinkOut:
    """Move the cursor to ``iterator`` (an event id, as in ``currentIterator``):
    delivery resumes with the event after it. A sink disabled by a failure
    (a poison event, say) is enabled again."""
    if not event_log.is_entry_id(body.iterator):
        raise validation_error(
            ("body", "iterator"), "not an event id like 1700000000000-0", "value_error"
        )
    sink = _sink(client, stream_id, sink_id)
    changes: dict[str, Any] = {"cursor": body.iterator, "next_retry_at": None}
    if sink.status == "retrying" or (sink.status == "disabled" and sink.failure_reason):
        changes.update(status="enabled", failure_reason=None)
    return _restart(client, sink, **changes)
