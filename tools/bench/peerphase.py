"""The peer beside the e2e phase (``tools.bench.peer``: the OpenTelemetry SDK
script a user would write instead of streamsink).

check: the Svix samples (``transforms/samples``) plus ``--peer-check-events``
load-generator events go through streamsink (a protobuf sink, the real stack)
and through the peer, both to capture paths of the receiver; decoded, their
spans must be equal one by one (ids, parents, times, attributes, kind, status,
service and scope), else the bench stops with the differences.

throughput: the peer in its own process on ``--peer-events`` events (default
``--events``) to the receiver; every span must be exported by the peer and
arrive (a BatchSpanProcessor whose queue overflows drops spans: that would be
a false figure), else the bench stops.
"""

from __future__ import annotations

import base64
import subprocess
import time
from typing import Any

import httpx
import orjson

from streamsink.receiver.decode import decode_spans
from tools.bench.harness import TRANSFORMS, Bench, BenchError, py
from tools.bench.loadgen import event_type, webhook_payload

HANDLER = "svix-webhook-attempts.js"
PEER_PATH = "/peer/v1/traces"
CHECK_OURS = "/capture/streamsink/v1/traces"
CHECK_PEER = "/capture/peer/v1/traces"
SAMPLES = TRANSFORMS / "samples" / "svix-webhook-attempts.events.json"


def sample_events(n: int, seq_start: int) -> list[dict[str, Any]]:
    """The Svix example's samples, then ``n`` load-generator events."""
    events: list[dict[str, Any]] = orjson.loads(SAMPLES.read_bytes())
    sent_us = time.time_ns() // 1000
    events += [
        {"eventType": event_type(s), "payload": webhook_payload(s, sent_us)}
        for s in range(seq_start, seq_start + n)
    ]
    return events


def captured_spans(rx: str, path: str) -> list[dict[str, Any]]:
    bodies = httpx.get(f"{rx}/bodies{path}", timeout=30).json()
    return [s for b in bodies for s in decode_spans(base64.b64decode(b["body"]), b["contentType"])]


def wait_spans(rx: str, path: str, want: int, timeout: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        spans = captured_spans(rx, path)
        if len(spans) >= want or time.monotonic() > deadline:
            return spans
        time.sleep(0.2)


def check(bench: Bench) -> dict[str, Any]:
    from tools.bench.peer import Peer, compare_spans

    n = bench.args.peer_check_events
    events = sample_events(n, bench.seq)
    bench.seq += n
    sid = bench.stream("bench-peer-check")
    bench.sink(sid, CHECK_OURS, bench.code, encoding="protobuf")
    for i in range(0, len(events), 100):
        r = bench.api.post(f"/stream/{sid}/events", json={"events": events[i : i + 100]})
        if r.status_code != 202:
            raise BenchError(f"peer check: POST events answered {r.status_code}: {r.text}")
    peer = Peer(sid, bench.rx + CHECK_PEER, queue_size=len(events))
    try:
        for event in events:
            peer.handle(event)
        peer.flush()
    finally:
        peer.close()
    if peer.dropped():
        raise BenchError(f"peer check: the peer dropped {peer.dropped()} of {peer.ended} spans")
    ours = wait_spans(bench.rx, CHECK_OURS, len(events))
    theirs = wait_spans(bench.rx, CHECK_PEER, len(events), timeout=5)
    diffs = compare_spans(ours, theirs)
    if len(ours) != len(events):
        diffs.insert(0, f"streamsink delivered {len(ours)} spans of {len(events)} events")
    if diffs:
        raise BenchError("the peer's spans differ from streamsink's:\n  " + "\n  ".join(diffs))
    return {"peer_check_spans": len(ours), "peer_check_equal": True}


def throughput(bench: Bench) -> dict[str, Any]:
    n = bench.args.peer_events or bench.args.events
    opts = {
        "events": n,
        "seq_start": bench.seq,
        "stream_id": "strm_bench_peer",
        "endpoint": bench.rx + PEER_PATH,
    }
    bench.seq += n
    out = subprocess.run(
        py("tools.bench.peer", orjson.dumps(opts).decode()),
        check=True,
        capture_output=True,
        timeout=bench.args.max_seconds + 60,
    )
    report = orjson.loads(out.stdout)
    bench.wait_delivered(PEER_PATH, n, stall=30)
    check_all_exported(report, n, bench.count(PEER_PATH))
    return {
        "peer_otel_sdk_events_per_s": report["events_per_s"],
        "peer_cpu_us_per_event": report["cpu_us_per_event"],
        "peer_main_cpu_us_per_event": report["main_cpu_us_per_event"],
        "peer_exporter_cpu_us_per_event": report["exporter_cpu_us_per_event"],
        "peer_spans_exported": report["spans_exported"],
        "peer_events": n,
    }


def check_all_exported(report: dict[str, Any], n: int, arrived: int) -> None:
    """The peer's figure counts only if it exported every one of its ``n``
    spans (none dropped by the BatchSpanProcessor) and all ``n`` arrived."""
    exported, dropped = report.get("spans_exported"), report.get("spans_dropped")
    if exported != n or dropped != 0:
        raise BenchError(
            f"the peer exported {exported} of {n} spans ({dropped} dropped: its "
            "BatchSpanProcessor queue overflowed or an export failed); its figure would be false"
        )
    if arrived != n:
        raise BenchError(f"the peer's spans did not all arrive: {arrived} of {n} (lost)")
