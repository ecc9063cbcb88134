"""Delivering one sink: the RQ job and the loop it runs (docs/architecture.md).

Holding the sink's lease (one batch in flight per sink: FIFO), the loop reads
up to ``batchSize`` matching events after the cursor, waits (by scheduling a
wake-up, never sleeping) until the batch is full or its oldest event is
``maxWaitSecs`` old, transforms, POSTs, and on success moves the cursor with a
compare-and-set, so a cursor moved meanwhile (skip, another lease holder after
an expiry) is never overwritten. It keeps going while batches are ready, for
at most ``TIME_SLICE`` seconds (or until the worker stops), then yields the
thread to other sinks. Each batch costs one Redis round trip: the batch's
outcome (``batch``) with, at its end, the reads for the next batch (the sink,
the lease's holder and the events after the cursor the batch ended at); a
re-read only when the cursor moved meanwhile or the sink filters event
types. The lease and the kick flag are renewed every few seconds, not every
batch. A sink whose destination is slow and at its cap of requests in flight
(``lanes.defer_if_busy``) is deferred before its batch: parked until a
request to its destination ends (then kicked: ``resume``), with a fallback
wake-up; the thread goes to other sinks. A sink that delivers steadily and
caught up lingers (``_linger``): it waits on its log for the next events
instead of ending, so steady traffic needs no job per batch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import redis
from redis.client import Pipeline
from rq import get_current_job

from streamsink.delivery import lanes, scheduling
from streamsink.delivery.batch import Pending, deliver_batch
from streamsink.delivery.engine import Engine
from streamsink.settings import Settings
from streamsink.storage import base as store
from streamsink.storage import eventlog as event_log
from streamsink.storage import sinks as store_sinks
from streamsink.storage.sinks import SinkRecord

log = logging.getLogger(__name__)

TIME_SLICE = 5.0
RENEW_AFTER = 4.0  # seconds between the loop's own renewals of lease and kick flag
LINGER_GRACE_MS = 1000  # a lingering sink's lease outlives its wait by this much
SCAN_CHUNK = 1000
MAX_SCAN = 20_000
ACTIVE = ("enabled", "retrying")


#: Runs a delivery elsewhere: ``submit(process_sink, engine, stream_id, sink_id)``
#: (the worker's thread pool, ``lanes.DeliveryPool.submit``).
Submit = Callable[..., Any]


def deliver(engine: Engine, submit: Submit | None, stream_id: str, sink_id: str) -> None:
    """Deliver for one sink with ``engine``: on ``submit`` (the worker's pool),
    or inline when None. ``streamsink worker`` runs each delivery job with this,
    bound to its engine and pool (``worker.DeliveryJob``)."""
    if submit is None:
        process_sink(engine, stream_id, sink_id)
    else:
        submit(process_sink, engine, stream_id, sink_id)


def deliver_job(stream_id: str, sink_id: str) -> None:
    """The RQ job function (``scheduling.JOB_PATH``) as a plain ``rq worker``
    runs it: an engine made for this job from env settings (``STREAMSINK_*``)
    on the job's Redis connection, inline, closed at the end. ``streamsink
    worker`` never calls it: it runs ``deliver`` with the engine and pool it
    keeps between jobs."""
    job = get_current_job()
    if job is None:
        raise RuntimeError("deliver_job runs inside an RQ worker (use deliver() elsewhere)")
    engine = Engine(job.connection, Settings())
    try:
        process_sink(engine, stream_id, sink_id)
    finally:
        engine.close()


def read_pending(
    r: redis.Redis, sink: SinkRecord, first: list[event_log.LogEntry] | None = None
) -> Pending:
    """Up to ``batch_size`` matching events after the cursor, skipping others.
    ``first``: the first read (``batch_size`` entries after the cursor), when the
    caller already made it."""
    found: list[event_log.LogEntry] = []
    cursor = sink.cursor
    scanned = 0
    while len(found) < sink.batch_size and scanned < MAX_SCAN:
        want = sink.batch_size - len(found) if not sink.event_types else SCAN_CHUNK
        if first is not None and not sink.event_types:
            chunk, first = first, None
        else:
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
    """Whether an idle sink should get a job now (never a ``poller`` sink)."""
    if not _may_run(sink, scheduling.now_ms()):
        return False
    if scheduling.waiting_until(r, sink.id) is not None:
        return False
    return event_log.last_id(r, sink.stream_id) != sink.cursor


def _may_run(sink: SinkRecord, now: int) -> bool:
    if sink.status not in ACTIVE or sink.polled:
        return False
    return not (sink.status == "retrying" and sink.next_retry_at and sink.next_retry_at > now)


def process_sink(engine: Engine, stream_id: str, sink_id: str) -> None:
    """Deliver for one sink while it has ready batches (``_loop``), then look
    once more: re-kick it when events came meanwhile, else take it out of the
    reaper's due set. Taking the lease comes with the first read of the sink,
    and giving it up with the last look, each in one round trip."""
    r = engine.redis
    lease = scheduling.Lease(r, sink_id)
    pipe = r.pipeline(transaction=False)
    lease.stage_acquire(pipe)
    pipe.hgetall(store.sink_key(sink_id))
    acquired, raw = pipe.execute()
    if not acquired:
        return  # another process delivers; it re-checks for work when it ends
    engine.leases.add(lease)
    crashed = False
    try:
        _loop(engine, lease, stream_id, sink_id, raw)
    except Exception:  # noqa: BLE001 - Redis blips etc.: the reaper re-kicks
        crashed = True
        log.exception("delivery for sink %s failed", sink_id)
    finally:
        engine.leases.discard(lease)
        try:
            _finish(r, lease, stream_id, sink_id, crashed)
        except redis.RedisError:
            log.warning("could not re-check sink %s; the reaper will", sink_id)


def _finish(
    r: redis.Redis, lease: scheduling.Lease, stream_id: str, sink_id: str, crashed: bool
) -> None:
    """Release the lease and the kick flag, and read what ``has_work`` needs,
    in one round trip; then re-kick or settle. After a crash the reaper's next
    round retries, not a hot loop."""
    pipe = r.pipeline(transaction=False)
    lease.release(pipe)
    pipe.delete(scheduling.kick_key(sink_id))
    store_sinks.stage_get_sink(pipe, sink_id)
    pipe.get(scheduling.wait_key(sink_id))
    event_log.stage_last_id(pipe, stream_id)
    _, _, row, wait, newest = pipe.execute()
    if crashed:
        return
    sink = store_sinks.sink_from_row(row)
    now = scheduling.now_ms()
    waiting = wait is not None and int(wait) > now
    if (
        sink is not None
        and _may_run(sink, now)
        and not waiting
        and event_log.last_id_from(newest) != sink.cursor
    ):
        scheduling.kick(r, stream_id, sink_id, slow=sink.status != "enabled")
    else:  # nothing to do: out of the reaper's due set
        scheduling.settle(r, sink_id)


class _Reads:
    """The loop's reads for one batch: the sink, whether the lease is still ours,
    and (a guess of) the next events. Reads only (no AOF fsync) but every
    ``RENEW_AFTER`` s, when they also renew the lease and the kick flag (both
    last 15 s; the housekeeping thread renews them too, every 3 s). After a
    delivered batch they ride at the end of its outcome pipeline (``replies``):
    one round trip per batch."""

    def __init__(self, lease: scheduling.Lease, stream_id: str, sink_id: str) -> None:
        self.lease, self.stream_id, self.sink_id = lease, stream_id, sink_id
        self.renewed_at = time.monotonic()  # the lease was just acquired
        self.renewing = False
        self.guess: tuple[str, int] | None = None  # (cursor, batch size) of the next batch
        self.replies: list[Any] | None = None

    def prime(self, raw: Any) -> None:
        """The first batch's reads, made as the lease was taken (so still ours)."""
        self.replies = [raw, self.lease.token]

    def stage(self, pipe: Pipeline) -> None:
        pipe.hgetall(store.sink_key(self.sink_id))
        self.renewing = time.monotonic() - self.renewed_at > RENEW_AFTER
        if self.renewing:
            self.lease.stage_keep_alive(pipe)
        else:
            self.lease.stage_check(pipe)
        if self.guess is not None:
            event_log.stage_entries_after(pipe, self.stream_id, *self.guess)

    def take(self, r: redis.Redis) -> tuple[Any, bool, list[Any]]:
        """(raw sink hash, lease still ours, prefetched XRANGE replies)."""
        replies, self.replies = self.replies, None
        if replies is None:
            pipe = r.pipeline(transaction=False)
            self.stage(pipe)
            replies = pipe.execute()
        raw, holder, *prefetched = replies
        renewed = bool(holder) if self.renewing else self.lease.is_holder(holder)
        if self.renewing and renewed:
            self.renewed_at = time.monotonic()
        return raw, renewed, prefetched


def _loop(engine: Engine, lease: scheduling.Lease, stream_id: str, sink_id: str, raw: Any) -> None:
    r = engine.redis
    deadline = time.monotonic() + TIME_SLICE
    reads = _Reads(lease, stream_id, sink_id)
    reads.prime(raw)
    steady = False
    while time.monotonic() < deadline and not engine.stopping.is_set():
        raw, renewed, prefetched = reads.take(r)
        sink = store_sinks.sink_from_raw(raw)
        if sink is None or sink.stream_id != stream_id or sink.status not in ACTIVE or sink.polled:
            return
        now = scheduling.now_ms()
        if sink.status == "retrying" and sink.next_retry_at and sink.next_retry_at > now:
            scheduling.wake_at(r, stream_id, sink_id, sink.next_retry_at, slow=True)
            return
        first = None
        if prefetched and reads.guess == (sink.cursor, sink.batch_size):
            first = event_log.entries_from(prefetched[0], sink.cursor, sink.batch_size)
        pending = read_pending(r, sink, first)
        if not pending.events:
            if pending.scanned_to != sink.cursor:
                store_sinks.update_sink_state(
                    r, sink_id, cursor=pending.scanned_to, if_cursor=sink.cursor
                )
                reads.guess = None
                continue
            if steady and _linger(engine, reads, sink, deadline):
                continue
            return
        if len(pending.events) < sink.batch_size and sink.max_wait_secs > 0:
            due = pending.events[0].ts + sink.max_wait_secs * 1000
            if now < due:
                scheduling.wake_at(r, stream_id, sink_id, due)
                return
        if not renewed:
            return
        fallback = lanes.defer_if_busy(sink.url, stream_id, sink_id)
        if fallback is not None:
            _defer(r, sink, fallback)
            return
        reads.guess = (pending.scanned_to, sink.batch_size)
        if not deliver_batch(engine, sink, pending, then=reads):
            return
        steady = engine.recent.steady(sink_id, _steady_within(engine))


def _steady_within(engine: Engine) -> float:
    """Seconds between two batches of a sink that make its traffic steady."""
    return max(1.0, 2 * engine.settings.delivery_linger_ms / 1000)


def _linger(engine: Engine, reads: _Reads, sink: SinkRecord, deadline: float) -> bool:
    """Whether new events came while the sink, caught up after a batch (its
    second within ``_steady_within`` s in this process: steady traffic),
    waited for them (``delivery_linger_ms``, within its time slice; a linger
    slot: ``lanes.idle_wait``) holding its lease and kick flag, so that
    appends meanwhile enqueue no job and the next batch starts at once.

    One round trip: the lease and the flag cut to the wait plus
    ``LINGER_GRACE_MS`` (and left alone by the housekeeping thread), so a
    worker killed while it waits holds the sink about a second, not
    ``LEASE_TTL``; the blocking read; then, as Redis runs what follows it in
    the pipeline once it returns, the next batch's reads with both renewed."""
    ms = min(engine.settings.delivery_linger_ms, int((deadline - time.monotonic()) * 1000))
    if ms <= 0 or engine.stopping.is_set():
        return False
    with lanes.idle_wait() as admitted:
        if not admitted:
            return False
        lease = reads.lease
        engine.leases.discard(lease)
        try:
            pipe = engine.redis.pipeline(transaction=False)
            lease.stage_keep_alive(pipe, ttl_ms=ms + LINGER_GRACE_MS)
            event_log.wait_after(pipe, sink.stream_id, sink.cursor, ms)
            reads.renewed_at = float("-inf")  # renewed in full after the wait
            reads.stage(pipe)
            held, came, *after = pipe.execute()
        finally:
            engine.leases.add(lease)
        if not (held and came):
            return False
        reads.replies = after
        return True


def _defer(r: redis.Redis, sink: SinkRecord, seconds: float) -> None:
    """The sink's destination is slow and at its cap: a wake-up in ``seconds``
    unless one is pending (``resume`` comes first, normally). The caller
    releases the lease; the events and the cursor stay as they are."""
    if scheduling.waiting_until(r, sink.id) is None:
        due = scheduling.now_ms() + int(seconds * 1000)
        scheduling.wake_at(r, sink.stream_id, sink.id, due, slow=True)
    log.debug("sink %s deferred: its destination is slow", sink.id)


def resume(r: redis.Redis, stream_id: str, sink_id: str) -> None:
    """A parked sink's turn: drop its fallback wake-up (else the sink would
    look busy waiting and not be re-kicked after this run) and kick it."""
    scheduling.clear_wait(r, sink_id)
    scheduling.kick(r, stream_id, sink_id, slow=True)
