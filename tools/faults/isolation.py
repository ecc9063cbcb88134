"""Scenarios where many sinks misbehave at once and one healthy sink must not
notice: receivers that never answer (``hung_receivers``) and handlers that
return huge outputs (``big_outputs``)."""

from __future__ import annotations

import contextlib
import statistics
import time
from pathlib import Path

import httpx
import orjson

from streamsink.delivery.scheduling import delivery_queue
from streamsink.storage import keys
from tools.devstack import Stack, wait_until
from tools.faults.harness import FAST_ENV, HungReceiver, Receiver, Result, add_sink, wait_delivered

#: Production read timeout: a hung request holds its thread this long.
HUNG_ENV = {**FAST_ENV, "STREAMSINK_DELIVERY_READ_TIMEOUT": "15"}
PER_STREAM = 50  # hung sinks per stream (streams hold at most 100 sinks)


def _post(client: httpx.Client, stream: str, seqs: list[int]) -> None:
    events = [{"eventType": "e", "payload": orjson.dumps({"seq": s}).decode()} for s in seqs]
    client.post(f"/stream/{stream}/events", json={"events": events}).raise_for_status()


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def hung_receivers(hung: int, hosts: int, seconds: float, interval: float = 0.1) -> Result:
    """``hung`` sinks (``hosts`` receivers that accept and never answer, read
    timeout 15 s) get one event each; then, while their requests hang, time
    out and retry, a healthy sink on another stream gets one event every
    ``interval`` s for ``seconds``: its p99 delivery delay (POST to arrival)
    stays under 1 s, nothing lost."""
    result = Result(f"hung_receivers_{hung}")
    receivers = [HungReceiver() for _ in range(hosts)]
    healthy = Receiver().up()
    started = time.monotonic()
    posted_at: dict[int, float] = {}
    try:
        with Stack(workers=1, env=HUNG_ENV) as stack, stack.http(timeout=30) as client:
            stack.wait_workers_registered()
            hung_streams = []
            for n in range(hung):
                if n % PER_STREAM == 0:
                    uid = f"hung{n // PER_STREAM}"
                    r = client.post("/stream", json={"name": uid, "uid": uid})
                    hung_streams.append(r.raise_for_status().json()["id"])
                url = receivers[n % hosts].url
                body = {"type": "otelTracing", "config": {"url": url}, "batchSize": 1}
                client.post(f"/stream/{hung_streams[-1]}/sink", json=body).raise_for_status()
            r = client.post("/stream", json={"name": "healthy", "uid": "healthy"})
            stream = r.raise_for_status().json()["id"]
            add_sink(client, stream, healthy.url, batchSize=1)

            for hung_stream in hung_streams:  # one event for every hung sink
                _post(client, hung_stream, [0])
            # Once their jobs are taken (the first contact with 200 sinks is a
            # burst of real work: new V8 contexts, first reads), their requests
            # hang: from here on the healthy sink must not notice them.
            queue = delivery_queue(stack.redis_client())
            burst = time.monotonic()
            taken = max(60.0, hung * 0.15)
            wait_until(lambda: queue.count == 0, taken, 0.05, "the hung sinks' jobs taken")
            burst_s = time.monotonic() - burst
            time.sleep(0.5)
            seq, until = 0, time.monotonic() + seconds
            while time.monotonic() < until:
                posted_at[seq] = time.monotonic()
                _post(client, stream, [seq])
                seq += 1
                time.sleep(interval)
            acked = list(posted_at)
            wait_delivered(healthy, acked, 30)
            connections = [r.accepted for r in receivers]
            most_open = [r.most_open for r in receivers]
            deferred = sum(1 for _ in stack.redis_client().scan_iter(keys.wait("*")))
            alive = all(w.poll() is None for w in stack.workers)
            for receiver in receivers:  # ends the hung requests: the worker stops at once
                receiver.stop()
    finally:
        for receiver in receivers:
            receiver.stop()
        healthy.stop()
    result.count(acked, healthy.snapshot())
    arrived = healthy.first_arrival
    delays = [arrived[s] - t for s, t in posted_at.items() if s in arrived]
    p99 = _percentile(delays, 0.99)
    result.seconds = time.monotonic() - started
    result.details = {
        "hung_sinks": hung,
        "hung_hosts": hosts,
        "hung_jobs_taken_s": round(burst_s, 2),
        "healthy_delay_ms_p50": round(statistics.median(delays) * 1000, 1) if delays else None,
        "healthy_delay_ms_p99": round(p99 * 1000, 1),
        "healthy_delay_ms_max": round(max(delays, default=float("nan")) * 1000, 1),
        "healthy_delay_ms_first": [round(d * 1000) for d in delays[:5]],
        "hung_connections": sum(connections),
        "hung_open_at_once_per_host_max": max(most_open),
        "sinks_with_a_wakeup": deferred,  # deferred or retrying
    }
    result.check(result.lost == 0, "events lost on the healthy sink")
    result.check(result.in_order, "healthy sink out of order")
    result.check(p99 < 1.0, f"healthy sink p99 delay {p99:.2f} s")
    result.check(alive, "the worker died")
    result.check(sum(connections) > 0, "no hung request was ever in flight")
    result.passed = not result.errors
    return result


