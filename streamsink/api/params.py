"""Path parameter types shared by the routers, and the wire views they share."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Path

from streamsink.api.models import StreamSinkOut
from streamsink.api.sink_config import (
    OtelTracingConfigOut,
    PollerConfigOut,
    SinkHttpConfigOut,
    redact_headers,
)
from streamsink.resource_ids import UID_MAX_LEN, UID_PATTERN
from streamsink.storage.sinks import SinkRecord

StreamIdPath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=UID_MAX_LEN,
        pattern=UID_PATTERN,
        description="The stream's ID or UID",
    ),
]
SinkIdPath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=UID_MAX_LEN,
        pattern=UID_PATTERN,
        description="Sink ID/UID",
    ),
]


def ms_to_dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def render_sink(record: SinkRecord) -> StreamSinkOut:
    """The wire view; header values that look secret are redacted (an http
    sink's signing secret is never part of it)."""
    config: OtelTracingConfigOut | SinkHttpConfigOut | PollerConfigOut = OtelTracingConfigOut(
        url=record.url,
        headers=redact_headers(record.headers),
        encoding=record.encoding,  # type: ignore[arg-type]
        compression=record.compression,  # type: ignore[arg-type]
    )
    if record.polled:
        config = PollerConfigOut()
    elif record.type == "http":
        config = SinkHttpConfigOut(url=record.url, headers=redact_headers(record.headers))
    return StreamSinkOut(
        id=record.id,
        uid=record.uid,
        type=record.type,
        config=config,
        status=record.status,  # type: ignore[arg-type]
        batch_size=record.batch_size,
        max_wait_secs=record.max_wait_secs,
        event_types=record.event_types,
        channels=record.channels,
        metadata=record.metadata,
        current_iterator=record.cursor,
        failure_reason=record.failure_reason,
        next_retry_at=ms_to_dt(record.next_retry_at) if record.next_retry_at else None,
        negotiated_encoding=(
            record.negotiated_encoding  # type: ignore[arg-type]
            if record.encoding == "auto" and not record.polled
            else None
        ),
        dropped_events=record.dropped_events,
        dropped_since=ms_to_dt(record.dropped_since) if record.dropped_since else None,
        created_at=ms_to_dt(record.created_at),
        updated_at=ms_to_dt(record.updated_at),
    )
