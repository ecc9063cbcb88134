"""One batch of one sink: prepare, send, then record what happened.

What a batch becomes and how it is sent is the sink kind's (``delivery.kinds``,
``KINDS[sink.type]``: transform, encode, send, classify); this module keeps
what is the same for every kind. Success moves the cursor (compare-and-set
against the cursor the batch was read at) and clears a retrying state; a
retryable answer schedules the next try (``retrying`` + ``nextRetryAt``: the
receiver's ``Retry-After``, else the retry schedule); a permanent answer, a
transform error, an exhausted schedule or a sink failing for
``STREAMSINK_RETRY_MAX_ELAPSED`` disables the sink with its ``failureReason``
(events and cursor kept). Every outcome is an attempt record (an encoding
switch too) and metrics; on success those, what the kind remembers (the trace
memory) and the cursor move go to Redis in one pipeline, with the caller's
reads for its next batch at its end.
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
from streamsink.delivery.kinds import KINDS
from streamsink.delivery.retry import format_duration
from streamsink.errors import TransformError
from streamsink.sinkhttp.client import Outcome
from streamsink.storage import attempts, metrics
from streamsink.storage import eventlog as event_log
from streamsink.storage import sinks as store_sinks
from streamsink.storage.sinks import SinkRecord

log = logging.getLogger(__name__)


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
        return attempts.Attempt(
            outcome,
            spans,
            duration,
            first_event=first,
            last_event=last,
            num_events=len(pending.events),
            **kw,
        )

    kind = KINDS.get(sink.type)
    if kind is None:
        reason = f'sink type "{sink.type}" cannot be delivered by this version of streamsink'
        _disable(r, sink, reason, [attempt("failed", 0, error=reason)], "permanent")
        return False
    try:
        prepared = kind.prepare(engine, sink, pending.events)
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

    outcome = kind.send(engine, sink, prepared, first, last)
    sent, records, learned = outcome.result, outcome.records, outcome.learned
    for record in records:  # the kind's own records (a 415 switch) are of this batch
        if record.num_events is None:
            record.num_events = len(pending.events)
    spans = kind.items(prepared)
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
        store_sinks.reset_retry_state(pipe, sink.id)
        metrics.inc(pipe, "batches_delivered", 1, sink=sink.id)
        metrics.inc(pipe, "spans_delivered", spans, sink=sink.id)
        metrics.inc(pipe, "spans_rejected", sent.rejected_spans, sink=sink.id)
        kind.stage_success(pipe, engine, sink, prepared)
        state: dict[str, Any] = dict(learned)
        if sink.status != "enabled" or sink.failure_reason:
            state |= {"status": "enabled", "failure_reason": None, "next_retry_at": None}
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
    reason = outcome.reason or failure.reason
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
        failure_class = "exhausted"
    else:
        failure_class = "permanent"
    record = attempt("failed", spans, error=reason, **details)
    _disable(r, sink, reason, [*records, record], failure_class, learned)
    return False


def _retry(
    engine: Engine,
    sink: SinkRecord,
    reason: str,
    delay: float,
    records: list[attempts.Attempt],
    learned: dict[str, Any],
) -> bool:
    r = engine.redis
    due = scheduling.now_ms() + int(delay * 1000)
    pipe = r.pipeline(transaction=False)
    for record in records:
        attempts.record(pipe, sink.id, record)
    metrics.inc(pipe, "delivery_failures", 1, **{"class": "retryable"})
    metrics.inc(pipe, "retries")
    pipe.execute()
    store_sinks.update_sink_state(
        r, sink.id, status="retrying", failure_reason=reason, next_retry_at=due, **learned
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
    failure_class: str,
    learned: dict[str, Any] | None = None,
) -> None:
    pipe = r.pipeline(transaction=False)
    for record in records:
        attempts.record(pipe, sink.id, record)
    store_sinks.reset_retry_state(pipe, sink.id)
    metrics.inc(pipe, "delivery_failures", 1, **{"class": failure_class})
    pipe.execute()
    store_sinks.update_sink_state(
        r,
        sink.id,
        status="disabled",
        failure_reason=reason[:1000],
        next_retry_at=None,
        **(learned or {}),
    )
    log.warning("sink %s disabled: %s", sink.id, reason)
