"""``scripts/bench``: the end-to-end benchmark, one reproducible run.

Starts on 127.0.0.1 (``devstack.Stack``): the embedded Redis, the API, W
workers, plus the fast receiver (``bench.receiver``) as separate processes,
then runs, each with the load generator (``bench.loadgen``) as a process:

1. ceiling: handler + validation + encoding in this process (``bench.ceiling``):
   the table of cases first; the figure for ``--handler`` right before e2e;
2. ingest: POSTs at full speed to a stream with no sink;
3. e2e: POSTs at full speed over ``--streams`` streams, one sink each, until
   every accepted event arrived as a span (rate = events / first POST to last span);
4. latency: ``--rate`` events/s for ``--duration`` s to one sink (maxWaitSecs 0),
   POST to span arrival;
5. memory: 100 sinks with distinct handler code each deliver one batch; the
   largest worker RSS.

Prints one JSON object on stdout and a table on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from tools.bench import ceiling
from tools.devstack import Stack, free_port, wait_until

TRANSFORMS = Path(__file__).resolve().parents[2] / "transforms"


def _py(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live children (API processes)."""
    total = 0.0
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total = (int(fields[11]) + int(fields[12])) / 100.0
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += proc_cpu_s(int(child))
    return total


def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Bench:
    def __init__(self, args: argparse.Namespace, stack: Stack, receiver_port: int):
        self.args = args
        self.stack = stack
        self.api = stack.http(timeout=30)
        self.rx = f"http://127.0.0.1:{receiver_port}"
        self.code = (TRANSFORMS / args.handler).read_text("utf-8")
        self.seq = 0
        self.lost = 0
        self.duplicated = 0

    def stream(self, name: str) -> str:
        r = self.api.post("/stream", json={"name": name})
        r.raise_for_status()
        return str(r.json()["id"])

    def sink(self, stream_id: str, path: str, code: str) -> str:
        body = {
            "type": "otelTracing",
            "config": {"url": f"{self.rx}{path}"},
            "batchSize": self.args.batch_size,
            "maxWaitSecs": 0,
        }
        r = self.api.post(f"/stream/{stream_id}/sink", json=body)
        r.raise_for_status()
        sink_id = str(r.json()["id"])
        r = self.api.patch(
            f"/stream/{stream_id}/sink/{sink_id}/transformation", json={"code": code}
        )
        r.raise_for_status()
        return sink_id

    def load(self, streams: list[str], events: int, rate: float, duration: float) -> dict:
        opts = {
            "port": self.stack.port,
            "token": self.stack.token,
            "streams": streams,
            "events": events,
            "batch_post": self.args.batch_post,
            "rate": rate,
            "duration": duration,
            "seq_start": self.seq,
            "concurrency": self.args.concurrency,
        }
        out = subprocess.run(
            _py("tools.bench.loadgen", orjson.dumps(opts).decode()),
            check=True,
            capture_output=True,
            timeout=duration + 120,
        )
        report: dict[str, Any] = orjson.loads(out.stdout)
        self.seq = report["seq_end"]
        return report

    def count(self, path: str) -> int:
        return int(httpx.get(f"{self.rx}/count{path}", timeout=30).json()["distinct"])

    def wait_delivered(self, path: str, want: int, stall: float = 60.0) -> None:
        last, since = -1, time.monotonic()
        while True:
            got = self.count(path)
            if got >= want:
                return
            if got != last:
                last, since = got, time.monotonic()
            elif time.monotonic() - since > stall:
                return  # the missing ones are counted as lost
            time.sleep(0.05)

    def settle(self, path: str, sent: dict[str, Any]) -> dict[str, Any]:
        """Receiver figures for ``path``; adds lost and duplicated to the totals."""
        stats = httpx.get(f"{self.rx}/stats{path}", timeout=60).json()
        failed = {s for lo, hi, _ in sent["failed"] for s in range(lo, hi)}
        expected = set(range(sent["seq_start"], sent["seq_end"])) - failed
        self.lost += len(expected - set(stats["seqs"]))
        self.duplicated += stats["duplicated"]
        return stats

    # -- phases ------------------------------------------------------------

    def ingest(self) -> dict[str, Any]:
        sid = self.stream("bench-ingest")
        sent = self.load([sid], self.args.events, 0, self.args.max_seconds)
        return {
            "ingest_events_per_s": round(sent["events_per_s"]),
            "ingest_failed": len(sent["failed"]),
        }

    def e2e(self) -> dict[str, Any]:
        streams = [self.stream(f"bench-e2e-{i}") for i in range(self.args.streams)]
        for sid in streams:
            self.sink(sid, "/e2e/v1/traces", self.code)
        pids = [p.pid for p in self.stack.workers]
        api_pid = self.stack.api.pid if self.stack.api else 0
        redis_pid = int(getattr(getattr(self.stack.redis, "_server", None), "pid", 0) or 0)
        pids = [api_pid, redis_pid, *pids]
        cpu0 = [proc_cpu_s(p) for p in pids]
        sent = self.load(streams, self.args.events, 0, self.args.max_seconds)
        self.wait_delivered("/e2e/v1/traces", sent["accepted"])
        cpu1 = [proc_cpu_s(p) for p in pids]
        stats = self.settle("/e2e/v1/traces", sent)
        span_s = max(1e-6, (stats["last_us"] - sent["first_send_us"]) / 1e6)
        return {
            "e2e_events_per_s": round(stats["distinct"] / span_s),
            "e2e_seconds": round(span_s, 2),
            "e2e_ingest_events_per_s": round(sent["events_per_s"]),
            "e2e_cpu_s": {
                "api": round(cpu1[0] - cpu0[0], 1),
                "redis": round(cpu1[1] - cpu0[1], 1),
                "workers": round(sum(cpu1[2:]) - sum(cpu0[2:]), 1),
            },
        }

    def latency(self) -> dict[str, Any]:
        sid = self.stream("bench-latency")
        self.sink(sid, "/lat/v1/traces", self.code)
        rate, duration = self.args.rate, self.args.duration
        sent = self.load([sid], int(rate * duration), rate, duration + 5)
        self.wait_delivered("/lat/v1/traces", sent["accepted"])
        stats = self.settle("/lat/v1/traces", sent)
        lat = sorted(stats["latency_us"])

        def pct(p: float) -> float:
            return round(lat[min(len(lat) - 1, int(len(lat) * p))] / 1000, 1) if lat else -1.0

        return {"latency_ms_p50": pct(0.50), "latency_ms_p99": pct(0.99), "latency_rate": rate}

    def memory(self) -> dict[str, Any]:
        sid = self.stream("bench-memory")
        n = self.args.memory_sinks
        for i in range(n):
            self.sink(sid, f"/mem/{i}/v1/traces", f"{self.code}\n// bench sink {i}\n")
        sent = self.load([sid], self.args.batch_post, 0, 60)
        for i in range(n):
            self.wait_delivered(f"/mem/{i}/v1/traces", sent["accepted"])
            self.settle(f"/mem/{i}/v1/traces", sent)
        rss = [proc_rss_mb(p.pid) for p in self.stack.workers]
        return {"worker_rss_mb": round(max(rss), 1), "worker_rss_mb_all": [round(x) for x in rss]}


