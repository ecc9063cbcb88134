"""The load generator under back-pressure, against a real HTTP server on
127.0.0.1: a 429/503 pauses that stream for its Retry-After and the same
events are sent again; other streams keep going; only a 202 is accepted; a
stream refused to the end is reported failed, never accepted."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest

from tools.bench.loadgen import run
from tools.bench.receiver import MARK


class Api(BaseHTTPRequestHandler):
    """Stream "slow": 429 + Retry-After 0.3 for its first 2 POSTs, then 202.
    Stream "ok": 202. Stream "full": 503 without Retry-After, always."""

    protocol_version = "HTTP/1.1"
    lock = threading.Lock()
    refused: dict[str, int] = {}
    log: list[tuple[str, float, list[int]]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        stream = self.path.split("/")[4]
        seqs = [int(s) for s, _ in MARK.findall(body.replace(b'\\"', b'"'))]
        with self.lock:
            self.log.append((stream, time.monotonic(), seqs))
            n = self.refused.get(stream, 0)
            if stream == "slow" and n < 2 or stream == "full":
                self.refused[stream] = n + 1
                status, extra = (429, {"Retry-After": "0.3"}) if stream == "slow" else (503, {})
            else:
                status, extra = 202, {}
        self.send_response(status)
        for k, v in extra.items():
            self.send_header(k, v)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def api() -> Iterator[int]:
    Api.refused, Api.log = {}, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def load(port: int, streams: list[str], events: int, duration: float) -> dict:
    """One connection: the order of the POSTs is known."""
    opts = {"port": port, "token": "t", "streams": streams, "events": events}
    opts |= {"batch_post": 10, "duration": duration, "concurrency": 1, "seq_start": 1000}
    return asyncio.run(run(opts))


def test_a_refused_post_is_sent_again_after_retry_after_and_others_go_on(api: int) -> None:
    report = load(api, ["slow", "ok"], 100, 20)
    assert report["accepted"] == 100 and report["failed"] == []
    assert report["statuses"] == {"202": 10, "429": 2}
    assert report["backpressured"] == 2 and report["resent"] == 2
    assert report["retry_after_missing"] == 0
    slow = [(t, seqs) for s, t, seqs in Api.log if s == "slow"]
    # the first refused POST came back with the same events, after its Retry-After
    assert slow[1][1] == slow[0][1] and slow[2][1] == slow[0][1]
    assert slow[1][0] - slow[0][0] >= 0.29 and slow[2][0] - slow[1][0] >= 0.29
    # meanwhile the other stream was not held up: all of it went before the retry
    ok_times = [t for s, t, _ in Api.log if s == "ok"]
    assert max(ok_times) < slow[1][0]
    accepted = sorted(s for _, _, seqs in Api.log for s in seqs)
    assert set(accepted) == set(range(1000, 1100))


def test_a_stream_refused_to_the_end_is_failed_not_accepted(api: int) -> None:
    report = load(api, ["full", "ok"], 40, 2.5)
    assert report["accepted"] == 20
    assert sorted(report["failed"]) == [[1000, 1010, 503], [1020, 1030, 503]]
    assert report["retry_after_missing"] == report["backpressured"] >= 2
    # without Retry-After the pause is 1 s: a few tries in 2.5 s, not a busy loop
    assert len([s for s, _, _ in Api.log if s == "full"]) <= 8
    # the rate is over the time the accepted events took, not the 2.5 s the
    # refused stream kept the generator waiting
    assert report["accepting_s"] < 1.0 < report["elapsed_s"]
    assert report["events_per_s"] == pytest.approx(20 / report["accepting_s"])
    json_ok = orjson.dumps(report)
    assert b'"503"' in json_ok
