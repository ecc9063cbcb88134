"""The reaper: re-kicks stranded sinks and trims event logs, by work.

Runs from every worker's housekeeping thread; a short Redis lock lets one
process do a round at a time. A sink is stranded when it has work (as
``delivery.has_work`` says: pending events, or a retry or wait that is due)
but no job queued or running and no live lease — after a SIGKILL, a lost job, or an
RQ scheduler whose lock holder died.

A round never walks every sink or stream. It reads the due entries of
``ss:due`` (``scheduling``: kicks, wake-ups and retries put sinks there, a job
that ends with nothing to do takes its sink out) and looks at those sinks only:
busy ones come back in ``BUSY_RECHECK_MS`` (a crashed worker's lease expires,
then the sink is kicked again), waiting or retrying ones at their time, idle
ones with work are kicked, idle ones without leave the set. Once a minute it
trims the logs of the streams in ``ss:trim-due`` whose oldest untrimmed append
is older than the retention (every append puts its stream there). An idle sink
or stream costs nothing; a round with nothing due is three or four commands.
A data dir from before these sets is walked once to build them (``build``).
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import redis

from streamsink.delivery import scheduling
from streamsink.delivery.engine import Engine
from streamsink.delivery.job import ACTIVE
from streamsink.storage import eventlog as event_log
from streamsink.storage import keys, scripts
from streamsink.storage import sinks as store_sinks
from streamsink.storage.base import STREAMS_KEY, to_str

log = logging.getLogger(__name__)

REAP_LOCK = keys.REAPER_LOCK
REAP_EVERY_MS = 4000
TRIM_LOCK = keys.TRIMMER_LOCK
TRIM_EVERY_S = 60
#: A busy sink (job queued or running) is looked at again this much later.
BUSY_RECHECK_MS = 10_000
#: Due entries read per page, and pages per round at most.
PAGE = 500
MAX_PAGES = 20

_FIELDS = ("id", "streamId", "status", "nextRetryAt", "cursor", "type")


def reap(engine: Engine) -> int:
    """One round, if no other process did one lately. Returns sinks kicked."""
    r = engine.redis
    if not r.set(REAP_LOCK, 1, nx=True, px=REAP_EVERY_MS):
        return 0
    if not r.exists(keys.HOUSEKEEPING_BUILT):
        build(r)
    kicked = reap_due(r)
    if r.set(TRIM_LOCK, 1, nx=True, ex=TRIM_EVERY_S):
        trim_due(engine)
    return kicked


def reap_due(r: redis.Redis, now: int | None = None) -> int:
    """Look at the sinks due in ``ss:due`` (see the module docstring). Returns
    sinks kicked."""
    now = scheduling.now_ms() if now is None else now
    kicked = 0
    for _ in range(MAX_PAGES):
        ids = [to_str(x) or "" for x in r.zrangebyscore(keys.DUE, "-inf", now, start=0, num=PAGE)]
        if not ids:
            break
        kicked += _look_at(r, ids, now)
        if len(ids) < PAGE:
            break
    return kicked


def _look_at(r: redis.Redis, ids: list[str], now: int) -> int:
    pipe = r.pipeline(transaction=False)
    for sink_id in ids:
        pipe.hmget(keys.sink(sink_id), _FIELDS)
        pipe.exists(scheduling.kick_key(sink_id), scheduling.lease_key(sink_id))
        pipe.get(scheduling.wait_key(sink_id))
    replies = pipe.execute()
    later: dict[str, int] = {}  # sink id -> when to look again
    gone: list[str] = []
    settle: list[str] = []
    candidates: list[tuple[str, str, str, str]] = []  # (sink, stream, status, cursor)
    for i, sink_id in enumerate(ids):
        row, busy, wait = replies[3 * i], replies[3 * i + 1], replies[3 * i + 2]
        sink_id_, stream_id, status, retry_at, cursor, kind = (to_str(v) for v in row)
        status = status or "enabled"
        waiting = int(wait) if wait is not None else 0
        if not sink_id_ or not stream_id:
            gone.append(sink_id)
        elif busy:
            later[sink_id] = now + BUSY_RECHECK_MS
        elif status not in ACTIVE or kind == keys.POLLER_SINK_TYPE:  # no worker job
            settle.append(sink_id)
        elif waiting > now:
            later[sink_id] = waiting + scheduling.WAKE_GRACE_MS
        elif status == "retrying" and retry_at and int(retry_at) > now:
            later[sink_id] = int(retry_at) + scheduling.WAKE_GRACE_MS
        else:
            candidates.append((sink_id, stream_id, status, cursor or event_log.START))
    newest = _newest_ids(r, {c[1] for c in candidates})
    kicked = 0
    for sink_id, stream_id, status, cursor in candidates:
        if newest[stream_id] == cursor:
            settle.append(sink_id)
            continue
        recheck = now + BUSY_RECHECK_MS
        if scheduling.kick(r, stream_id, sink_id, slow=status != "enabled", due_ms=recheck):
            kicked += 1
            log.info("re-kicked sink %s", sink_id)
        else:  # kicked meanwhile by someone else
            later[sink_id] = recheck
    pipe = r.pipeline(transaction=False)
    if gone:
        pipe.zrem(keys.DUE, *gone)
    if later:
        pipe.zadd(keys.DUE, later, xx=True)
    pipe.execute()
    for sink_id in settle:
        scheduling.settle(r, sink_id, recheck_at=now + BUSY_RECHECK_MS)
    return kicked


def _newest_ids(r: redis.Redis, stream_ids: set[str]) -> dict[str, str]:
    """The newest event id of each stream's log (``START`` when empty), one round trip."""
    ordered = sorted(stream_ids)
    if not ordered:
        return {}
    pipe = r.pipeline(transaction=False)
    for stream_id in ordered:
        event_log.stage_last_id(pipe, stream_id)
    out = {}
    for stream_id, last in zip(ordered, pipe.execute(), strict=True):
        out[stream_id] = event_log.last_id_from(last)
    return out


