"""Delivering one sink: the RQ job and the loop it runs (DESIGN section 1).

Holding the sink's lease (one batch in flight per sink: FIFO), the loop reads
up to ``batchSize`` matching events after the cursor, waits (by scheduling a
wake-up, never sleeping) until the batch is full or its oldest event is
``maxWaitSecs`` old, transforms, POSTs, and on success moves the cursor with a
compare-and-set, so a cursor moved meanwhile (skip, another lease holder after
an expiry) is never overwritten. It keeps going while batches are ready, for
at most ``TIME_SLICE`` seconds (or until the worker stops), then yields the
thread to other sinks.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

import redis
from rq import get_current_job

from streamsink import attempts, scheduling, store_sinks
from streamsink import log as event_log
from streamsink.engine import Engine, current
from streamsink.errors import TransformError
from streamsink.otlp.client import BatchResult, Outcome, deliver_spans
from streamsink.otlp.split import encode_bodies
from streamsink.store_sinks import SinkRecord
from streamsink.transform.pipeline import transform

log = logging.getLogger(__name__)

TIME_SLICE = 5.0
SCAN_CHUNK = 1000
MAX_SCAN = 20_000
ACTIVE = ("enabled", "retrying")


def retry_count_key(sink_id: str) -> str:
    return f"ss:retries:{sink_id}"


def deliver_job(stream_id: str, sink_id: str) -> None:
    """RQ job: deliver for one sink (on the worker's pool when there is one)."""
    job = get_current_job()
    engine, submit = current(job.connection if job else None)
    if submit is None:
        process_sink(engine, stream_id, sink_id)
    else:
        submit(process_sink, engine, stream_id, sink_id)


@dataclass(slots=True)
class Pending:
    events: list[event_log.LogEntry]
    scanned_to: str  # id of the last log entry looked at (matching or not)


def read_pending(r: redis.Redis, sink: SinkRecord) -> Pending:
    """Up to ``batch_size`` matching events after the cursor, skipping others."""
    found: list[event_log.LogEntry] = []
    cursor = sink.cursor
    scanned = 0
    while len(found) < sink.batch_size and scanned < MAX_SCAN:
        want = sink.batch_size - len(found) if not sink.event_types else SCAN_CHUNK
        chunk = event_log.entries_after(r, sink.stream_id, cursor, want)
        if not chunk:
            break
        for entry in chunk:
            cursor = entry.id
            if sink.matches(entry.event_type):
                found.append(entry)
                if len(found) == sink.batch_size:
                    break
        scanned += len(chunk)
        if len(chunk) < want:
            break
    return Pending(found, cursor)


def has_work(r: redis.Redis, sink: SinkRecord) -> bool:
    """Whether an idle sink should get a job now."""
    if sink.status not in ACTIVE:
        return False
    now = scheduling.now_ms()
    if sink.status == "retrying" and sink.next_retry_at and sink.next_retry_at > now:
        return False
    if scheduling.waiting_until(r, sink.id) is not None:
        return False
    return event_log.last_id(r, sink.stream_id) != sink.cursor


def process_sink(engine: Engine, stream_id: str, sink_id: str) -> None:
    r = engine.redis
    lease = scheduling.Lease(r, sink_id)
    if not lease.acquire():
        return  # another process delivers; it re-checks for work when it ends
    engine.leases.add(lease)
    crashed = False
    try:
        _loop(engine, lease, stream_id, sink_id)
    except Exception:  # noqa: BLE001 - Redis blips etc.: the reaper re-kicks
        crashed = True
        log.exception("delivery for sink %s failed", sink_id)
    finally:
        engine.leases.discard(lease)
        try:
            lease.release()
            scheduling.clear_kick(r, sink_id)
            sink = store_sinks.get_sink(r, sink_id, with_code=False)
            # After a crash the reaper's next round retries, not a hot loop.
            if not crashed and sink is not None and has_work(r, sink):
                scheduling.kick(r, stream_id, sink_id)
        except redis.RedisError:
            log.warning("could not re-check sink %s; the reaper will", sink_id)


def _loop(engine: Engine, lease: scheduling.Lease, stream_id: str, sink_id: str) -> None:
    r = engine.redis
    deadline = time.monotonic() + TIME_SLICE
    while time.monotonic() < deadline and not engine.stopping.is_set():
        scheduling.refresh_kick(r, sink_id)
        sink = store_sinks.get_sink(r, sink_id)
        if sink is None or sink.stream_id != stream_id or sink.status not in ACTIVE:
            return
        now = scheduling.now_ms()
        if sink.status == "retrying" and sink.next_retry_at and sink.next_retry_at > now:
            scheduling.wake_at(r, stream_id, sink_id, sink.next_retry_at)
            return
        pending = read_pending(r, sink)
        if not pending.events:
            if pending.scanned_to != sink.cursor:
                store_sinks.update_sink_state(
                    r, sink_id, cursor=pending.scanned_to, if_cursor=sink.cursor
                )
                continue
            return
        if len(pending.events) < sink.batch_size and sink.max_wait_secs > 0:
            due = pending.events[0].ts + sink.max_wait_secs * 1000
            if now < due:
                scheduling.wake_at(r, stream_id, sink_id, due)
                return
        if not lease.renew():
            return
        if not _deliver(engine, sink, pending):
            return


def _deliver(engine: Engine, sink: SinkRecord, pending: Pending) -> bool:
    """Send one batch; True when the loop may go on with the next."""
    r = engine.redis
    started = time.perf_counter()
    events = [{"eventType": e.event_type, "payload": e.payload} for e in pending.events]
    first, last = pending.events[0].id, pending.events[-1].id
    try:
        result = transform(
            events,
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
        # Anything else the batch makes the pipeline raise is its failure too:
        # disabling the sink with the reason beats re-running it forever.
        detail = str(exc) if isinstance(exc, TransformError) else f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, TransformError):
            log.exception("transforming events %s..%s of sink %s failed", first, last, sink.id)
        reason = f"transformation failed on events {first}..{last}: {detail}"
        _record(
            r,
            sink,
            attempts.Attempt(
                "failed", 0, _ms(started), error=reason, first_event=first, last_event=last
            ),
        )
        _disable(r, sink, reason)
        return False

    sent = _send_bodies(engine, sink, result)
    duration = _ms(started)
    failure = sent.failure
    last_status = sent.attempts[-1].status_code if sent.attempts else None
    excerpt = sent.attempts[-1].response_excerpt if sent.attempts else None
    if sent.ok:
        # The cursor moves past the batch (and past skipped non-matching entries
        # only when the batch took everything that was there).
        new_cursor = pending.scanned_to
        pipe = r.pipeline(transaction=False)
        attempts.record(
            pipe,
            sink.id,
            attempts.Attempt(
                "success",
                len(result.batch.spans),
                duration,
                status_code=last_status,
                rejected_spans=sent.rejected_spans,
                response_excerpt=excerpt or None,
                first_event=first,
                last_event=last,
            ),
        )
        pipe.delete(retry_count_key(sink.id))
        pipe.execute()
        engine.traces.remember(sink.stream_id, result.span_traces)
        moved = store_sinks.update_sink_state(
            r,
            sink.id,
            cursor=new_cursor,
            if_cursor=sink.cursor,
            **(
                {"status": "enabled", "failure_reason": None, "next_retry_at": None}
                if sink.status != "enabled" or sink.failure_reason
                else {}
            ),
        )
        return moved
    assert failure is not None
    reason = failure.reason
    if failure.outcome is Outcome.RETRYABLE:
        n = int(r.incr(retry_count_key(sink.id)))
        delay = engine.retry.next_delay(n, failure.retry_after)
        if delay is not None:
            due = scheduling.now_ms() + int(delay * 1000)
            _record(
                r,
                sink,
                attempts.Attempt(
                    "retrying",
                    len(result.batch.spans),
                    duration,
                    status_code=failure.status_code,
                    error=failure.error,
                    response_excerpt=failure.response_excerpt or None,
                    first_event=first,
                    last_event=last,
                ),
            )
            store_sinks.update_sink_state(
                r, sink.id, status="retrying", failure_reason=reason, next_retry_at=due
            )
            if delay <= 0:
                return True  # "immediately": the loop tries again now
            scheduling.wake_at(r, sink.stream_id, sink.id, due)
            return False
        reason = f"retries exhausted after {n} attempts; last: {reason}"
    _record(
        r,
        sink,
        attempts.Attempt(
            "failed",
            len(result.batch.spans),
            duration,
            status_code=failure.status_code,
            error=reason,
            response_excerpt=failure.response_excerpt or None,
            first_event=first,
            last_event=last,
        ),
    )
    _disable(r, sink, reason)
    return False


def _send_bodies(engine: Engine, sink: SinkRecord, result) -> BatchResult:  # type: ignore[no-untyped-def]
    """POST every body in order; a 413 splits that body's spans in halves."""
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
        if res.outcome is Outcome.TOO_LARGE and len(spans) > 1:
            batch = result.batch

            def encode(part, batch=batch):  # type: ignore[no-untyped-def]
                return encode_bodies(replace(batch, spans=list(part)))[0].data

            # This body got 413: send its halves (splitting further on 413),
            # not the whole body once more.
            total.attempts.append(res)
            mid = len(spans) // 2
            for half in (spans[:mid], spans[mid:]):
                sub = deliver_spans(engine.client, sink.url, half, encode, headers=sink.headers)
                total.attempts.extend(sub.attempts)
                total.delivered += sub.delivered
                total.rejected_spans += sub.rejected_spans
                if not sub.ok:
                    total.outcome, total.failure = sub.outcome, sub.failure
                    return total
            continue
        total.attempts.append(res)
        if not res.ok:
            if res.outcome is Outcome.TOO_LARGE:
                res = replace(
                    res,
                    outcome=Outcome.PERMANENT,
                    error="a single span is too large for the sink (413)",
                )
            total.outcome, total.failure = res.outcome, res
            return total
        total.delivered += body.span_count
        if res.partial_success is not None:
            total.rejected_spans += res.partial_success.rejected_spans
    return total


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _record(r: redis.Redis, sink: SinkRecord, attempt: attempts.Attempt) -> None:
    pipe = r.pipeline(transaction=False)
    attempts.record(pipe, sink.id, attempt)
    pipe.execute()


def _disable(r: redis.Redis, sink: SinkRecord, reason: str) -> None:
    r.delete(retry_count_key(sink.id))
    store_sinks.update_sink_state(
        r, sink.id, status="disabled", failure_reason=reason[:1000], next_retry_at=None
    )
    log.warning("sink %s disabled: %s", sink.id, reason)
