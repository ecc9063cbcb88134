"""A fast OTLP/HTTP sink for the benchmark, run as its own process.

``python -m tools.bench.receiver PORT`` serves HTTP/1.1 (keep-alive) on
127.0.0.1. Every POST is answered ``200 {}`` at once; its body is only
scanned for the load generator's markers (``b<seq>.<sent µs>``, which the
handlers copy into the ``appId`` span attribute: a JSON string in OTLP/JSON,
the attribute's string value in OTLP protobuf), so the receiver costs little
CPU. Per URL path it keeps the first arrival time of every sequence number and
counts duplicates. ``GET /stats<path>`` answers those figures as JSON (``GET
/count<path>`` only the counts); ``POST /_check<path>`` with ``{lo, hi,
skip: [[lo, hi], ...]}`` counts the sequence numbers of ``[lo, hi)`` minus the
skipped ranges that never arrived, and the latency percentiles, without
shipping every number (long soaks). Bodies POSTed under ``/capture/`` are also
kept whole (``GET /bodies<path>``: ``[{contentType, body (base64)}]``) for the
span-by-span comparison of the peer. ``GET /quit`` stops the process.
"""

from __future__ import annotations

import asyncio
import base64
import re
import sys
import time
from typing import Any

import orjson

MARK = re.compile(rb'"b(\d+)\.(\d+)"')
# protobuf: KeyValue{key "appId", value AnyValue{string_value "b<seq>.<µs>"}}
MARK_PROTO = re.compile(rb"appId\x12.\x0a.b(\d+)\.(\d+)", re.DOTALL)
CAPTURE = "/capture/"
_OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


def marker(seq: int, sent_us: int) -> str:
    """The string a load generator puts in a payload field the handler keeps."""
    return f"b{seq}.{sent_us}"


class PathStats:
    def __init__(self) -> None:
        self.first: dict[int, int] = {}  # seq -> arrival µs
        self.latency_us: list[int] = []
        self.requests = 0
        self.markers = 0
        self.duplicated = 0
        self.first_us = 0
        self.last_us = 0

    def add(self, body: bytes, now_us: int, protobuf: bool = False) -> None:
        self.requests += 1
        if not self.first_us:
            self.first_us = now_us
        self.last_us = now_us
        first = self.first
        for seq_b, sent_b in (MARK_PROTO if protobuf else MARK).findall(body):
            self.markers += 1
            seq = int(seq_b)
            if seq in first:
                self.duplicated += 1
                continue
            first[seq] = now_us
            self.latency_us.append(now_us - int(sent_b))

    def report(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "markers": self.markers,
            "distinct": len(self.first),
            "duplicated": self.duplicated,
            "first_us": self.first_us,
            "last_us": self.last_us,
            "seqs": sorted(self.first),
            "latency_us": self.latency_us,
        }

    def check(self, lo: int, hi: int, skip: list[list[int]]) -> dict[str, Any]:
        """Sequence numbers of ``[lo, hi)`` that never arrived (less ``skip``)."""
        skipped = {s for a, b, *_ in skip for s in range(a, b)}
        first = self.first
        missing = [s for s in range(lo, hi) if s not in first and s not in skipped]
        lat = sorted(self.latency_us)

        def pct(p: float) -> float:
            return round(lat[min(len(lat) - 1, int(len(lat) * p))] / 1000, 1) if lat else -1.0

        return {
            "missing": len(missing),
            "missing_sample": missing[:10],
            "distinct": len(first),
            "duplicated": self.duplicated,
            "first_us": self.first_us,
            "last_us": self.last_us,
            "latency_ms_p50": pct(0.50),
            "latency_ms_p99": pct(0.99),
        }


class Receiver(asyncio.Protocol):
    stats: dict[str, PathStats] = {}
    bodies: dict[str, list[dict[str, str]]] = {}
    stop: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buf = bytearray()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).decode("latin-1")
            length, ctype = 0, ""
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "content-type":
                    ctype = value.strip()
            if len(self.buf) < end + 4 + length:
                return
            body = bytes(self.buf[end + 4 : end + 4 + length])
            del self.buf[: end + 4 + length]
            method, path = head.split(" ", 2)[:2]
            self.handle(method, path, body, ctype)

    def handle(self, method: str, path: str, body: bytes, ctype: str = "") -> None:
        if method == "POST" and path.startswith("/_check"):
            stats = self.stats.get(path[len("/_check") :]) or PathStats()
            q = orjson.loads(body)
            self.answer(orjson.dumps(stats.check(int(q["lo"]), int(q["hi"]), q.get("skip", []))))
            return
        if method == "POST":
            stats = self.stats.get(path)
            if stats is None:
                stats = self.stats[path] = PathStats()
            stats.add(body, time.time_ns() // 1000, "protobuf" in ctype)
            if path.startswith(CAPTURE):
                entry = {"contentType": ctype, "body": base64.b64encode(body).decode()}
                self.bodies.setdefault(path, []).append(entry)
            self.transport.write(_OK)
            return
        if path.startswith("/bodies"):
            data = orjson.dumps(self.bodies.get(path[len("/bodies") :], []))
        elif path.startswith("/count"):
            stats = self.stats.get(path[len("/count") :]) or PathStats()
            data = orjson.dumps({"distinct": len(stats.first), "duplicated": stats.duplicated})
        elif path.startswith("/stats"):
            stats = self.stats.get(path[len("/stats") :]) or PathStats()
            data = orjson.dumps(stats.report())
        else:
            data = b"{}"
            if path == "/quit" and self.stop is not None and not self.stop.done():
                self.stop.set_result(None)
        self.answer(data)

    def answer(self, data: bytes) -> None:
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(data)}"
        self.transport.write(head.encode() + b"\r\n\r\n" + data)


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    Receiver.stop = loop.create_future()
    server = await loop.create_server(Receiver, "127.0.0.1", port)
    async with server:
        await Receiver.stop


def main() -> None:
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    runner(serve(int(sys.argv[1])))


if __name__ == "__main__":
    main()
