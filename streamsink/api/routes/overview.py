"""``GET /api/v1/ops/overview`` (admin token): what the operator console shows,
in one call a script can make too.

- ``streams``: a page of streams (creation order, ``limit`` ≤ 200, ``iterator``)
  with every sink: status, ``failureReason``, ``nextRetryAt``, lag, last attempt;
  streams with failing sinks first within the page, failing sinks first within
  a stream;
- ``failingSinks``: the failing sinks of the whole platform, first
  ``MAX_FAILING`` of them (a scan of at most ``SCAN_SINKS_CAP`` sinks);
- ``series``: events in, spans out, failures... per minute, the last ``minutes``;
- ``queues`` (RQ ``deliver`` and ``deliver-slow``) and ``workers`` (alive: a
  heartbeat within ``WORKER_STALE_SECS``, as ``/health`` counts them).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import redis
from fastapi import APIRouter, Query
from pydantic import Field

from streamsink.api.deps import RedisDep
from streamsink.api.pagination import ListParams, list_response, window_for
from streamsink.api.params import ms_to_dt
from streamsink.api.responses import ERRORS
from streamsink.api.wire import WireModel
from streamsink.storage import keys, metrics, overview
from streamsink.storage import streams as store_streams
from streamsink.storage.base import to_str
from streamsink.storage.sinks import SinkRecord, list_stream_sinks
from streamsink.storage.streams import StreamRecord

router = APIRouter(tags=["Health"])

MAX_STREAMS_PER_PAGE = 200
MAX_FAILING = 100
WORKER_STALE_SECS = 60  # as /health: workers heartbeat every 2 s, idle or not


class LagOut(WireModel):
    events: int = Field(description="events after the cursor that the sink takes (see more)")
    more: bool = Field(description=f"{overview.LAG_SCAN_CAP} entries scanned: maybe more")
    oldest_at: datetime | None = Field(None, description="ingest time of the oldest one")


class LastAttemptOut(WireModel):
    timestamp: str
    outcome: str
    status_code: int | None = None
    spans_sent: int = 0
    error: str | None = None


class SinkOverviewOut(WireModel):
    id: str
    stream_id: str
    stream_name: str | None = Field(None, description="the stream's name, else its uid")
    uid: str | None = None
    type: str
    url: str = Field(description="the destination, user:password removed")
    status: str
    failing: bool = Field(description="retrying, or disabled by a failure")
    failure_reason: str | None = None
    next_retry_at: datetime | None = None
    lag: LagOut | None = None
    last_attempt: LastAttemptOut | None = None


class StreamOverviewOut(WireModel):
    id: str
    uid: str | None = None
    name: str | None = None
    failing_sinks: int
    sinks: list[SinkOverviewOut]


class StreamPageOut(WireModel):
    data: list[StreamOverviewOut]
    iterator: str | None = None
    prev_iterator: str | None = None
    done: bool


class TotalsOut(WireModel):
    streams: int
    sinks: int = Field(description="sinks scanned (complete tells whether that is all)")
    sinks_by_status: dict[str, int]
    failing_sinks: int
    complete: bool = Field(description=f"False past {overview.SCAN_SINKS_CAP} sinks")


class PointOut(WireModel):
    t: datetime = Field(description="start of the minute")
    events_in: int
    batches_out: int
    spans_out: int
    spans_rejected: int
    failures: int


class SeriesOut(WireModel):
    step_secs: int = 60
    points: list[PointOut] = Field(description="oldest first; the last minute is partial")


class QueueOut(WireModel):
    name: str
    queued: int
    scheduled: int
    started: int


class WorkerOverviewOut(WireModel):
    name: str
    state: str
    alive: bool
    last_heartbeat: datetime | None = None


class WorkersOut(WireModel):
    alive: int
    registered: int
    entries: list[WorkerOverviewOut] = Field(description="alive first")


class OverviewOut(WireModel):
    generated_at: datetime
    totals: TotalsOut
    failing_sinks: list[SinkOverviewOut]
    streams: StreamPageOut
    series: SeriesOut
    queues: list[QueueOut]
    workers: WorkersOut


@router.get(
    "/ops/overview",
    operation_id="v1.ops.overview",
    response_model=OverviewOut,
    responses=ERRORS,
)
def get_overview(
    client: RedisDep,
    limit: Annotated[
        int, Query(ge=1, le=MAX_STREAMS_PER_PAGE, description="Streams in this page")
    ] = 50,
    iterator: Annotated[
        str | None, Query(max_length=1024, description="`streams.iterator` of a prior call")
    ] = None,
    minutes: Annotated[int, Query(ge=1, le=120, description="Minutes of `series`")] = 60,
) -> dict[str, Any]:
    """Streams and sinks (failing first), the last hour's traffic per minute,
    delivery queues and workers: the operator console's one call."""
    params = ListParams(limit=limit, iterator=iterator, order="ascending")
    page = store_streams.list_streams(client, window_for(params, numeric=True))
    records: list[StreamRecord] = [record for _, record in page.items]
    sinks_of = {s.id: list_stream_sinks(client, s.id) for s in records}
    scan = overview.scan_sinks(client, MAX_FAILING)
    everyone = [sink for group in sinks_of.values() for sink in group] + scan.failing
    lags = overview.sink_lags(client, everyone)
    last = _last_attempts(client, [s.id for s in everyone])
    names = _stream_names(client, records, {s.stream_id for s in scan.failing})

    def render_sink(sink: SinkRecord) -> dict[str, Any]:
        out = _sink_out(sink, lags.get(sink.id), last.get(sink.id))
        return {**out, "streamName": names.get(sink.stream_id)}

    def render_stream(record: StreamRecord) -> dict[str, Any]:
        sinks = sorted(sinks_of[record.id], key=overview.rank)
        return {
            "id": record.id,
            "uid": record.uid,
            "name": record.name,
            "failingSinks": sum(overview.is_failing(s.status, s.failure_reason) for s in sinks),
            "sinks": [render_sink(s) for s in sinks],
        }

    streams = list_response(page, params, render_stream)
    streams["data"].sort(key=lambda s: 0 if s["failingSinks"] else 1)  # stable: creation order
    return {
        "generatedAt": datetime.now(UTC),
        "totals": {
            "streams": scan.streams,
            "sinks": scan.sinks,
            "sinksByStatus": scan.by_status,
            "failingSinks": scan.failing_total,
            "complete": scan.complete,
        },
        "failingSinks": [render_sink(s) for s in scan.failing],
        "streams": streams,
        "series": {"stepSecs": 60, "points": [_point(p) for p in metrics.series(client, minutes)]},
        "queues": _queues(client),
        "workers": _workers(client),
    }