def _rss_peak_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


#: One span per event with a 100 MiB attribute (100 bytes doubled 20 times).
BIG_HANDLER = """
function handler(input) {
  var s = "0123456789".repeat(10);
  for (var i = 0; i < 20; i++) { s = s + s; }
  return {spans: input.events.map(function (e) {
    return {name: "big", startTime: "2024-01-01T00:00:00Z", endTime: "2024-01-01T00:00:01Z",
            attributes: {seq: e.payload.seq, big: s}};
  })};
}
"""
LIMIT_SETTING = "STREAMSINK_JS_MAX_OUTPUT_BYTES"


def big_outputs(big: int = 4, events: int = 50, budget_mb: float = 512.0) -> Result:
    """``big`` sinks whose handler returns a 100 MB attribute, and a healthy
    sink, on one stream: the worker's peak RSS stays under ``budget_mb``,
    each big sink is disabled with a reason naming ``STREAMSINK_JS_MAX_OUTPUT_BYTES``,
    the healthy sink gets every event."""
    result = Result("big_outputs")
    healthy = Receiver().up()
    never = Receiver().up()
    started = time.monotonic()
    reasons: list[str] = []
    # Production handler limits (the heap bounds the heap, the output limit the result).
    env = {**FAST_ENV, "STREAMSINK_JS_TIMEOUT_MS": "10000", "STREAMSINK_JS_MEMORY_MB": "128"}
    try:
        with Stack(workers=1, env=env) as stack, stack.http(timeout=30) as client:
            stack.wait_workers_registered()
            worker = stack.workers[0]
            r = client.post("/stream", json={"name": "big", "uid": "big"})
            stream = r.raise_for_status().json()["id"]
            sinks = [
                add_sink(client, stream, never.url, code=BIG_HANDLER, batchSize=1)
                for _ in range(big)
            ]
            add_sink(client, stream, healthy.url)
            acked = list(range(events))
            for start in range(0, events, 10):
                _post(client, stream, acked[start : start + 10])

            def disabled(sink: str) -> str | None:
                state = client.get(f"/stream/{stream}/sink/{sink}").json()
                return state["failureReason"] if state["status"] == "disabled" else None

            for sink in sinks:
                with contextlib.suppress(TimeoutError):
                    wait_until(lambda s=sink: disabled(s), 120, 0.2, f"sink {sink} disabled")
                reasons.append(disabled(sink) or "")
            took = wait_delivered(healthy, acked, 60)
            alive = worker.poll() is None
            peak = _rss_peak_mb(worker.pid) if alive else float("nan")
    finally:
        healthy.stop()
        never.stop()
    result.count(acked, healthy.snapshot())
    result.seconds = time.monotonic() - started
    result.details = {
        "big_sinks": big,
        "output_mb": 100,
        "worker_rss_peak_mb": round(peak, 1),
        "rss_budget_mb": budget_mb,
        "healthy_done_s": round(took, 1),
        "failure_reason": reasons[0][:300] if reasons else None,
        "big_bodies_sent": never.requests,
    }
    result.check(alive, "the worker died")
    result.check(peak < budget_mb, f"worker peak RSS {peak:.0f} MB over {budget_mb:.0f}")
    result.check(
        all(LIMIT_SETTING in r for r in reasons), f"reasons not naming {LIMIT_SETTING}: {reasons}"
    )
    result.check(never.requests == 0, f"{never.requests} big bodies were sent")
    result.check(result.lost == 0, "events lost on the healthy sink")
    result.check(result.in_order, "healthy sink out of order")
    result.passed = not result.errors
    return result
