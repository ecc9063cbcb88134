"""A fast OTLP/HTTP sink for the benchmark, run as its own process.

``python -m tools.bench.receiver PORT`` serves HTTP/1.1 (keep-alive) on
127.0.0.1. Every POST is answered ``200 {}`` at once; its body is only
scanned for the load generator's markers (``"b<seq>.<sent µs>"``, which the
handlers copy into span attributes), so the receiver costs little CPU. Per URL
path it keeps the first arrival time of every sequence number and counts
duplicates. ``GET /stats<path>`` answers those figures as JSON (``GET
/count<path>`` only the counts); ``GET /quit``
stops the process.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from typing import Any

import orjson

MARK = re.compile(rb'"b(\d+)\.(\d+)"')
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

    def add(self, body: bytes, now_us: int) -> None:
        self.requests += 1
        if not self.first_us:
            self.first_us = now_us
        self.last_us = now_us
        first = self.first
        for seq_b, sent_b in MARK.findall(body):
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


class Receiver(asyncio.Protocol):
    stats: dict[str, PathStats] = {}
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
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self.buf) < end + 4 + length:
                return
            body = bytes(self.buf[end + 4 : end + 4 + length])
            del self.buf[: end + 4 + length]
            method, path = head.split(" ", 2)[:2]
            self.handle(method, path, body)

    def handle(self, method: str, path: str, body: bytes) -> None:
        if method == "POST":
            stats = self.stats.get(path)
            if stats is None:
                stats = self.stats[path] = PathStats()
            stats.add(body, time.time_ns() // 1000)
            self.transport.write(_OK)
            return
        if path.startswith("/count"):
            stats = self.stats.get(path[len("/count") :]) or PathStats()
            data = orjson.dumps({"distinct": len(stats.first), "duplicated": stats.duplicated})
        elif path.startswith("/stats"):
            stats = self.stats.get(path[len("/stats") :]) or PathStats()
            data = orjson.dumps(stats.report())
        else:
            data = b"{}"
            if path == "/quit" and self.stop is not None and not self.stop.done():
                self.stop.set_result(None)
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