def run(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {"bench": "e2e", "config": {k: v for k, v in vars(args).items()}}
    ceil = ceiling.run_bench(args.ceiling_seconds, "json")
    port = free_port()
    rx = subprocess.Popen(_py("tools.bench.receiver", str(port)))
    try:
        wait_until(lambda: httpx.get(f"http://127.0.0.1:{port}/count/").status_code == 200, 20)
        api_env = {"STREAMSINK_API_PROCESSES": str(args.api_processes)}
        with Stack(workers=args.workers, env=api_env) as stack:
            stack.wait_workers_registered()
            bench = Bench(args, stack, port)
            figures: dict[str, Any] = {}
            figures.update(bench.ingest())
            # Right before e2e (the stack idle), so that both see the machine alike.
            handler_ceiling = ceiling.measure_handler(
                bench.code, args.batch_size, args.ceiling_seconds
            )
            figures.update(bench.e2e())
            figures.update(bench.latency())
            figures.update(bench.memory())
    finally:
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/quit", timeout=5)
        try:
            rx.wait(10)
        except subprocess.TimeoutExpired:
            rx.kill()
    e2e = figures["e2e_events_per_s"]
    report.update(
        {
            "e2e_events_per_s": e2e,
            "ingest_events_per_s": figures["ingest_events_per_s"],
            "ceiling_events_per_s": handler_ceiling,
            "e2e_over_ceiling": round(e2e / handler_ceiling, 3) if handler_ceiling else 0.0,
            "latency_ms_p50": figures["latency_ms_p50"],
            "latency_ms_p99": figures["latency_ms_p99"],
            "worker_rss_mb": figures["worker_rss_mb"],
            "lost": bench.lost,
            "duplicated": bench.duplicated,
            "details": figures,
            "ceiling": ceil,
        }
    )
    return report


def format_table(report: dict[str, Any]) -> str:
    keys = [
        "e2e_events_per_s",
        "ingest_events_per_s",
        "ceiling_events_per_s",
        "e2e_over_ceiling",
        "latency_ms_p50",
        "latency_ms_p99",
        "worker_rss_mb",
        "lost",
        "duplicated",
    ]
    lines = [f"{k:<24}{report[k]:>12,}" for k in keys]
    return "\n".join([ceiling.format_table(report["ceiling"]), "", *lines])


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=100_000, help="events for ingest and e2e")
    p.add_argument("--batch-post", type=int, default=100, help="events per POST")
    p.add_argument("--batch-size", type=int, default=100, help="sink batchSize")
    p.add_argument("--workers", type=int, default=2, help="worker processes")
    p.add_argument("--api-processes", type=int, default=2, help="API processes (one port)")
    p.add_argument("--handler", default="svix-webhook-attempts.js", help="a file in transforms/")
    p.add_argument("--rate", type=float, default=5000, help="events/s in the latency phase")
    p.add_argument("--duration", type=float, default=10, help="seconds of the latency phase")
    p.add_argument("--streams", type=int, default=8, help="streams (one sink each) in e2e")
    p.add_argument("--concurrency", type=int, default=8, help="load generator connections")
    p.add_argument("--memory-sinks", type=int, default=100)
    p.add_argument("--ceiling-seconds", type=float, default=1.0, help="time per ceiling case")
    p.add_argument("--max-seconds", type=float, default=120, help="bound of a full-speed phase")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    report = run(parse(argv))
    print(format_table(report), file=sys.stderr)
    sys.stdout.write(orjson.dumps(report).decode() + "\n")
    return 0
