"""``scripts/bench``: the end-to-end benchmark, one reproducible run.

Starts on 127.0.0.1 (``devstack.Stack``): the embedded Redis, the API, W
workers, plus the fast receiver (``bench.receiver``) as separate processes,
then runs, each with the load generator (``bench.loadgen``) as a process:

1. ceiling: handler + validation + encoding in this process (``bench.ceiling``):
   the table of cases first; the figure for ``--handler`` right before e2e;
2. ingest: POSTs at full speed to a stream with no sink (and what an event
   costs Redis: memory and AOF bytes);
3. peer: the OpenTelemetry SDK script a user would write instead
   (``bench.peer``): its spans checked equal to streamsink's, then its events/s;
4. e2e: POSTs at full speed over ``--streams`` streams, one sink each, until
   every accepted event arrived as a span (rate = events / first POST to last span);
5. latency: ``--rate`` events/s for ``--duration`` s to one sink (maxWaitSecs 0),
   POST to span arrival;
6. memory: 100 sinks with distinct handler code each deliver one batch; the
   largest worker RSS;
7. fanout: 1,000 streams with one sink each (``bench.scale``);
8. idle: Redis commands/s and worker CPU with 10,000 idle sinks (``bench.scale``);
9. soak: ``--soak`` seconds at 5,000 events/s on a stack of its own with a 60 s
   replay window: Redis memory, AOF and worker RSS growth (``bench.soak``).

Steal and idle CPU of the machine over each phase are reported beside the
figures (``<phase>_cpu_steal_pct``, ``<phase>_cpu_idle_pct``). Prints one JSON
object on stdout and a table on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
from typing import Any

import httpx
import orjson
import redis

from streamsink.storage import eventlog, keys
from tools.bench import ceiling, peerphase, scale, soak
from tools.bench.harness import Bench, BenchError, py
from tools.bench.procstats import (
    Noise,
    aof_mb,
    aof_path,
    proc_cpu_s,
    proc_rss_mb,
    used_memory_mb,
)
from tools.devstack import Stack, free_port, wait_until

PHASES = ("ingest", "peer", "e2e", "latency", "memory", "fanout", "idle", "soak")


def log_memory(client: redis.Redis, stream_id: str) -> int:
    """MEMORY USAGE of a stream's event log, every entry counted (SAMPLES 0)."""
    return int(client.memory_usage(keys.event_log(stream_id), samples=0) or 0)


