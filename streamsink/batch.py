"""One batch of one sink: transform, POST, then record what happened.

Success moves the cursor (compare-and-set against the cursor the batch was
read at) and clears a retrying state; a retryable answer schedules the next
try on the retry schedule (``retrying`` + ``nextRetryAt``); a permanent
answer, a transform error or an exhausted schedule disables the sink with its
``failureReason``. Every outcome is an attempt record and metrics; on success
those, the trace memory and the cursor move go to Redis in one pipeline,
with the caller's reads for its next batch at its end.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import redis
from redis.client import Pipeline

from streamsink import attempts, metrics, scheduling, store_sinks
from streamsink import log as event_log
from streamsink.engine import Engine
from streamsink.errors import TransformError
from streamsink.otlp.client import BatchResult, DeliveryResult, Outcome, deliver_spans
from streamsink.otlp.spans import Span
from streamsink.otlp.split import encode_bodies
from streamsink.store_sinks import SinkRecord
from streamsink.transform.pipeline import TransformResult, transform

log = logging.getLogger(__name__)


def retry_count_key(sink_id: str) -> str:
    return f"ss:retries:{sink_id}"


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

    def attempt(outcome: str, spans: int, **kw: object) -> attempts.Attempt:
        duration = (time.perf_counter() - started) * 1000
        return attempts.Attempt(outcome, spans, duration, first_event=first, last_event=last, **kw)  # type: ignore[arg-type]

    try:
        result = transform(
            [{"eventType": e.event_type, "payload": e.payload} for e in pending.events],
            stream_id=sink.stream_id,
            sink_key=sink.id,
            code=sink.code,
            runtime=engine.runtime,
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
        _disable(r, sink, reason, attempt("failed", 0, error=reason), "transform")
        return False
    transformed = time.perf_counter()

    sent = send_bodies(engine, sink, result)
    spans = len(result.batch.spans)
    pipe = r.pipeline(transaction=False)
    metrics.observe(pipe, "transform_duration_seconds", transformed - started)
    metrics.observe(pipe, "delivery_duration_seconds", time.perf_counter() - started)
    if sent.ok:
        final = sent.attempts[-1] if sent.attempts else None
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
        engine.traces.stage_remember(pipe, sink.stream_id, result.span_traces)
        recovered = sink.status != "enabled" or sink.failure_reason
        store_sinks.stage_sink_state(
            pipe,
            sink.id,
            cursor=pending.scanned_to,
            if_cursor=sink.cursor,
            **(
                {"status": "enabled", "failure_reason": None, "next_retry_at": None}
                if recovered
                else {}
            ),
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
    reason = failure.reason
    if failure.outcome is Outcome.RETRYABLE:
        n = int(r.incr(retry_count_key(sink.id)))
        delay = engine.retry.next_delay(n, failure.retry_after)
        if delay is not None:
            return _retry(
                engine,
                sink,
                reason,
                delay,
                attempt("retrying", spans, error=failure.error, **details),
            )
        reason = f"retries exhausted after {n} attempts; last: {reason}"
        kind = "exhausted"
    else:
        kind = "permanent"
    _disable(r, sink, reason, attempt("failed", spans, error=reason, **details), kind)
    return False


def send_bodies(engine: Engine, sink: SinkRecord, result: TransformResult) -> BatchResult:
    """POST every body in order; a body answered 413 is sent again in halves
    (splitting further on 413). Stops at the first failure."""
    total = BatchResult(Outcome.SUCCESS)
    offset = 0
    for body in result.bodies:
        spans = result.batch.spans[offset : offset + body.span_count]
        offset += body.span_count
        res = engine.client.send(
            sink.url,
            body.data,
            sink.headers,
            content_type=body.content_type,
            content_encoding=body.content_encoding,
        )
        total.attempts.append(res)
        if res.outcome is Outcome.TOO_LARGE and len(spans) > 1:
            if not _send_halves(engine, sink, result, spans, total):
                return total
            continue
        if not res.ok:
            _fail(total, res)
            return total
        total.delivered += body.span_count
        if res.partial_success is not None:
            total.rejected_spans += res.partial_success.rejected_spans
    return total


def _send_halves(
    engine: Engine,
    sink: SinkRecord,
    result: TransformResult,
    spans: Sequence[Span],
    total: BatchResult,
) -> bool:
    def encode(part: Sequence[Span]) -> bytes:
        return encode_bodies(replace(result.batch, spans=list(part)))[0].data

    mid = len(spans) // 2
    for half in (spans[:mid], spans[mid:]):
        sub = deliver_spans(engine.client, sink.url, half, encode, headers=sink.headers)
        total.attempts.extend(sub.attempts)
        total.delivered += sub.delivered
        total.rejected_spans += sub.rejected_spans
        if not sub.ok:
            total.outcome, total.failure = sub.outcome, sub.failure
            return False
    return True


def _fail(total: BatchResult, res: DeliveryResult) -> None:
    if res.outcome is Outcome.TOO_LARGE:  # a single span the sink will never take
        res = replace(
            res, outcome=Outcome.PERMANENT, error="a single span is too large for the sink (413)"
        )
    total.outcome, total.failure = res.outcome, res


def _retry(
    engine: Engine, sink: SinkRecord, reason: str, delay: float, record: attempts.Attempt
) -> bool:
    r = engine.redis
    due = scheduling.now_ms() + int(delay * 1000)
    pipe = r.pipeline(transaction=False)
    attempts.record(pipe, sink.id, record)
    metrics.inc(pipe, "delivery_failures", 1, **{"class": "retryable"})
    metrics.inc(pipe, "retries")
    pipe.execute()
    store_sinks.update_sink_state(
        r, sink.id, status="retrying", failure_reason=reason, next_retry_at=due
    )
    if delay <= 0:
        return True  # "immediately": the loop tries again now
    scheduling.wake_at(r, sink.stream_id, sink.id, due)
    return False


def _disable(
    r: redis.Redis, sink: SinkRecord, reason: str, record: attempts.Attempt, kind: str
) -> None:
    pipe = r.pipeline(transaction=False)
    attempts.record(pipe, sink.id, record)
    pipe.delete(retry_count_key(sink.id))
    metrics.inc(pipe, "delivery_failures", 1, **{"class": kind})
    pipe.execute()
    store_sinks.update_sink_state(
        r, sink.id, status="disabled", failure_reason=reason[:1000], next_retry_at=None
    )
    log.warning("sink %s disabled: %s", sink.id, reason)
