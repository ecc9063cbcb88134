"""One batch of one sink: transform, POST, then record what happened.

The batch is encoded as the sink says (``encoding``: json, protobuf, or auto:
JSON until a receiver answers 415, then the other one at once, remembered as
the sink's ``negotiatedEncoding``; ``compression``: none or gzip) and sent by
``otlp.export`` (halves over the byte limit or on 413). Success moves the
cursor (compare-and-set against the cursor the batch was read at) and clears
a retrying state; a retryable answer schedules the next try (``retrying`` +
``nextRetryAt``: the receiver's ``Retry-After``, else the retry schedule); a
permanent answer, a transform error, an exhausted schedule or a sink failing
for ``STREAMSINK_RETRY_MAX_ELAPSED`` disables the sink with its
``failureReason`` (events and cursor kept). Every outcome is an attempt record
(an encoding switch too) and metrics; on success those, the trace memory and
the cursor move go to Redis in one pipeline, with the caller's reads for its
next batch at its end.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

import redis
from redis.client import Pipeline

from streamsink.delivery import scheduling
from streamsink.delivery.engine import Engine
from streamsink.delivery.retry import format_duration
from streamsink.errors import TransformError
from streamsink.otlp.split import CONTENT_TYPES, BodyEncoder, Encoding, other_encoding
from streamsink.sinkhttp.client import DeliveryResult, Outcome
from streamsink.sinkhttp.export import BatchResult, Prerendered, export
from streamsink.storage import attempts, metrics
from streamsink.storage import eventlog as event_log
from streamsink.storage import sinks as store_sinks
from streamsink.storage.sinks import SinkRecord
from streamsink.transform.pipeline import TransformResult, transform

log = logging.getLogger(__name__)

#: The retry state of a sink (failures counted, first failure time): ``store_sinks``.
retry_count_key = store_sinks.retry_state_key


@dataclass(slots=True)
class Pending:
    events: list[event_log.LogEntry]
    scanned_to: str  # id of the last log entry looked at (matching or not)


class NextReads(Protocol):
    """Commands staged at the end of a successful batch's outcome pipeline (the
    caller's reads for its next batch); their replies land in ``replies``."""

    replies: list[Any] | None

    def stage(self, pipe: Pipeline) -> None: ...


