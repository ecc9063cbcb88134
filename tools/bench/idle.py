"""The ``idle`` figure: what many idle sinks cost when nothing happens.

``measure_idle(stack, sinks=10_000, seconds=20)`` creates ``sinks`` streams with
one ``otelTracing`` sink each (through the storage layer: fast, the same
records the API writes; nothing to deliver), lets the workers settle, then
counts Redis commands over ``seconds`` from ``INFO commandstats`` deltas (the
tool's own ``INFO`` calls left out) and the workers' CPU seconds. Every command
counted is housekeeping: RQ's scheduler and heartbeats, lease renewal, the
reaper. ``scripts/bench``'s idle phase calls it; alone::

    .venv/bin/python -m tools.bench.idle --sinks 10000 --seconds 20 --workers 2

prints one JSON object (``redis_commands_per_s``, ``worker_cpu_pct``, the
busiest commands).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import orjson
import redis

from streamsink.storage import sink_edits
from streamsink.storage import streams as store_streams
from tools.devstack import Stack

SINK_URL = "http://127.0.0.1:9/v1/traces"  # never called: nothing to deliver


def create_idle_sinks(r: redis.Redis, count: int, prefix: str = "idle") -> list[str]:
    """``count`` streams with one enabled sink each; their stream ids."""
    out = []
    for i in range(count):
        stream = store_streams.create_stream(r, name=f"{prefix}-{i}", uid=None, metadata=None)
        sink_edits.create_sink(r, stream.id, {"type": "otelTracing", "url": SINK_URL})
        out.append(stream.id)
    return out


def command_calls(r: redis.Redis) -> dict[str, int]:
    """Calls per command so far (``INFO commandstats``), ``info`` itself left out."""
    stats = r.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): int(v["calls"])
        for name, v in stats.items()
        if name != "cmdstat_info"
    }


def _cpu_s(pids: list[int]) -> float:
    from tools.bench.run import proc_cpu_s

    return sum(proc_cpu_s(pid) for pid in pids)


def measure(r: redis.Redis, worker_pids: list[int], seconds: float) -> dict[str, Any]:
    """Commands/s and worker CPU over ``seconds`` of whatever runs now."""
    before, cpu0, t0 = command_calls(r), _cpu_s(worker_pids), time.monotonic()
    time.sleep(seconds)
    after, cpu1, t1 = command_calls(r), _cpu_s(worker_pids), time.monotonic()
    elapsed = t1 - t0
    delta = {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0) > 0}
    total = sum(delta.values())
    top = sorted(delta.items(), key=lambda kv: -kv[1])[:8]
    return {
        "redis_commands_per_s": round(total / elapsed, 1),
        "worker_cpu_pct": round(100 * (cpu1 - cpu0) / elapsed, 2),
        "seconds": round(elapsed, 1),
        "commands": {k: round(v / elapsed, 1) for k, v in top},
    }


def measure_idle(
    stack: Stack, sinks: int = 10_000, seconds: float = 20.0, settle: float = 12.0
) -> dict[str, Any]:
    """The idle figure on a running ``stack`` (see the module docstring)."""
    r = stack.redis_client()
    try:
        started = time.monotonic()
        create_idle_sinks(r, sinks)
        created_s = time.monotonic() - started
        time.sleep(settle)  # first reaper rounds (and a one-time build) are not steady state
        figures = measure(r, [p.pid for p in stack.workers], seconds)
    finally:
        r.close()
    return {
        "idle_sinks": sinks,
        "idle_create_s": round(created_s, 1),
        **{f"idle_{k}": v for k, v in figures.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sinks", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    with Stack(workers=args.workers, appendfsync="everysec") as stack:
        stack.wait_workers_registered()
        report = measure_idle(stack, args.sinks, args.seconds)
    sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
