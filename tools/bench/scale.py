"""Phases at a platform's shape: many streams with one sink each (``fanout``)
and many sinks with nothing to do (``idle``).

fanout: ``--fanout-streams`` streams (default 1,000), one otelTracing sink each
(batchSize ``--batch-size``, maxWaitSecs 1), ``--fanout-events`` POSTed at full
speed round-robin over them; rate = events / first POST to last span, and the
p50/p99 of POST-to-span latency. The sinks run the bench's handler, a bundled
one, so they share its isolates (``transform/runtime.py``); with
``--fanout-own-code`` each sink's code differs by a comment, as customers' own
code would: an isolate per sink, whose first batch costs ~10 ms more of CPU.

idle: ``--idle-sinks`` sinks (default 10,000; ``--idle-sinks-per-stream`` per
stream) written as the API writes them, many per MULTI (seconds, not
minutes), a settle pause, then over ``--idle-seconds`` the Redis
commands/s from ``INFO commandstats`` deltas (less the bench's own probe) and
the CPU % of the workers, API and Redis from ``/proc/<pid>/stat``. Nothing is
POSTed: every sink of the run is caught up, so all that runs is housekeeping.
The sinks are made only once the reaper has built its sets
(``ss:housekeeping``): on a fresh data dir its first round walks every sink
that exists then (``reaper.build``, once, for data from before the sets), and
10,000 sinks made before it would be that one-time walk, not steady state.
"""

from __future__ import annotations

import time
from typing import Any

from streamsink.resource_ids import new_sink_id, new_stream_id
from streamsink.storage import keys
from streamsink.storage.base import now_ms
from streamsink.storage.sinks import CONFIG_FIELDS, SinkRecord, stage_fields
from streamsink.storage.streams import StreamRecord
from tools.bench.harness import Bench
from tools.bench.procstats import calls_delta, command_calls, proc_cpu_s, sleep_until
from tools.devstack import wait_until

FANOUT_PATH = "/fanout/v1/traces"
IDLE_PATH = "/idle/v1/traces"


def fanout(bench: Bench) -> dict[str, Any]:
    args = bench.args
    t0 = time.monotonic()
    ids = bench.streams_with_sinks(
        "bench-fanout",
        args.fanout_streams,
        bench.rx + FANOUT_PATH,
        1,
        own_code=args.fanout_own_code,
    )
    setup_s = time.monotonic() - t0
    pids = bench.pids()
    cpu0 = {role: sum(proc_cpu_s(p) for p in ps) for role, ps in pids.items()}
    events = args.fanout_events or args.events
    sent = bench.load(ids, events, 0, args.max_seconds, args.fanout_batch_post)
    bench.wait_delivered(FANOUT_PATH, sent["accepted"])
    cpu1 = {role: sum(proc_cpu_s(p) for p in ps) for role, ps in pids.items()}
    stats = bench.check(FANOUT_PATH, sent)
    span_s = max(1e-6, (stats["last_us"] - sent["first_send_us"]) / 1e6)
    return {
        "fanout_events_per_s": round(stats["distinct"] / span_s),
        "fanout_latency_ms_p50": stats["latency_ms_p50"],
        "fanout_latency_ms_p99": stats["latency_ms_p99"],
        "fanout_streams": len(ids),
        "fanout_own_code": bool(args.fanout_own_code),
        "fanout_events": sent["accepted"],
        "fanout_seconds": round(span_s, 2),
        "fanout_setup_s": round(setup_s, 1),
        "fanout_lost": stats["missing"],
        "fanout_cpu_s": {k: round(cpu1[k] - cpu0[k], 1) for k in cpu0},
    }