def _sink_out(
    sink: SinkRecord, lag: overview.Lag | None, last: dict[str, Any] | None
) -> dict[str, Any]:
    return {
        "id": sink.id,
        "streamId": sink.stream_id,
        "uid": sink.uid,
        "type": sink.type,
        "url": _without_userinfo(sink.url),
        "status": sink.status,
        "failing": overview.is_failing(sink.status, sink.failure_reason),
        "failureReason": sink.failure_reason,
        "nextRetryAt": ms_to_dt(sink.next_retry_at) if sink.next_retry_at else None,
        "lag": None
        if lag is None
        else {
            "events": lag.events,
            "more": lag.more,
            "oldestAt": ms_to_dt(lag.oldest_ms) if lag.oldest_ms is not None else None,
        },
        "lastAttempt": last,
    }


def _stream_names(
    client: redis.Redis, records: list[StreamRecord], more: set[str]
) -> dict[str, str | None]:
    """Stream id -> name (else uid) for the page and the ``more`` ids."""
    names = {r.id: r.name or r.uid for r in records}
    missing = sorted(more - names.keys())
    pipe = client.pipeline(transaction=False)
    for stream_id in missing:
        pipe.hmget(keys.stream(stream_id), ["name", "uid"])
    for stream_id, (name, uid) in zip(missing, pipe.execute() if missing else [], strict=True):
        names[stream_id] = to_str(name) or to_str(uid) or None
    return names


def _without_userinfo(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _last_attempts(client: redis.Redis, sink_ids: list[str]) -> dict[str, dict[str, Any]]:
    pipe = client.pipeline(transaction=False)
    for sink_id in sink_ids:
        pipe.lindex(keys.attempts(sink_id), 0)
    out = {}
    for sink_id, raw in zip(sink_ids, pipe.execute() if sink_ids else [], strict=True):
        if raw:
            row = orjson.loads(raw)
            out[sink_id] = {
                "timestamp": row.get("timestamp", ""),
                "outcome": row.get("outcome", ""),
                "statusCode": row.get("statusCode"),
                "spansSent": row.get("spansSent") or 0,
                "error": row.get("error"),
            }
    return out


def _point(p: dict[str, int]) -> dict[str, Any]:
    return {
        "t": datetime.fromtimestamp(p["minute"] * 60, tz=UTC),
        "eventsIn": p["events_ingested"],
        "batchesOut": p["batches_delivered"],
        "spansOut": p["spans_delivered"],
        "spansRejected": p["spans_rejected"],
        "failures": p["delivery_failures"],
    }


def _queues(client: redis.Redis) -> list[dict[str, Any]]:
    from rq import Queue
    from rq.registry import ScheduledJobRegistry, StartedJobRegistry

    from streamsink.delivery.scheduling import QUEUE_NAMES

    out = []
    for name in QUEUE_NAMES:
        queue = Queue(name, connection=client)
        out.append(
            {
                "name": name,
                "queued": queue.count,
                "scheduled": ScheduledJobRegistry(queue=queue).count,
                "started": StartedJobRegistry(queue=queue).count,
            }
        )
    return out


def _workers(client: redis.Redis) -> dict[str, Any]:
    from rq import Worker

    now = time.time()
    listed = []
    for worker in Worker.all(connection=client):
        beat = worker.last_heartbeat
        if beat is not None and beat.tzinfo is None:
            beat = beat.replace(tzinfo=UTC)
        alive = beat is not None and now - beat.timestamp() < WORKER_STALE_SECS
        listed.append(
            {
                "name": worker.name,
                "state": str(getattr(state := worker.get_state(), "value", state)),
                "alive": alive,
                "lastHeartbeat": beat,
            }
        )
    listed.sort(key=lambda w: (not w["alive"], w["name"]))
    return {"alive": sum(w["alive"] for w in listed), "registered": len(listed), "entries": listed}
