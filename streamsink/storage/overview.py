"""Read-only figures for the operator console (``GET /api/v1/ops/overview``).

Every read is pipelined and bounded: the platform-wide scan of sink states
reads at most ``SCAN_SINKS_CAP`` sinks (three hash fields each), and a sink's
lag scans at most ``LAG_SCAN_CAP`` events after its cursor inside Redis
(``scripts.SINK_LAG``: only counts cross the wire).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from streamsink.storage import eventlog, keys, scripts
from streamsink.storage.base import dumps, to_str
from streamsink.storage.sinks import STATUSES, SinkRecord, sink_from_raw

SCAN_SINKS_CAP = 10_000  # sinks whose state one overview reads, platform-wide
LAG_SCAN_CAP = 1_000  # events counted after a sink's cursor


def is_failing(status: str, failure_reason: str | None) -> bool:
    """Retrying, or disabled by a failure (not by a person: no reason)."""
    return status == "retrying" or (status == "disabled" and bool(failure_reason))


def rank(sink: SinkRecord) -> tuple[int, int]:
    """Sort key: failing sinks first, then disabled or paused ones, then the
    rest; creation order within each group."""
    if is_failing(sink.status, sink.failure_reason):
        group = 0
    elif sink.status in ("disabled", "paused"):
        group = 1
    else:
        group = 2
    return group, sink.seq


@dataclass
class SinkScan:
    """Sink states across the platform (at most ``SCAN_SINKS_CAP`` sinks)."""

    streams: int = 0
    sinks: int = 0
    by_status: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    failing: list[SinkRecord] = field(default_factory=list)  # ranked, at most ``keep``
    failing_total: int = 0
    complete: bool = True  # False when the cap stopped the scan


def scan_sinks(r: redis.Redis, keep: int) -> SinkScan:
    """Count sinks by status and load the first ``keep`` failing ones (ranked)."""
    out = SinkScan(streams=int(r.zcard(keys.STREAMS)))
    stream_ids = [to_str(s) or "" for s in r.zrange(keys.STREAMS, 0, SCAN_SINKS_CAP - 1)]
    out.complete = len(stream_ids) == out.streams
    pipe = r.pipeline(transaction=False)
    for stream_id in stream_ids:
        pipe.zrange(keys.stream_sinks(stream_id), 0, SCAN_SINKS_CAP - 1)
    sink_ids: list[str] = []
    for members in pipe.execute():
        sink_ids.extend(to_str(m) or "" for m in members)
    if len(sink_ids) > SCAN_SINKS_CAP:
        sink_ids, out.complete = sink_ids[:SCAN_SINKS_CAP], False
    for sink_id in sink_ids:
        pipe.hmget(keys.sink(sink_id), ["status", "failureReason", "seq"])
    failing: list[tuple[int, str]] = []
    for sink_id, (status, reason, seq) in zip(sink_ids, pipe.execute(), strict=True):
        if seq is None and status is None:
            continue  # deleted meanwhile
        state = to_str(status) or "enabled"
        out.sinks += 1
        out.by_status[state] = out.by_status.get(state, 0) + 1
        if is_failing(state, to_str(reason)):
            failing.append((int(to_str(seq) or 0), sink_id))
    out.failing_total = len(failing)
    out.failing = sorted(
        (s for s in load_sinks(r, [sink_id for _, sink_id in sorted(failing)[:keep]]) if s),
        key=rank,
    )
    return out


def load_sinks(r: redis.Redis, sink_ids: Sequence[str]) -> list[SinkRecord | None]:
    """Sink records by id, in one round trip (None for a deleted one)."""
    pipe = r.pipeline(transaction=False)
    for sink_id in sink_ids:
        pipe.hgetall(keys.sink(sink_id))
    return [sink_from_raw(raw) for raw in pipe.execute()] if sink_ids else []


@dataclass
class Lag:
    """Events after a sink's cursor that its filter takes."""

    events: int  # counted among the first ``LAG_SCAN_CAP`` events after the cursor
    more: bool  # the scan stopped at the cap: there may be more
    oldest_ms: int | None  # ingest ms of the oldest such event (None: none waiting)


def sink_lags(r: redis.Redis, sinks: Sequence[SinkRecord]) -> dict[str, Lag]:
    """The lag of each sink, one script call per stream, all pipelined."""
    by_stream: dict[str, list[SinkRecord]] = defaultdict(list)
    for sink in sinks:
        by_stream[sink.stream_id].append(sink)
    pipe = r.pipeline(transaction=False)
    for stream_id, group in by_stream.items():
        args: list[Any] = [LAG_SCAN_CAP]
        for sink in group:
            args += (
                eventlog.next_id(sink.cursor),
                dumps(sink.event_types) if sink.event_types else "",
            )
        scripts.SINK_LAG(pipe, [keys.event_log(stream_id)], args)
    out: dict[str, Lag] = {}
    for group, reply in zip(by_stream.values(), pipe.execute(), strict=True):
        for sink, (count, capped, oldest) in zip(group, reply, strict=True):
            oldest_id = to_str(oldest)
            out[sink.id] = Lag(
                events=int(count),
                more=bool(int(capped)),
                oldest_ms=eventlog.entry_ms(oldest_id) if oldest_id else None,
            )
    return out