class Phases:
    """The phases on the main stack, each adding its figures."""

    def __init__(self, bench: Bench):
        self.bench = bench
        self.args = bench.args

    def ingest(self) -> dict[str, Any]:
        """Full-speed POSTs to a stream with no sink; with what the events cost
        Redis: used_memory and AOF growth per event, MEMORY USAGE of the log."""
        bench = self.bench
        sid = bench.stream("bench-ingest")
        client = bench.stack.redis_client()
        aof = aof_path(client)
        mem0, aof0 = used_memory_mb(client), aof_mb(client, aof)
        sent = bench.load([sid], self.args.events, 0, self.args.max_seconds)
        mem1, aof1 = used_memory_mb(client), aof_mb(client, aof)
        log_bytes = log_memory(client, sid)
        length = eventlog.length(client, sid)
        client.close()
        n = max(1, sent["accepted"])
        return {
            "ingest_events_per_s": round(sent["events_per_s"]),
            "ingest_failed": len(sent["failed"]),
            "ingest_backpressured": sent["backpressured"],
            "redis_bytes_per_event": round((mem1 - mem0) * 2**20 / n, 1),
            "aof_bytes_per_event": round((aof1 - aof0) * 2**20 / n, 1),
            "log_memory_usage_bytes_per_event": round(log_bytes / max(1, length), 1),
        }

    def e2e(self) -> dict[str, Any]:
        bench, args = self.bench, self.args
        streams = [bench.stream(f"bench-e2e-{i}") for i in range(args.streams)]
        for sid in streams:
            bench.sink(sid, "/e2e/v1/traces", bench.code)
        pids = bench.pids()
        client = bench.stack.redis_client()
        mem0 = used_memory_mb(client)
        cpu0 = {role: sum(proc_cpu_s(p) for p in ps) for role, ps in pids.items()}
        sent = bench.load(streams, args.events, 0, args.max_seconds)
        bench.wait_delivered("/e2e/v1/traces", sent["accepted"])
        cpu1 = {role: sum(proc_cpu_s(p) for p in ps) for role, ps in pids.items()}
        mem1 = used_memory_mb(client)
        log_bytes = sum(log_memory(client, sid) for sid in streams)
        client.close()
        stats = bench.check("/e2e/v1/traces", sent)
        span_s = max(1e-6, (stats["last_us"] - sent["first_send_us"]) / 1e6)
        cpu = {k: round(cpu1[k] - cpu0[k], 1) for k in cpu0}
        n = max(1, stats["distinct"])
        return {
            # the log and what delivery keeps per event (trace memory, attempts)
            "e2e_redis_bytes_per_event": round((mem1 - mem0) * 2**20 / n, 1),
            "e2e_log_bytes_per_event": round(log_bytes / n, 1),
            "e2e_events_per_s": round(stats["distinct"] / span_s),
            "e2e_seconds": round(span_s, 2),
            "e2e_ingest_events_per_s": round(sent["events_per_s"]),
            "e2e_cpu_s": cpu,
            "e2e_cpu_us_per_event": {k: round((cpu1[k] - cpu0[k]) / n * 1e6, 1) for k in cpu0},
        }

    def latency(self) -> dict[str, Any]:
        bench = self.bench
        sid = bench.stream("bench-latency")
        bench.sink(sid, "/lat/v1/traces", bench.code)
        rate, duration = self.args.rate, self.args.duration
        sent = bench.load([sid], int(rate * duration), rate, duration + 5)
        bench.wait_delivered("/lat/v1/traces", sent["accepted"])
        stats = bench.check("/lat/v1/traces", sent)
        return {
            "latency_ms_p50": stats["latency_ms_p50"],
            "latency_ms_p99": stats["latency_ms_p99"],
            "latency_rate": rate,
        }

    def memory(self) -> dict[str, Any]:
        bench = self.bench
        sid = bench.stream("bench-memory")
        n = self.args.memory_sinks
        for i in range(n):
            bench.sink(sid, f"/mem/{i}/v1/traces", f"{bench.code}\n// bench sink {i}\n")
        sent = bench.load([sid], self.args.batch_post, 0, 60)
        for i in range(n):
            bench.wait_delivered(f"/mem/{i}/v1/traces", sent["accepted"])
            bench.check(f"/mem/{i}/v1/traces", sent)
        rss = [proc_rss_mb(p.pid) for p in bench.stack.workers]
        return {"worker_rss_mb": round(max(rss), 1), "worker_rss_mb_all": [round(x) for x in rss]}


def _main_stack(args: argparse.Namespace, port: int, noise: Noise) -> tuple[dict, int, int]:
    figures: dict[str, Any] = {}
    want = set(args.phases)
    api_env = {"STREAMSINK_API_PROCESSES": str(args.api_processes)}
    with Stack(workers=args.workers, env=api_env) as stack:
        stack.wait_workers_registered()
        bench = Bench(args, stack, port)
        phases = Phases(bench)
        if "ingest" in want:
            with noise.phase("ingest"):
                figures.update(phases.ingest())
        if "peer" in want and args.handler != peerphase.HANDLER:
            figures["peer_skipped"] = f"the peer implements {peerphase.HANDLER} only"
        elif "peer" in want:
            with noise.phase("peer"):
                figures.update(peerphase.check(bench))
                figures.update(peerphase.throughput(bench))
        if "e2e" in want:
            # Right before e2e (the stack idle), so that both see the machine alike.
            with noise.phase("ceiling"):
                figures["ceiling_events_per_s"] = ceiling.measure_handler(
                    bench.code, args.batch_size, args.ceiling_seconds
                )
            with noise.phase("e2e"):
                figures.update(phases.e2e())
        for name in ("latency", "memory"):
            if name in want:
                with noise.phase(name):
                    figures.update(getattr(phases, name)())
        if "fanout" in want and args.fanout_streams > 0:
            with noise.phase("fanout"):
                figures.update(scale.fanout(bench))
        if "idle" in want and args.idle_sinks > 0:
            with noise.phase("idle"):
                figures.update(scale.idle(bench))
        return figures, bench.lost, bench.duplicated


