"""The peer: what a user would write instead of streamsink, on the real
OpenTelemetry Python SDK, for the Svix webhook example
(``transforms/svix-webhook-attempts.js``).

Each event is parsed and becomes one span with explicit start and end times,
the trace id derived from ``msgId`` and the span id from ``attemptId`` (its
``http.attempt`` from ``attemptId + "/http"``, a child of the attempt's span)
by streamsink's ID rule (``streamsink.otlp.ids``, reused: the same pure
functions), the same attributes, kind and status; ``BatchSpanProcessor`` and
``OTLPSpanExporter`` (protobuf over HTTP) send them to a receiver on
127.0.0.1. No durability, no sandbox, no retries beyond the exporter's.

``python -m tools.bench.peer '<json options>'`` times ``events`` load-generator
events (``tools.bench.loadgen.webhook_payload``; built before the clock starts)
from the first event to the end of the last export, and prints one JSON
object: events/s, CPU per event (process, and split into the main thread and
the SDK's exporter thread) and the spans exported. ``BatchSpanProcessor``
drops a span when its queue is full (a log line, nothing else), so the peer
counts the spans its exporter sent: ``spans_dropped`` must be 0 for a fair
figure. ``compare_spans`` is the span-by-span check against streamsink.

Where the CPU goes (docs/capacity.md, "The peer"): about 60 µs an event in
the main thread (a third parse, IDs and times, two thirds the SDK's span),
about 62 µs a span in the exporter thread (the SDK's pure-Python protobuf
encoder), and ~20 µs of garbage collection of the spans in the queue; the two
threads share one GIL.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from calendar import timegm
from collections.abc import Sequence
from typing import Any

import orjson
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.status import Status, StatusCode

from streamsink.otlp.ids import IdDeriver

_ISO = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9}))?\d*"
    r"(?:([Zz])|([+-])(\d\d):?(\d\d))$"
)
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


def time_ns(value: Any) -> int:
    """ISO 8601 with up to nanoseconds (kept exactly) and a zone, or epoch ms."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value * 1_000_000)
    m = _ISO.match(str(value))
    if m is None:
        raise ValueError(f"not an ISO 8601 time: {value!r}")
    y, mo, d, h, mi, s, frac, _z, sign, oh, om = m.groups()
    secs = timegm((int(y), int(mo), int(d), int(h), int(mi), int(s), 0, 0, 0))
    if sign:
        offset = (int(oh) * 60 + int(om)) * 60
        secs -= offset if sign == "+" else -offset
    return secs * 1_000_000_000 + int((frac or "0").ljust(9, "0"))


class KeyedIds(IdGenerator):
    """The SDK asks its IdGenerator for each new span's id (and a root span's
    trace id): these hand out the ids derived from the event's keys, set right
    before ``start_span``; a missing key falls back to a random id."""

    def __init__(self) -> None:
        self.span_id = 0
        self.trace_id = 0
        self._random = RandomIdGenerator()

    def generate_span_id(self) -> int:
        return self.span_id or self._random.generate_span_id()

    def generate_trace_id(self) -> int:
        return self.trace_id or self._random.generate_trace_id()


