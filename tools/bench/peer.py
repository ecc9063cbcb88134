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
object. ``compare_spans`` is the span-by-span check against streamsink.
"""

from __future__ import annotations

import json
import re
import sys
import time
from calendar import timegm
from typing import Any

import orjson
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
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


class Peer:
    """The webhook-attempt handler on the SDK, exporting to ``endpoint``."""

    def __init__(self, stream_id: str, endpoint: str, queue_size: int = 2048) -> None:
        self.ids = KeyedIds()
        self.derive = IdDeriver(stream_id)
        self.provider = TracerProvider(
            resource=Resource.create({"service.name": "my.webhook.service"}),
            id_generator=self.ids,
        )
        exporter = OTLPSpanExporter(endpoint=endpoint, compression=Compression.NoCompression)
        # The default queue (2,048) silently drops spans under a burst: a user
        # sizes it for the burst, as here.
        self.processor = BatchSpanProcessor(
            exporter, max_queue_size=max(2048, queue_size), schedule_delay_millis=200
        )
        self.provider.add_span_processor(self.processor)
        self.tracer = self.provider.get_tracer("my.webhook.scope", "2.0")

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

    def flush(self, timeout_s: float = 120) -> bool:
        return bool(self.processor.force_flush(int(timeout_s * 1000)))

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


def run(opts: dict[str, Any]) -> dict[str, Any]:
    from tools.bench.loadgen import event_type, webhook_payload

    n, seq0 = int(opts["events"]), int(opts.get("seq_start", 0))
    sent_us = time.time_ns() // 1000
    events = [
        {"eventType": event_type(s), "payload": webhook_payload(s, sent_us)}
        for s in range(seq0, seq0 + n)
    ]
    peer = Peer(opts["stream_id"], opts["endpoint"], queue_size=n)
    try:
        cpu0, t0 = time.process_time(), time.perf_counter()
        for event in events:
            peer.handle(event)
        flushed = peer.flush()
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    finally:
        peer.close()
    return {
        "events": n,
        "seq_start": seq0,
        "seq_end": seq0 + n,
        "flushed": flushed,
        "elapsed_s": round(elapsed, 3),
        "cpu_s": round(cpu, 3),
        "events_per_s": round(n / elapsed) if elapsed > 0 else 0,
        "cpu_us_per_event": round(cpu / n * 1e6, 1) if n else 0.0,
    }


def main() -> None:
    sys.stdout.write(orjson.dumps(run(orjson.loads(sys.argv[1]))).decode() + "\n")


if __name__ == "__main__":
    main()