def _ratio(a: Any, b: Any) -> float | None:
    return round(a / b, 3) if isinstance(a, int | float) and b else None


HEADLINE = (
    "e2e_events_per_s",
    "ingest_events_per_s",
    "ceiling_events_per_s",
    "e2e_over_ceiling",
    "latency_ms_p50",
    "latency_ms_p99",
    "worker_rss_mb",
    "peer_otel_sdk_events_per_s",
    "e2e_over_peer",
    "fanout_events_per_s",
    "fanout_latency_ms_p99",
    "fanout_over_e2e",
    "idle_redis_cmds_per_s",
    "idle_worker_cpu_pct",
    "soak_used_memory_growth_mb",
    "soak_worker_rss_growth_mb",
    "soak_aof_growth_mb",
    "soak_lost",
    "soak_down_lost",
    "lost",
    "duplicated",
)


def run(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {"bench": "e2e", "config": {k: v for k, v in vars(args).items()}}
    noise = Noise()
    with noise.phase("ceiling_table"):
        ceil = ceiling.run_bench(args.ceiling_seconds, "json")
    port = free_port()
    rx = subprocess.Popen(py("tools.bench.receiver", str(port)))
    lost = duplicated = 0
    try:
        wait_until(lambda: httpx.get(f"http://127.0.0.1:{port}/count/").status_code == 200, 20)
        if set(args.phases) - {"soak"}:
            figures, lost, duplicated = _main_stack(args, port, noise)
        else:
            figures = {}
        if "soak" in args.phases and args.soak > 0:
            with noise.phase("soak"):
                soak_figures, soak_lost, soak_dup = soak.soak(args, port)
            figures.update(soak_figures)
            lost, duplicated = lost + soak_lost, duplicated + soak_dup
    finally:
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/quit", timeout=5)
        try:
            rx.wait(10)
        except subprocess.TimeoutExpired:
            rx.kill()
    e2e = figures.get("e2e_events_per_s")
    figures["e2e_over_ceiling"] = _ratio(e2e, figures.get("ceiling_events_per_s"))
    figures["e2e_over_peer"] = _ratio(e2e, figures.get("peer_otel_sdk_events_per_s"))
    figures["fanout_over_e2e"] = _ratio(figures.get("fanout_events_per_s"), e2e)
    figures = {k: v for k, v in figures.items() if v is not None}  # ratios of skipped phases
    figures |= {"lost": lost, "duplicated": duplicated}
    report.update({k: figures[k] for k in HEADLINE if k in figures})
    report.update(noise.figures())
    figures["phase_seconds"] = noise.seconds
    report.update({"details": figures, "ceiling": ceil})
    return report


def format_table(report: dict[str, Any]) -> str:
    lines = [f"{k:<28}{report[k]:>12,}" for k in HEADLINE if k in report]
    noise = [k for k in report if k.endswith("_cpu_steal_pct")]
    for k in noise:
        phase = k.removesuffix("_cpu_steal_pct")
        idle = report.get(f"{phase}_cpu_idle_pct", 0)
        lines.append(f"{phase + ' steal/idle %':<28}{report[k]:>5} / {idle:>4}")
    return "\n".join([ceiling.format_table(report["ceiling"]), "", *lines])


def _phases(text: str) -> list[str]:
    names = [p.strip() for p in text.split(",") if p.strip()]
    if names == ["all"]:
        return list(PHASES)
    unknown = set(names) - set(PHASES)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown phase(s) {sorted(unknown)}: use {PHASES}")
    return names


class _Help(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="scripts/bench",
        description=__doc__.split("\n\n", 1)[1].split("\n\nSteal")[0].replace("``", ""),
        formatter_class=_Help,
    )
    p.add_argument(
        "--phases",
        type=_phases,
        default=list(PHASES),
        help=f"comma-separated phases to run (default all: {','.join(PHASES)})",
    )
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
    p.add_argument("--memory-sinks", type=int, default=100, help="sinks of the memory phase")
    p.add_argument("--ceiling-seconds", type=float, default=1.0, help="time per ceiling case")
    p.add_argument("--max-seconds", type=float, default=120, help="bound of a full-speed phase")
    g = p.add_argument_group("peer (the OpenTelemetry SDK script; svix-webhook-attempts.js only)")
    g.add_argument(
        "--peer-events", type=int, default=0, help="events the peer times (default: --events)"
    )
    g.add_argument(
        "--peer-check-events",
        type=int,
        default=200,
        help="load-generator events (besides the samples) checked span by span",
    )
    g = p.add_argument_group("fanout (many streams, one sink each, maxWaitSecs 1)")
    g.add_argument("--fanout-streams", type=int, default=1000, help="streams; 0 skips")
    g.add_argument("--fanout-events", type=int, default=0, help="events (default: --events)")
    g.add_argument(
        "--fanout-own-code",
        action="store_true",
        help="each sink's code differs (an isolate per sink, not the bundled handler's)",
    )
    g.add_argument(
        "--fanout-batch-post", type=int, default=0, help="events per POST (default: --batch-post)"
    )
    g = p.add_argument_group("idle (sinks with nothing to deliver)")
    g.add_argument("--idle-sinks", type=int, default=10_000, help="sinks; 0 skips")
    g.add_argument("--idle-sinks-per-stream", type=int, default=1, help="sinks per stream")
    g.add_argument("--idle-seconds", type=float, default=20, help="measured interval")
    g.add_argument("--idle-settle", type=float, default=5, help="pause before measuring")
    g = p.add_argument_group("soak (a stack of its own, sustained load)")
    g.add_argument("--soak", type=float, default=60, help="seconds (600: the full run); 0 skips")
    g.add_argument("--soak-rate", type=float, default=5000, help="events/s")
    g.add_argument("--soak-streams", type=int, default=4, help="streams with a caught-up sink")
    g.add_argument(
        "--soak-retention",
        type=int,
        default=60,
        help="STREAMSINK_LOG_RETENTION_SECS of the soak stack",
    )
    g.add_argument(
        "--soak-down-sink",
        action="store_true",
        help="add a stream whose sink is down for the whole soak, then comes back",
    )
    g.add_argument(
        "--soak-stream-max-bytes",
        type=int,
        default=4 * 2**20,
        help="STREAMSINK_STREAM_MAX_BYTES with --soak-down-sink",
    )
    g.add_argument(
        "--soak-env",
        action="append",
        metavar="NAME=VALUE",
        help="another setting for the soak stack (repeatable)",
    )
    args = p.parse_args(argv)
    args.fanout_batch_post = args.fanout_batch_post or args.batch_post
    return args


def main(argv: list[str] | None = None) -> int:
    try:
        report = run(parse(argv))
    except BenchError as exc:
        print(f"scripts/bench: FAILED: {exc}", file=sys.stderr)
        return 1
    print(format_table(report), file=sys.stderr)
    sys.stdout.write(orjson.dumps(report).decode() + "\n")
    return 0