class CountingExporter(SpanExporter):
    """The OTLP exporter, counting the spans it sent (and those it failed to):
    the bench checks that every span ended was exported, none dropped."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.exported = 0
        self.failed = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self.inner.export(spans)
        if result is SpanExportResult.SUCCESS:
            self.exported += len(spans)
        else:
            self.failed += len(spans)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


#: Spans per OTLP request: the SDK's default (2,048 and 8,192 measured no different).
BATCH_SIZE = 512


class Peer:
    """The webhook-attempt handler on the SDK, exporting to ``endpoint``.

    ``queue_size`` is the BatchSpanProcessor's ``max_queue_size``: it has no
    back-pressure, so a user sizes it for the largest burst (the default 2,048
    dropped 7.8 % of a 100,000-event burst); ``schedule_delay_millis`` only
    bounds how long a quiet tail waits (a full batch wakes the exporter)."""

    def __init__(self, stream_id: str, endpoint: str, queue_size: int = 2048) -> None:
        self.ids = KeyedIds()
        self.derive = IdDeriver(stream_id)
        self.provider = TracerProvider(
            resource=Resource.create({"service.name": "my.webhook.service"}),
            id_generator=self.ids,
        )
        self.exporter = CountingExporter(
            OTLPSpanExporter(endpoint=endpoint, compression=Compression.NoCompression)
        )
        self.processor = BatchSpanProcessor(
            self.exporter,
            max_queue_size=queue_size,
            max_export_batch_size=min(BATCH_SIZE, queue_size),
            schedule_delay_millis=200,
        )
        self.provider.add_span_processor(self.processor)
        self.tracer = self.provider.get_tracer("my.webhook.scope", "2.0")
        self.ended = 0

    def _int(self, raw: bytes) -> int:
        return int.from_bytes(raw, "big")

    def handle(self, event: dict[str, Any]) -> None:
        payload = event["payload"]
        if isinstance(payload, str):
            payload = json.loads(payload)
        is_http = event["eventType"] == "http.attempt"
        msg_id, attempt = payload.get("msgId"), payload.get("attemptId")
        ids = self.ids
        ids.trace_id = self._int(self.derive.trace_id(str(msg_id))) if msg_id is not None else 0
        ids.span_id = 0
        if attempt is not None:
            key = f"{attempt}/http" if is_http else str(attempt)
            ids.span_id = self._int(self.derive.span_id(key))
        context = None
        if is_http and attempt is not None and ids.trace_id:
            parent = SpanContext(
                ids.trace_id,
                self._int(self.derive.span_id(str(attempt))),
                is_remote=True,
                trace_flags=_SAMPLED,
            )
            context = trace.set_span_in_context(NonRecordingSpan(parent))
        attributes = {
            "msgId": msg_id,
            "appId": payload.get("appId"),
            "attemptId": attempt,
            "url.full": payload.get("url"),
            "http.request.method": "POST" if is_http else None,
            "http.response.status_code": payload.get("responseStatusCode"),
        }
        span = self.tracer.start_span(
            event["eventType"],
            context=context,
            kind=SpanKind.CLIENT if is_http else SpanKind.INTERNAL,
            attributes={k: v for k, v in attributes.items() if v is not None},
            start_time=time_ns(payload["startTime"]),
        )
        status = payload.get("responseStatusCode")
        if is_http and isinstance(status, int | float) and not isinstance(status, bool):
            if 200 <= status < 300:
                span.set_status(Status(StatusCode.OK))
            else:
                span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))
        span.end(end_time=time_ns(payload["endTime"]))
        self.ended += 1

    def flush(self, timeout_s: float = 120) -> bool:
        return bool(self.processor.force_flush(int(timeout_s * 1000)))

    def dropped(self) -> int:
        """Spans ended but not exported (after ``flush``): queue overflow or
        failed exports."""
        return self.ended - self.exporter.exported

    def close(self) -> None:
        self.provider.shutdown()


# -- the comparison with streamsink ---------------------------------------------

#: What must be equal span by span (streamsink.receiver.decode.span_to_dict names).
FIELDS = (
    "traceId",
    "parentSpanId",
    "name",
    "kind",
    "startTimeUnixNano",
    "endTimeUnixNano",
    "attributes",
    "status",
    "serviceName",
    "scope",
)


def compare_spans(ours: list[dict[str, Any]], peer: list[dict[str, Any]]) -> list[str]:
    """Differences between streamsink's spans and the peer's (decoded with
    ``streamsink.receiver.decode``), matched by span id; [] when they are equal."""
    diffs: list[str] = []
    a = {s["spanId"]: s for s in ours}
    b = {s["spanId"]: s for s in peer}
    if len(a) != len(ours) or len(b) != len(peer):
        diffs.append(f"span ids repeat: streamsink {len(ours)}/{len(a)}, peer {len(peer)}/{len(b)}")
    for sid in sorted(a.keys() - b.keys())[:5]:
        diffs.append(f"span {sid} ({a[sid]['name']}) only in streamsink's")
    for sid in sorted(b.keys() - a.keys())[:5]:
        diffs.append(f"span {sid} ({b[sid]['name']}) only in the peer's")
    for sid in sorted(a.keys() & b.keys()):
        for name in FIELDS:
            if a[sid].get(name) != b[sid].get(name):
                diffs.append(
                    f"span {sid} {name}: streamsink {a[sid].get(name)!r}, peer {b[sid].get(name)!r}"
                )
        if len(diffs) >= 20:
            break
    return diffs


def thread_cpu_s(thread: threading.Thread) -> float:
    """CPU seconds of a live thread of this process (0.0 where unsupported)."""
    try:
        return time.clock_gettime(time.pthread_getcpuclockid(thread.ident or 0))
    except (AttributeError, OSError):
        return 0.0


def run(opts: dict[str, Any]) -> dict[str, Any]:
    """``events``, ``stream_id``, ``endpoint``; ``seq_start``; ``max_queue_size``
    (default: ``events``, the whole burst)."""
    from tools.bench.loadgen import event_type, webhook_payload

    n, seq0 = int(opts["events"]), int(opts.get("seq_start", 0))
    sent_us = time.time_ns() // 1000
    events = [
        {"eventType": event_type(s), "payload": webhook_payload(s, sent_us)}
        for s in range(seq0, seq0 + n)
    ]
    peer = Peer(opts["stream_id"], opts["endpoint"], int(opts.get("max_queue_size") or n))
    worker = peer.processor._batch_processor._worker_thread  # the SDK's exporter thread
    try:
        cpu0, t0 = time.process_time(), time.perf_counter()
        main0, worker0 = time.thread_time(), thread_cpu_s(worker)
        for event in events:
            peer.handle(event)
        flushed = peer.flush()
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        main, exporter = time.thread_time() - main0, thread_cpu_s(worker) - worker0
    finally:
        peer.close()

    def per_event(seconds: float) -> float:
        return round(seconds / n * 1e6, 1) if n else 0.0

    return {
        "events": n,
        "seq_start": seq0,
        "seq_end": seq0 + n,
        "flushed": flushed,
        "spans_exported": peer.exporter.exported,
        "spans_dropped": peer.dropped(),
        "elapsed_s": round(elapsed, 3),
        "cpu_s": round(cpu, 3),
        "events_per_s": round(n / elapsed) if elapsed > 0 else 0,
        "cpu_us_per_event": per_event(cpu),
        "main_cpu_us_per_event": per_event(main),
        "exporter_cpu_us_per_event": per_event(exporter),
    }


def main() -> None:
    sys.stdout.write(orjson.dumps(run(orjson.loads(sys.argv[1]))).decode() + "\n")


if __name__ == "__main__":
    main()