def trim_due(engine: Engine) -> int:
    """Trim the logs of the streams in ``ss:trim-due`` whose oldest untrimmed
    append is older than the retention; each is rescored by its oldest entry
    left (or leaves the set with an empty log). Returns streams trimmed."""
    r = engine.redis
    now = scheduling.now_ms()
    cutoff = now - engine.settings.log_retention_secs * 1000
    again = cutoff + TRIM_EVERY_S * 1000  # held by a slow sink: look next minute
    done = 0
    for _ in range(MAX_PAGES):
        raw = r.zrangebyscore(keys.TRIM_DUE, "-inf", cutoff, start=0, num=PAGE)
        if not raw:
            break
        for stream_id in (to_str(x) or "" for x in raw):
            sinks = store_sinks.list_stream_sinks(r, stream_id)
            trim_log(engine, stream_id, [s.cursor for s in sinks])
            for sink in stranded(r, stream_id, sinks):  # a safety net, by work too
                scheduling.kick(r, stream_id, sink.id, slow=sink.status != "enabled")
            trim_keys = [keys.event_log(stream_id), keys.TRIM_DUE]
            scripts.TRIM_RESCORE(r, trim_keys, [stream_id, again])
            done += 1
        if len(raw) < PAGE:
            break
    return done


def build(r: redis.Redis) -> None:
    """Build the due sets and the sinks-by-status counts from one walk of every
    stream and sink: for a data dir written before they existed. Later,
    every change keeps them (``scheduling``, ``storage.sinks``)."""
    now = scheduling.now_ms()
    counts: Counter[str] = Counter()
    for raw in r.zrange(STREAMS_KEY, 0, -1):
        stream_id = to_str(raw) or ""
        sinks = store_sinks.list_stream_sinks(r, stream_id)
        counts.update(s.status for s in sinks)
        pipe = r.pipeline(transaction=False)
        due = {s.id: now for s in sinks if s.status in ACTIVE and not s.polled}
        if due:
            pipe.zadd(keys.DUE, due, nx=True)
        pipe.xrange(keys.event_log(stream_id), "-", "+", count=1)
        first = pipe.execute()[-1]
        if first:
            ms = int((to_str(first[0][0]) or "0-0").partition("-")[0])
            r.zadd(keys.TRIM_DUE, {stream_id: ms}, nx=True)
    write_status_counts(r, counts)
    r.set(keys.HOUSEKEEPING_BUILT, now)
    log.info("housekeeping sets built from a walk of %d sinks", sum(counts.values()))


def write_status_counts(r: redis.Redis, counts: Counter[str] | dict[str, int]) -> None:
    pipe = r.pipeline(transaction=True)
    pipe.delete(keys.SINK_STATUS_COUNTS)
    mapping: dict[str, Any] = {s: counts.get(s, 0) for s in store_sinks.STATUSES}
    pipe.hset(keys.SINK_STATUS_COUNTS, mapping=mapping)
    pipe.execute()


def stranded(
    r: redis.Redis, stream_id: str, sinks: list[store_sinks.SinkRecord]
) -> list[store_sinks.SinkRecord]:
    """The sinks of one stream that are idle (no kick flag, no lease) and have
    work (``delivery.has_work``): one round trip for the whole stream, not a
    few per sink (a thousand parked sinks would make each round slow)."""
    now = scheduling.now_ms()
    active = [
        s
        for s in sinks
        if s.status in ACTIVE
        and not s.polled
        and not (s.status == "retrying" and (s.next_retry_at or 0) > now)
    ]
    if not active:
        return []
    pipe = r.pipeline(transaction=False)
    event_log.stage_last_id(pipe, stream_id)
    for sink in active:
        pipe.exists(scheduling.kick_key(sink.id), scheduling.lease_key(sink.id))
        pipe.get(scheduling.wait_key(sink.id))
    last, *replies = pipe.execute()
    newest = event_log.last_id_from(last)
    out = []
    for sink, busy, wait in zip(active, replies[::2], replies[1::2], strict=True):
        waiting = wait is not None and int(wait) > now
        if not busy and not waiting and newest != sink.cursor:
            out.append(sink)
    return out


def trim_log(engine: Engine, stream_id: str, cursors: list[str] | None = None) -> None:
    """Trim the stream's log (``eventlog.trim_stream``: it reads the cursors)."""
    event_log.trim_stream(
        engine.redis, stream_id, event_log.LogPolicy.for_settings(engine.settings)
    )