def deliver_batch(
    engine: Engine, sink: SinkRecord, pending: Pending, then: NextReads | None = None
) -> bool:
    """Send one batch; True when the caller may go on with the next."""
    r = engine.redis
    started = time.perf_counter()
    first, last = pending.events[0].id, pending.events[-1].id

    def attempt(outcome: str, spans: int, **kw: Any) -> attempts.Attempt:
        duration = (time.perf_counter() - started) * 1000
        return attempts.Attempt(outcome, spans, duration, first_event=first, last_event=last, **kw)

    try:
        result = transform(
            [{"eventType": e.event_type, "payload": e.payload} for e in pending.events],
            stream_id=sink.stream_id,
            sink_key=sink.id,
            code=sink.code,
            runtime=engine.runtime,
            encoding=_encoding(sink),
            gzip_body=sink.compression == "gzip",
            max_bytes=engine.settings.max_request_bytes,
            trace_lookup=engine.traces.lookup(sink.stream_id),
        )
    except redis.RedisError:
        raise  # not the batch's fault: the job ends, the sink is re-checked
    except Exception as exc:  # noqa: BLE001 - TransformError, or a pipeline bug
        # Anything the batch makes the pipeline raise is its failure too:
        # disabling the sink with the reason beats re-running it forever.
        detail = str(exc) if isinstance(exc, TransformError) else f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, TransformError):
            log.exception("transforming events %s..%s of sink %s failed", first, last, sink.id)
        reason = f"transformation failed on events {first}..{last}: {detail}"
        _disable(r, sink, reason, [attempt("failed", 0, error=reason)], "transform")
        return False
    transformed = time.perf_counter()

    sent = send_bodies(engine, sink, result)
    spans = len(result.batch.spans)
    records = _switch_records(sent, first, last)
    learned = _learned_encoding(sink, sent)
    pipe = r.pipeline(transaction=False)
    metrics.observe(pipe, "transform_duration_seconds", transformed - started)
    metrics.observe(pipe, "delivery_duration_seconds", time.perf_counter() - started)
    if sent.ok:
        final = sent.attempts[-1] if sent.attempts else None
        for record in records:
            attempts.record(pipe, sink.id, record)
        attempts.record(
            pipe,
            sink.id,
            attempt(
                "success",
                spans,
                status_code=final.status_code if final else None,
                rejected_spans=sent.rejected_spans,
                response_excerpt=(final.response_excerpt or None) if final else None,
            ),
        )
        pipe.delete(retry_count_key(sink.id))
        metrics.inc(pipe, "batches_delivered", 1, sink=sink.id)
        metrics.inc(pipe, "spans_delivered", spans, sink=sink.id)
        metrics.inc(pipe, "spans_rejected", sent.rejected_spans, sink=sink.id)
        engine.traces.remember(sink.stream_id, result.span_traces, pipeline=pipe)
        state: dict[str, Any] = {}
        if sink.status != "enabled" or sink.failure_reason:
            state |= {"status": "enabled", "failure_reason": None, "next_retry_at": None}
        if learned is not None:
            state["negotiated_encoding"] = learned
        store_sinks.update_sink_state(
            r, sink.id, cursor=pending.scanned_to, if_cursor=sink.cursor, pipeline=pipe, **state
        )
        staged = len(pipe)
        if then is not None:
            then.stage(pipe)
        replies = pipe.execute()
        if then is not None:
            then.replies = replies[staged:]
        return store_sinks.state_updated(replies[staged - 1])
    pipe.execute()

    failure = sent.failure
    assert failure is not None
    details = {
        "status_code": failure.status_code,
        "response_excerpt": failure.response_excerpt or None,
    }
    reason = _refusal(sink, sent, failure) if failure.status_code == 415 else failure.reason
    if failure.outcome is Outcome.RETRYABLE:
        now = scheduling.now_ms()
        throttled = engine.retry.throttled(failure.retry_after)
        failures, since = store_sinks.note_failure(r, sink.id, count=not throttled, now_ms=now)
        decision = engine.retry.decide(failures, max(0, now - since) / 1000, failure.retry_after)
        if decision.delay is not None:
            if throttled:
                reason += f" (Retry-After: {format_duration(failure.retry_after or 0)})"
            record = attempt("retrying", spans, error=reason, **details)
            return _retry(engine, sink, reason, decision.delay, [*records, record], learned)
        reason = f"{decision.why}; last: {reason}"
        kind = "exhausted"
    else:
        kind = "permanent"
    record = attempt("failed", spans, error=reason, **details)
    _disable(r, sink, reason, [*records, record], kind, learned)
    return False


def _encoding(sink: SinkRecord) -> Encoding:
    return "protobuf" if sink.wire_encoding() == "protobuf" else "json"


def send_bodies(engine: Engine, sink: SinkRecord, result: TransformResult) -> BatchResult:
    """POST the batch's bodies in order (see ``otlp.export``): halves over the byte
    limit or on 413 keep the sink's encoding and compression; under ``auto`` a 415
    sends the rest in the other encoding. Stops at the first failure."""
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


def _retry(
    engine: Engine,
    sink: SinkRecord,
    reason: str,
    delay: float,
    records: list[attempts.Attempt],
    learned: str | None,
) -> bool:
    r = engine.redis
    due = scheduling.now_ms() + int(delay * 1000)
    pipe = r.pipeline(transaction=False)
    for record in records:
        attempts.record(pipe, sink.id, record)
    metrics.inc(pipe, "delivery_failures", 1, **{"class": "retryable"})
    metrics.inc(pipe, "retries")
    pipe.execute()
    extra = {"negotiated_encoding": learned} if learned is not None else {}
    store_sinks.update_sink_state(
        r, sink.id, status="retrying", failure_reason=reason, next_retry_at=due, **extra
    )
    if delay <= 0:
        return True  # "immediately": the loop tries again now
    scheduling.wake_at(r, sink.stream_id, sink.id, due)
    return False


def _disable(
    r: redis.Redis,
    sink: SinkRecord,
    reason: str,
    records: list[attempts.Attempt],
    kind: str,
    learned: str | None = None,
) -> None:
    pipe = r.pipeline(transaction=False)
    for record in records:
        attempts.record(pipe, sink.id, record)
    pipe.delete(retry_count_key(sink.id))
    metrics.inc(pipe, "delivery_failures", 1, **{"class": kind})
    pipe.execute()
    extra = {"negotiated_encoding": learned} if learned is not None else {}
    store_sinks.update_sink_state(
        r, sink.id, status="disabled", failure_reason=reason[:1000], next_retry_at=None, **extra
    )
    log.warning("sink %s disabled: %s", sink.id, reason)
