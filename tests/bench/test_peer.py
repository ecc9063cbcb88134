"""The bench's peer (the OpenTelemetry SDK script) does the same work as
streamsink: on the Svix samples and load-generator events, its spans, exported
for real (OTLPSpanExporter, protobuf over HTTP) to the bench's receiver on
127.0.0.1, equal streamsink's span by span."""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from streamsink.receiver.decode import decode_spans
from streamsink.transform.pipeline import transform
from tools.bench.harness import BenchError
from tools.bench.peer import Peer, compare_spans, run, time_ns
from tools.bench.peerphase import CHECK_PEER, captured_spans, check_all_exported, sample_events
from tools.devstack import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
CODE = (ROOT / "transforms" / "svix-webhook-attempts.js").read_text("utf-8")
STREAM = "strm_peer_test"


@pytest.fixture(scope="module")
def receiver() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tools.bench.receiver", str(port)], cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: httpx.get(f"{url}/count/").status_code == 200, 20)
        yield url
    finally:
        httpx.get(f"{url}/quit", timeout=5)
        proc.wait(10)


def streamsink_spans(events: list[dict]) -> list[dict]:
    result = transform(events, stream_id=STREAM, sink_key="t", code=CODE, encoding="protobuf")
    return [s for b in result.bodies for s in decode_spans(b.data, b.content_type)]


@pytest.fixture(scope="module")
def both(receiver: str) -> tuple[list[dict], list[dict]]:
    events = sample_events(50, 0)
    events.append(  # a failed request: ERROR status with its message
        {
            "eventType": "http.attempt",
            "payload": '{"msgId":"m9","attemptId":"a9","startTime":"2025-08-19T17:24:54.5+02:00",'
            '"endTime":"2025-08-19T15:24:55.000000001Z","responseStatusCode":503}',
        }
    )
    peer = Peer(STREAM, receiver + CHECK_PEER, queue_size=len(events))
    for event in events:
        peer.handle(event)
    assert peer.flush()
    peer.close()
    assert peer.ended == peer.exporter.exported == 55 and peer.dropped() == 0
    theirs = captured_spans(receiver, CHECK_PEER)
    assert httpx.get(f"{receiver}/count{CHECK_PEER}").json()["distinct"] == 50  # protobuf markers
    return streamsink_spans(events), theirs


def test_peer_spans_equal_streamsinks(both: tuple[list[dict], list[dict]]) -> None:
    ours, theirs = both
    assert len(ours) == len(theirs) == 55
    assert compare_spans(ours, theirs) == []
    failed = next(s for s in theirs if s["attributes"].get("msgId") == "m9")
    assert failed["status"] == {"code": "ERROR", "message": "HTTP 503"}
    assert failed["startTimeUnixNano"] == 1755617094_500000000
    assert failed["endTimeUnixNano"] == 1755617095_000000001
    child = next(s for s in theirs if s["name"] == "http.attempt" and s["parentSpanId"])
    parent = next(s for s in theirs if s["spanId"] == child["parentSpanId"])
    assert parent["traceId"] == child["traceId"] and parent["name"] == "message.attempt"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("traceId", "0" * 31 + "1"),
        ("parentSpanId", None),
        ("endTimeUnixNano", 1),
        ("attributes", {"msgId": "other"}),
        ("kind", "SERVER"),
    ],
)
def test_a_differing_span_is_reported(
    both: tuple[list[dict], list[dict]], field: str, value: object
) -> None:
    ours, theirs = both
    changed = copy.deepcopy(theirs)
    children = [s for s in changed if s["parentSpanId"]]
    target = children[0] if field == "parentSpanId" else changed[3]
    target[field] = value
    diffs = compare_spans(ours, changed)
    assert len(diffs) == 1 and field in diffs[0] and target["spanId"] in diffs[0]


def test_a_missing_span_is_reported(both: tuple[list[dict], list[dict]]) -> None:
    ours, theirs = both
    diffs = compare_spans(ours, theirs[1:])
    assert diffs == [f"span {theirs[0]['spanId']} ({theirs[0]['name']}) only in streamsink's"]


def test_time_ns_keeps_nanoseconds_and_zones() -> None:
    assert time_ns("2025-08-19T15:24:56.291123456Z") == 1755617096_291123456
    assert time_ns("2025-08-19T17:24:56.291+02:00") == 1755617096_291000000
    assert time_ns("2025-08-19T15:24:56Z") == 1755617096_000000000
    assert time_ns(1755617096291) == 1755617096_291000000
    with pytest.raises(ValueError):
        time_ns("yesterday")


def distinct(receiver: str, path: str) -> int:
    return int(httpx.get(f"{receiver}/count{path}").json()["distinct"])


def test_the_timed_run_exports_every_span(receiver: str) -> None:
    path = "/peer-run/v1/traces"
    opts = {"events": 600, "seq_start": 10_000, "stream_id": STREAM, "endpoint": receiver + path}
    report = run(opts)
    assert report["spans_exported"] == 600 and report["spans_dropped"] == 0
    assert distinct(receiver, path) == 600
    assert report["main_cpu_us_per_event"] > 0 and report["exporter_cpu_us_per_event"] > 0
    assert report["main_cpu_us_per_event"] <= report["cpu_us_per_event"]
    check_all_exported(report, 600, 600)  # a fair figure: no error


def test_spans_dropped_by_a_full_queue_are_counted_and_the_figure_refused(receiver: str) -> None:
    # A BatchSpanProcessor queue of 8 overflows at once (the exporter thread
    # waits for the GIL and its HTTP answers while the loop goes on): the SDK
    # drops spans with nothing but a log line; the peer counts them.
    path = "/peer-small-queue/v1/traces"
    opts = {
        "events": 3000,
        "seq_start": 20_000,
        "stream_id": STREAM,
        "endpoint": receiver + path,
        "max_queue_size": 8,
    }
    report = run(opts)
    assert report["spans_dropped"] > 0
    assert report["spans_exported"] + report["spans_dropped"] == 3000
    arrived = distinct(receiver, path)
    assert arrived == report["spans_exported"]
    with pytest.raises(BenchError, match=r"exported \d+ of 3000 spans \(\d+ dropped"):
        check_all_exported(report, 3000, arrived)


def test_spans_lost_on_the_way_are_refused_too() -> None:
    report = {"spans_exported": 10, "spans_dropped": 0}
    with pytest.raises(BenchError, match="9 of 10"):
        check_all_exported(report, 10, 9)
