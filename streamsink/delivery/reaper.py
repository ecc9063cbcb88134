"""The reaper: re-kicks stranded sinks and trims event logs.

Runs from every worker's housekeeping thread; a short Redis lock lets one
process do a round at a time. A sink is stranded when it has work (as
``delivery.has_work`` says: pending events, or a retry or wait that is due)
but no job queued or running and no live lease — after a SIGKILL, a lost job, or an
RQ scheduler whose lock holder died.
"""

from __future__ import annotations

import logging

import redis

from streamsink.delivery import scheduling
from streamsink.delivery.engine import Engine
from streamsink.delivery.job import ACTIVE
from streamsink.storage import eventlog as event_log
from streamsink.storage import keys
from streamsink.storage import sinks as store_sinks
from streamsink.storage.base import STREAMS_KEY, to_str

log = logging.getLogger(__name__)

REAP_LOCK = keys.REAPER_LOCK
REAP_EVERY_MS = 4000
TRIM_LOCK = keys.TRIMMER_LOCK
TRIM_EVERY_S = 60


def reap(engine: Engine) -> int:
    """One round, if no other process did one lately. Returns sinks kicked."""
    r = engine.redis
    if not r.set(REAP_LOCK, 1, nx=True, px=REAP_EVERY_MS):
        return 0
    kicked = 0
    trim = bool(r.set(TRIM_LOCK, 1, nx=True, ex=TRIM_EVERY_S))
    for raw in r.zrange(STREAMS_KEY, 0, -1):
        stream_id = to_str(raw) or ""
        sinks = store_sinks.list_stream_sinks(r, stream_id)
        for sink in stranded(r, stream_id, sinks):
            slow = sink.status != "enabled"  # a retrying sink waits behind healthy ones
            if scheduling.kick(r, stream_id, sink.id, slow=slow):
                kicked += 1
                log.info("re-kicked sink %s", sink.id)
        if trim:
            trim_log(engine, stream_id, [s.cursor for s in sinks])
    return kicked


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
    pipe.xrevrange(event_log.log_key(stream_id), "+", "-", count=1)
    for sink in active:
        pipe.exists(scheduling.kick_key(sink.id), scheduling.lease_key(sink.id))
        pipe.get(scheduling.wait_key(sink.id))
    last, *replies = pipe.execute()
    newest = (to_str(last[0][0]) if last else None) or event_log.START
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
