"""The soak phase: memory that must stay flat under sustained load.

A stack of its own (``STREAMSINK_LOG_RETENTION_SECS=--soak-retention``, 60 by
default, plus any ``--soak-env``), ``--soak-streams`` streams with one sink
each that keeps up, ``--soak-rate`` events/s (5,000) for ``--soak`` seconds.
Every ``--soak`` / 20 s (1 to 5 s) it samples Redis ``used_memory``, the AOF's
size on disk (its path from Redis's own ``CONFIG``) and each worker's RSS; the
start figures are the sample at min(60 s, soak / 10), the end figures the last
one before the load stops; growth = end - start (RSS: the largest one worker).
A soak shorter than ten replay windows starts inside the first window, whose
filling up is then part of the growth (``soak_note`` says so).

``--soak-down-sink`` adds one stream whose sink is down (nothing listens on
its port) for the whole soak, with a per-stream budget
(``STREAMSINK_STREAM_MAX_BYTES=--soak-stream-max-bytes``): the load generator
counts the 429/503 answers, honours ``Retry-After`` and resends (only a 202 is
an acked event); after the soak a receiver comes up on that port and every
acked event of that stream must arrive (``soak_down_lost``), while the other
streams must have kept flowing (their own lost and latency).
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import time
from typing import Any

import httpx

from tools.bench.harness import Bench, count_in, post_ranges, py
from tools.bench.procstats import aof_mb, aof_path, proc_rss_mb, used_memory_mb
from tools.devstack import Stack, free_port, wait_until

SOAK_PATH = "/soak/v1/traces"
DOWN_PATH = "/down/v1/traces"


def soak_env(args: argparse.Namespace) -> dict[str, str]:
    env = {
        "STREAMSINK_API_PROCESSES": str(args.api_processes),
        "STREAMSINK_LOG_RETENTION_SECS": str(args.soak_retention),
    }
    if args.soak_down_sink:
        env["STREAMSINK_STREAM_MAX_BYTES"] = str(args.soak_stream_max_bytes)
    for item in args.soak_env or []:
        key, _, value = item.partition("=")
        env[key] = value
    return env


def _sample(stack: Stack, client: Any, aof: Any, t: float) -> dict[str, Any]:
    return {
        "t": round(t, 1),
        "used_memory_mb": round(used_memory_mb(client), 2),
        "aof_mb": round(aof_mb(client, aof), 2),
        "worker_rss_mb": [round(proc_rss_mb(p.pid), 1) for p in stack.workers],
        "keys": int(client.dbsize()),
    }


def _receiver(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(py("tools.bench.receiver", str(port)))
    wait_until(lambda: httpx.get(f"http://127.0.0.1:{port}/count/").status_code == 200, 20)
    return proc


def _stop_receiver(proc: subprocess.Popen[bytes], port: int) -> None:
    with contextlib.suppress(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/quit", timeout=5)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def soak(args: argparse.Namespace, receiver_port: int) -> tuple[dict[str, Any], int, int]:
    """The figures, and the lost and duplicated counts to add to the run's."""
    t0 = time.monotonic()
    with Stack(workers=args.workers, env=soak_env(args)) as stack:
        stack.wait_workers_registered()
        started = time.monotonic() - t0
        bench = Bench(args, stack, receiver_port)
        ids = [bench.stream(f"bench-soak-{i}") for i in range(args.soak_streams)]
        for sid in ids:
            bench.sink(sid, SOAK_PATH, bench.code)
        down_port = free_port()
        down_rx = f"http://127.0.0.1:{down_port}"
        if args.soak_down_sink:
            down = bench.stream("bench-soak-down")
            bench.sink(down, DOWN_PATH, bench.code, rx=down_rx)  # nothing listens there yet
            ids.append(down)
        figures = _run(args, stack, bench, ids, down_rx)
        t1 = time.monotonic()
    figures["soak_stack_start_s"] = round(started, 1)
    figures["soak_stack_stop_s"] = round(time.monotonic() - t1, 1)
    return figures, bench.lost, bench.duplicated