def create_idle_sinks(bench: Bench, n: int, per_stream: int, chunk: int = 250) -> int:
    """``n`` enabled otelTracing sinks, ``per_stream`` to a stream, written as
    the API's create writes them (``streams.stage_new_stream`` and
    ``sink_edits._stage_create``: the records, their indexes, a sequence number
    each, the status counts the sinks gauge reads) but ``chunk`` streams per
    MULTI: with ``appendfsync always`` one fsync per batch instead of several
    per sink. Returns how many were made."""
    client = bench.stack.redis_client()
    url = bench.rx + IDLE_PATH
    n_streams = -(-n // per_stream)
    made = 0
    try:
        for lo in range(0, n_streams, chunk):
            counts = [min(per_stream, n - i * per_stream) for i in range(lo, lo + chunk)]
            counts = [c for c in counts if c > 0]
            used = len(counts) + sum(counts)
            seq = int(client.incrby(keys.SEQ, used)) - used
            ts = now_ms()
            pipe = client.pipeline(transaction=True)
            for i, count in enumerate(counts, start=lo):
                seq += 1
                stream = StreamRecord(
                    id=new_stream_id(),
                    name=f"bench-idle-{i}",
                    uid=None,
                    metadata={},
                    created_at=ts,
                    updated_at=ts,
                    seq=seq,
                )
                pipe.hset(keys.stream(stream.id), mapping=stream.to_hash())
                pipe.zadd(keys.STREAMS, {stream.id: seq})
                for _ in range(count):
                    seq += 1
                    sink = SinkRecord(
                        id=new_sink_id(),
                        stream_id=stream.id,
                        type="otelTracing",
                        url=url,
                        batch_size=bench.args.batch_size,
                        created_at=ts,
                        updated_at=ts,
                        seq=seq,
                    )
                    values = {"id": sink.id, "streamId": stream.id, "status": sink.status}
                    values |= {CONFIG_FIELDS[k]: getattr(sink, k) for k in CONFIG_FIELDS}
                    values |= {"cursor": sink.cursor, "createdAt": ts, "updatedAt": ts, "seq": seq}
                    stage_fields(pipe, sink.id, values)
                    pipe.zadd(keys.stream_sinks(stream.id), {sink.id: seq})
                    made += 1
            pipe.hincrby(keys.SINK_STATUS_COUNTS, "enabled", sum(counts))
            pipe.execute()
    finally:
        client.close()
    return made


def idle(bench: Bench) -> dict[str, Any]:
    args = bench.args
    client = bench.stack.redis_client()
    try:
        wait_until(lambda: client.exists(keys.HOUSEKEEPING_BUILT), 60, what="the reaper's build")
    finally:
        client.close()
    t0 = time.monotonic()
    made = create_idle_sinks(bench, args.idle_sinks, max(1, args.idle_sinks_per_stream))
    create_s = time.monotonic() - t0
    time.sleep(args.idle_settle)
    pids = bench.pids()
    probe = bench.stack.redis_client()
    try:
        probe.ping()  # connect (and its handshake) before the first reading
        due = int(probe.zcard(keys.DUE))
        calls0 = command_calls(probe)
        cpu0 = {role: sum(proc_cpu_s(p) for p in ps) for role, ps in pids.items()}
        start = time.monotonic()
        sleep_until(start + args.idle_seconds)
        calls1 = command_calls(probe)
        cpu1 = {role: sum(proc_cpu_s(p) for p in ps) for role, ps in pids.items()}
        elapsed = time.monotonic() - start
    finally:
        probe.close()
    # The first INFO is counted in the second reading; the second is not.
    delta = calls_delta(calls0, calls1, own={"info": 1})
    pct = {k: round(100 * (cpu1[k] - cpu0[k]) / elapsed, 2) for k in cpu0}
    top = sorted(delta.items(), key=lambda kv: -kv[1])[:12]
    return {
        "idle_redis_cmds_per_s": round(sum(delta.values()) / elapsed, 1),
        "idle_worker_cpu_pct": pct["workers"],
        "idle_api_cpu_pct": pct["api"],
        "idle_redis_cpu_pct": pct["redis"],
        "idle_sinks": made,
        "idle_seconds": round(elapsed, 1),
        "idle_create_s": round(create_s, 1),
        "idle_due_sinks": due,
        "idle_redis_cmds_top": {k: round(v / elapsed, 2) for k, v in top},
    }
