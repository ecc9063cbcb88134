"""Where a batch's time goes at a steady rate, step by step.

``python -m tools.bench.latency_path`` runs the bench's latency phase (a
stack with 2 workers and 2 API processes, one sink with maxWaitSecs 0 and the
Svix webhook handler, ``--rate`` events/s in POSTs of 100 for ``--duration``
s, to the bench's receiver) with a probe in each worker (``path_probe``, one
line per batch) and prints one JSON object: the POST-to-span latency as the
bench counts it, the machine's steal and idle %, and per way a batch started
(``job``: an RQ job; ``linger``: the sink's thread woken by the append;
``loop``: found by the previous batch's reads) the count and the
p50/p90/p99 in ms of each step:

- ``to_job`` (job only): the load generator's send to the worker taking the
  job (API append, the API's RQ enqueue, the worker's dequeue);
- ``to_thread`` (job only): to a delivery thread starting on the sink;
- ``to_woken`` (linger only): the send to the sink's thread woken, with the
  next batch's reads done (the same round trip);
- ``to_batch``: from the thread's start (or wake-up) to the batch in hand
  (a job: the lease and the first read);
- ``transform`` (V8, validation, OTLP encoding), ``post`` (to the receiver's
  answer), ``outcome`` (cursor, attempt, metrics: after the answer);
- ``total``: the send to the receiver's answer.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

from tools.bench.harness import Bench, py
from tools.bench.procstats import Noise
from tools.bench.run import parse
from tools.devstack import Stack, free_port, wait_until

PROBE = Path(__file__).resolve().parent / "path_probe"
ROOT = Path(__file__).resolve().parents[2]

STEPS = {
    "to_job": ("sent", "taken"),
    "to_thread": ("taken", "start"),
    "to_woken": ("sent", "start"),
    "to_batch": ("start", "batch"),
    "transform": ("batch", "transformed"),
    "post": ("transformed", "posted"),
    "outcome": ("posted", "done"),
    "total": ("sent", "posted"),
}
COMMON = ("transform", "post", "outcome", "total")
BY_HOW = {
    "job": ("to_job", "to_thread", "to_batch", *COMMON),
    "linger": ("to_woken", "to_batch", *COMMON),
    "loop": COMMON,
}


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 2)

    return {"p50": at(0.5), "p90": at(0.9), "p99": at(0.99)}


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per way a batch started: its count and each step's percentiles (ms);
    batches without a send time (none from the load generator) are left out."""
    out: dict[str, Any] = {}
    for how, names in BY_HOW.items():
        mine = [r for r in rows if r.get("how") == how and r.get("sent")]
        steps: dict[str, Any] = {}
        for name in names:
            a, b = STEPS[name]
            values = [(r[b] - r[a]) / 1000 for r in mine if r.get(a) and r.get(b)]
            if values:
                steps[name] = percentiles(values)
        out[how] = {"batches": len(mine), "steps": steps}
    return out


def measure(rate: float, duration: float) -> dict[str, Any]:
    args = parse(["--soak", "0", "--rate", str(rate), "--duration", str(duration)])
    with tempfile.TemporaryDirectory(prefix="ss-path-") as out_dir:
        env = {
            "STREAMSINK_API_PROCESSES": str(args.api_processes),
            "STREAMSINK_PATH_PROBE_DIR": out_dir,
            "PYTHONPATH": os.pathsep.join([str(PROBE), str(ROOT)]),
        }
        port = free_port()
        rx = subprocess.Popen(py("tools.bench.receiver", str(port)))
        noise = Noise()
        try:
            wait_until(lambda: httpx.get(f"http://127.0.0.1:{port}/count/").status_code == 200, 20)
            with Stack(workers=args.workers, env=env) as stack:
                stack.wait_workers_registered()
                bench = Bench(args, stack, port)
                sid = bench.stream("latency-path")
                bench.sink(sid, "/path/v1/traces", bench.code)
                with noise.phase("latency"):
                    sent = bench.load([sid], int(rate * duration), rate, duration + 5)
                    bench.wait_delivered("/path/v1/traces", sent["accepted"])
                stats = bench.check("/path/v1/traces", sent)
        finally:
            httpx.get(f"http://127.0.0.1:{port}/quit", timeout=5)
            rx.wait(10)
        rows = [
            json.loads(line)
            for path in Path(out_dir).glob("*.jsonl")
            for line in path.read_text().splitlines()
        ]
    return {
        "latency_ms_p50": stats["latency_ms_p50"],
        "latency_ms_p99": stats["latency_ms_p99"],
        "lost": bench.lost,
        "duplicated": bench.duplicated,
        **noise.figures(),
        **summarize(rows),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.bench.latency_path", description=__doc__)
    p.add_argument("--rate", type=float, default=5000, help="events/s")
    p.add_argument("--duration", type=float, default=20, help="seconds")
    a = p.parse_args(argv)
    print(json.dumps(measure(a.rate, a.duration), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