def _run(
    args: argparse.Namespace, stack: Stack, bench: Bench, ids: list[str], down_rx: str
) -> dict[str, Any]:
    client = stack.redis_client()
    aof = aof_path(client)
    seconds, rate = float(args.soak), float(args.soak_rate)
    every = max(1.0, min(5.0, seconds / 20))
    start_at = min(60.0, seconds / 10)
    t0 = time.monotonic()
    proc = bench.start_load(ids, int(rate * seconds), rate, seconds + 5)
    samples = [_sample(stack, client, aof, 0.0)]
    try:
        while proc.poll() is None:
            time.sleep(min(every, max(0.05, t0 + len(samples) * every - time.monotonic())))
            if proc.poll() is None:
                samples.append(_sample(stack, client, aof, time.monotonic() - t0))
    finally:
        sent = bench.finish_load(proc, 60)
    start = next((s for s in samples if s["t"] >= start_at), samples[-1])
    end = samples[-1]
    n, bp = len(ids), args.batch_post
    down_idx = {n - 1} if args.soak_down_sink else set()
    to_down = post_ranges(sent, bp, n, down_idx)
    want = count_in(post_ranges(sent, bp, n, set(range(n)) - down_idx), sent["failed"])
    loaded = time.monotonic()
    bench.wait_delivered(SOAK_PATH, want)
    stats = bench.check(SOAK_PATH, sent, skip=to_down)
    span_s = max(1e-6, (stats["last_us"] - sent["first_send_us"]) / 1e6)
    rss_growth = [b - a for a, b in zip(start["worker_rss_mb"], end["worker_rss_mb"], strict=False)]
    figures: dict[str, Any] = {
        "soak_used_memory_growth_mb": round(end["used_memory_mb"] - start["used_memory_mb"], 1),
        "soak_worker_rss_growth_mb": round(max(rss_growth, default=0.0), 1),
        "soak_aof_growth_mb": round(end["aof_mb"] - start["aof_mb"], 1),
        "soak_start": start,
        "soak_end": end,
        "soak_aof_max_mb": max(s["aof_mb"] for s in samples),
        "soak_seconds": seconds,
        "soak_events_per_s": round(sent["events_per_s"]),
        "soak_flowing_events_per_s": round(stats["distinct"] / span_s),
        "soak_offered_events_per_s": rate,
        "soak_accepted": sent["accepted"],
        "soak_drain_s": round(time.monotonic() - loaded, 1),
        "soak_latency_ms_p99": stats["latency_ms_p99"],
        "soak_lost": stats["missing"],
        "soak_backpressured": sent["backpressured"],
        "soak_retry_after_missing": sent["retry_after_missing"],
        "soak_statuses": sent["statuses"],
        "soak_samples": samples,
    }
    if start["t"] < args.soak_retention:
        figures["soak_note"] = (
            f"the start sample ({start['t']} s) is inside the first replay window "
            f"({args.soak_retention} s): the growth includes the window filling up"
        )
    if args.soak_down_sink:
        figures.update(_comeback(bench, sent, to_down, down_rx))
    client.close()
    return figures


def _comeback(
    bench: Bench, sent: dict[str, Any], to_down: list[list[int]], down_rx: str
) -> dict[str, Any]:
    """The down sink's receiver comes up; every acked event of its stream must
    arrive (the sink retries on its own schedule, capped at 60 s)."""
    port = int(down_rx.rsplit(":", 1)[1])
    acked = count_in(to_down, sent["failed"])
    up = time.monotonic()
    proc = _receiver(port)
    try:
        bench.wait_delivered(DOWN_PATH, acked, stall=90, rx=down_rx)
        took = time.monotonic() - up
        lo, hi = sent["seq_start"], sent["seq_end"]
        stats = bench.check(DOWN_PATH, sent, skip=_complement(lo, hi, to_down), rx=down_rx)
    finally:
        _stop_receiver(proc, port)
    return {
        "soak_down_acked": acked,
        "soak_down_lost": stats["missing"],
        "soak_down_catch_up_s": round(took, 1),
    }


def _complement(lo: int, hi: int, ranges: list[list[int]]) -> list[list[int]]:
    """``[lo, hi)`` less the sorted, disjoint ``ranges``."""
    out, at = [], lo
    for a, b in sorted(ranges):
        if a > at:
            out.append([at, a])
        at = max(at, b)
    if at < hi:
        out.append([at, hi])
    return out
