"""Metrics kept in Redis, exported in Prometheus format by any API process.

Workers and API processes on many machines add to the same Redis hashes (one
pipelined HINCRBY per figure, staged on a pipeline the caller already runs),
so ``GET /metrics`` on any API instance shows the whole deployment. A
``prometheus_client`` collector turns the hashes into metric families at
scrape time and adds live gauges (queue depth, sinks by status, workers).

Keys: ``ss:metrics:c`` (counters, field ``name{labels}``),
``ss:metrics:h:{name}`` (histogram: per-bucket counts, ``sum``, ``count``) and
``ss:metrics:m:{minute}`` (the counters in ``SERIES`` summed over their labels
for one minute, kept ``SERIES_TTL_SECS``: the console's last-hour charts).
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Iterable, Iterator
from typing import Any

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from streamsink.storage import keys

COUNTERS_KEY = keys.METRICS_COUNTERS  # the old name (callers outside storage/)
PREFIX = "streamsink_"

COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "events_ingested": ("Events accepted (202) by the API", ()),
    "batches_delivered": ("Batches delivered, by sink", ("sink",)),
    "spans_delivered": ("Spans delivered, by sink", ("sink",)),
    "spans_rejected": ("Spans the receiver rejected (OTLP partialSuccess), by sink", ("sink",)),
    "delivery_failures": (
        "Failed deliveries by class: retryable, permanent, transform, exhausted",
        ("class",),
    ),
    "retries": ("Batches scheduled for a retry", ()),
    "events_dropped": (
        "Log entries trimmed before a disabled or paused sink received them, by sink",
        ("sink",),
    ),
}
#: Counters also kept per minute (all labels summed), for the last-hour charts.
SERIES: tuple[str, ...] = (
    "events_ingested",
    "batches_delivered",
    "spans_delivered",
    "spans_rejected",
    "delivery_failures",
)
SERIES_TTL_SECS = keys.METRICS_MINUTE_TTL_SECS
HISTOGRAMS: dict[str, tuple[str, tuple[float, ...]]] = {
    "delivery_duration_seconds": (
        "Time to transform and POST one batch",
        (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    ),
    "transform_duration_seconds": (
        "Time in the handler, validation and OTLP encoding per batch",
        (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
    ),
}


def _field(name: str, labels: dict[str, str]) -> str:
    if not labels:
        return name
    inner = ",".join(f"{k}={labels[k]}" for k in sorted(labels))
    return f"{name}{{{inner}}}"


def _parse_field(field: str) -> tuple[str, dict[str, str]]:
    name, _, rest = field.partition("{")
    labels: dict[str, str] = {}
    if rest:
        for pair in rest.rstrip("}").split(","):
            key, _, value = pair.partition("=")
            labels[key] = value
    return name, labels


def inc(pipe: Any, name: str, value: int = 1, **labels: str) -> None:
    """Stage a counter increment on ``pipe`` (a redis pipeline or client)."""
    if name not in COUNTERS:
        raise KeyError(f"unknown counter {name}")
    if value:
        pipe.hincrby(keys.METRICS_COUNTERS, _field(name, labels), value)
        if name in SERIES:
            bucket = keys.metrics_minute(int(time.time()) // 60)
            pipe.hincrby(bucket, name, value)
            pipe.expire(bucket, SERIES_TTL_SECS)


def series(r: redis.Redis, minutes: int = 60, now: float | None = None) -> list[dict[str, Any]]:
    """The ``SERIES`` counters per minute over the last ``minutes`` minutes, the
    current (partial) minute last: ``[{"minute": epoch s // 60, name: count}]``."""
    last = int(time.time() if now is None else now) // 60
    wanted = range(last - minutes + 1, last + 1)
    pipe = r.pipeline(transaction=False)
    for minute in wanted:
        pipe.hgetall(keys.metrics_minute(minute))
    points = []
    for minute, raw in zip(wanted, pipe.execute(), strict=True):
        got = {_s(k): int(_s(v)) for k, v in raw.items()}
        points.append({"minute": minute, **{name: got.get(name, 0) for name in SERIES}})
    return points


def observe(pipe: Any, name: str, seconds: float) -> None:
    """Stage one histogram observation on ``pipe``."""
    _, buckets = HISTOGRAMS[name]
    key = keys.metrics_histogram(name)
    index = bisect.bisect_left(buckets, seconds)
    pipe.hincrby(key, str(index), 1)
    pipe.hincrbyfloat(key, "sum", seconds)


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisCollector(Collector):
    """Reads the metric hashes (and live figures) at every scrape."""

    def __init__(self, connection: redis.Redis):
        self.connection = connection

    def collect(self) -> Iterator[Any]:
        r = self.connection
        pipe = r.pipeline(transaction=False)
        pipe.hgetall(keys.METRICS_COUNTERS)
        for name in HISTOGRAMS:
            pipe.hgetall(keys.metrics_histogram(name))
        raw_counters, *raw_hists = pipe.execute()
        yield from self._counters(raw_counters)
        for (name, (doc, buckets)), raw in zip(HISTOGRAMS.items(), raw_hists, strict=True):
            yield _histogram(name, doc, buckets, {_s(k): _s(v) for k, v in raw.items()})
        yield from live_gauges(r)

    def _counters(self, raw: dict[Any, Any]) -> Iterable[CounterMetricFamily]:
        families = {
            name: CounterMetricFamily(PREFIX + name, doc, labels=list(labels))
            for name, (doc, labels) in COUNTERS.items()
        }
        for field, value in raw.items():
            name, labels = _parse_field(_s(field))
            family = families.get(name)
            if family is None:
                continue
            wanted = COUNTERS[name][1]
            family.add_metric([labels.get(k, "") for k in wanted], float(_s(value)))
        return families.values()


def _histogram(
    name: str, doc: str, buckets: tuple[float, ...], raw: dict[str, str]
) -> HistogramMetricFamily:
    counts = [int(raw.get(str(i), 0)) for i in range(len(buckets) + 1)]
    cumulative, running = [], 0
    for bound, count in zip([*map(str, buckets), "+Inf"], counts, strict=True):
        running += count
        cumulative.append((bound, running))
    family = HistogramMetricFamily(PREFIX + name, doc)
    family.add_metric([], cumulative, sum_value=float(raw.get("sum", 0)))
    return family


def live_gauges(r: redis.Redis) -> Iterator[GaugeMetricFamily]:
    """Queue depth, sinks by status and live workers, read now."""
    from rq import Queue, Worker
    from rq.registry import ScheduledJobRegistry

    from streamsink.delivery.scheduling import QUEUE_NAMES

    depth = GaugeMetricFamily(
        PREFIX + "queue_depth", "Delivery jobs waiting", labels=["queue", "state"]
    )
    for name in QUEUE_NAMES:
        queue = Queue(name, connection=r)
        depth.add_metric([name, "queued"], queue.count)
        depth.add_metric([name, "scheduled"], ScheduledJobRegistry(queue=queue).count)
    yield depth

    by_status = sinks_by_status(r)
    sinks = GaugeMetricFamily(PREFIX + "sinks", "Sinks by status", labels=["status"])
    for status, count in sorted(by_status.items()):
        sinks.add_metric([status], count)
    yield sinks

    workers = GaugeMetricFamily(PREFIX + "workers", "Delivery workers registered in Redis")
    workers.add_metric([], len(Worker.all(connection=r)))
    yield workers


def sinks_by_status(r: redis.Redis) -> dict[str, int]:
    """Sinks by status: the counts every status change keeps
    (``keys.SINK_STATUS_COUNTS``), one read. A data dir from before them has
    none until a worker's reaper built them (``reaper.build``): walk it then."""
    by_status = {"enabled": 0, "disabled": 0, "paused": 0, "retrying": 0}
    pipe = r.pipeline(transaction=False)
    pipe.exists(keys.HOUSEKEEPING_BUILT)
    pipe.hgetall(keys.SINK_STATUS_COUNTS)
    built, counts = pipe.execute()
    if built or counts:
        for status, count in counts.items():
            by_status[_s(status)] = max(0, int(count))
        return by_status
    from streamsink.storage.base import to_str
    from streamsink.storage.sinks import list_stream_sinks

    for raw in r.zrange(keys.STREAMS, 0, -1):
        for sink in list_stream_sinks(r, to_str(raw) or ""):
            by_status[sink.status] = by_status.get(sink.status, 0) + 1
    return by_status
