"""``otelTracing`` sinks: events become OTLP spans, POSTed as OTLP/HTTP.

The batch goes through the sink's transformation (``transform.pipeline``) and
is encoded as the sink says (``encoding``: json, protobuf, or auto: JSON until
a receiver answers 415, then the other one at once, remembered as the sink's
``negotiatedEncoding``; ``compression``: none or gzip), then sent by
``sinkhttp.export`` (halves over the byte limit or on 413). A delivered batch
leaves its spans' trace ids in the trace memory, so later events can name
their parent span only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from redis.client import Pipeline

from streamsink.delivery.kinds.base import Sent
from streamsink.otlp.split import CONTENT_TYPES, BodyEncoder, Encoding, other_encoding
from streamsink.sinkhttp.client import DeliveryResult
from streamsink.sinkhttp.export import BatchResult, Prerendered, export
from streamsink.storage import attempts
from streamsink.storage.eventlog import LogEntry
from streamsink.storage.sinks import SinkRecord
from streamsink.transform.pipeline import TransformResult, transform

if TYPE_CHECKING:
    from streamsink.delivery.engine import Engine


class OtelTracingKind:
    """The ``SinkKind`` of ``otelTracing`` sinks (prepared batch: ``TransformResult``)."""

    def prepare(self, engine: Engine, sink: SinkRecord, events: list[LogEntry]) -> TransformResult:
        return transform(
            [{"eventType": e.event_type, "payload": e.payload} for e in events],
            stream_id=sink.stream_id,
            sink_key=sink.id,
            code=sink.code,
            runtime=engine.runtime,
            encoding=_encoding(sink),
            gzip_body=sink.compression == "gzip",
            max_bytes=engine.settings.max_request_bytes,
            trace_lookup=engine.traces.lookup(sink.stream_id),
        )

    def items(self, prepared: TransformResult) -> int:
        return len(prepared.batch.spans)

    def send(
        self, engine: Engine, sink: SinkRecord, prepared: TransformResult, first: str, last: str
    ) -> Sent:
        sent = send_bodies(engine, sink, prepared)
        learned = _learned_encoding(sink, sent)
        failure = sent.failure
        reason = None
        if failure is not None:
            reason = _refusal(sink, sent, failure) if failure.status_code == 415 else failure.reason
        return Sent(
            sent,
            reason,
            _switch_records(sent, first, last),
            {"negotiated_encoding": learned} if learned is not None else {},
        )

    def stage_success(
        self, pipe: Pipeline, engine: Engine, sink: SinkRecord, prepared: TransformResult
    ) -> None:
        engine.traces.remember(sink.stream_id, prepared.span_traces, pipeline=pipe)


def _encoding(sink: SinkRecord) -> Encoding:
    return "protobuf" if sink.wire_encoding() == "protobuf" else "json"


def send_bodies(engine: Engine, sink: SinkRecord, result: TransformResult) -> BatchResult:
    """POST the batch's bodies in order (see ``sinkhttp.export``): halves over the
    byte limit or on 413 keep the sink's encoding and compression; under ``auto``
    a 415 sends the rest in the other encoding. Stops at the first failure."""
    encoding, gz = _encoding(sink), sink.compression == "gzip"
    renderer = Prerendered(result.bodies, encoding, lambda: BodyEncoder(result.batch, encoding, gz))
    fallback = None
    if sink.encoding == "auto":
        other = other_encoding(encoding)
        fallback = lambda: BodyEncoder(result.batch, other, gz)  # noqa: E731
    return export(
        engine.client,
        sink.url,
        renderer,
        headers=sink.headers,
        max_bytes=engine.settings.max_request_bytes,
        fallback=fallback,
    )


def _switch_records(sent: BatchResult, first: str, last: str) -> list[attempts.Attempt]:
    """The attempt record of an ``auto`` encoding switch (none without one)."""
    switch = sent.switch
    if switch is None:
        return []
    answer = switch.answer
    error = (
        f"the receiver answered 415 to {CONTENT_TYPES[switch.from_encoding]}:"
        f" encoding auto switched from {switch.from_encoding} to {switch.to_encoding}"
    )
    return [
        attempts.Attempt(
            "switched",
            switch.span_count,
            answer.duration_ms,
            status_code=answer.status_code,
            error=error,
            response_excerpt=answer.response_excerpt or None,
            first_event=first,
            last_event=last,
        )
    ]


def _learned_encoding(sink: SinkRecord, sent: BatchResult) -> str | None:
    """The encoding ``auto`` should remember after this batch (None: no change).
    A body accepted, or another answer than 415 after a switch, settles it."""
    if sink.encoding != "auto" or not sent.attempts:
        return None
    refused = sent.failure is not None and sent.failure.status_code == 415
    if sent.ok or (sent.switch is not None and not refused):
        return sent.encoding if sent.encoding != sink.negotiated_encoding else None
    return None


def _refusal(sink: SinkRecord, sent: BatchResult, failure: DeliveryResult) -> str:
    """``failureReason`` of a 415: what the receiver refused and the setting to change."""
    gz = " gzip-compressed" if sink.compression == "gzip" else ""
    hint = '; try config.compression "none"' if gz else ""
    said = f": {failure.response_excerpt[:200]}" if failure.response_excerpt else ""
    if sent.switch is not None:
        return f"HTTP 415: the receiver refuses both JSON and protobuf{gz} bodies{hint}{said}"
    return (
        f"HTTP 415: the receiver does not accept {CONTENT_TYPES[sent.encoding]}{gz} bodies"
        f' (config.encoding is "{sink.encoding}": set it to "auto" or to the encoding'
        f" the receiver takes{hint}){said}"
    )
