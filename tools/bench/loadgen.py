"""The benchmark's load generator, run as its own process.

``python -m tools.bench.loadgen '<json options>'`` POSTs ``events`` events
in batches of ``batch_post`` to ``/api/v1/stream/{id}/events``, round-robin
over the given streams, over ``concurrency`` keep-alive connections (raw
HTTP/1.1 on asyncio: the generator must cost the machine little). Every
payload carries a sequence number and the send time (``receiver.marker``).
``rate`` (events/s, 0 = as fast as possible) paces the POSTs; ``duration``
(seconds) bounds the run. Prints one JSON object: counts, timings and the
sequence ranges of POSTs that were not accepted (202).
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import orjson

from tools.bench.receiver import marker

START = "2025-08-19T15:24:53.291Z"
END = "2025-08-19T15:24:56.291123456Z"


def webhook_payload(seq: int, sent_us: int) -> str:
    """A Svix webhook-attempt payload (transforms/svix-webhook-attempts.js);
    even numbers are ``message.attempt``, odd ones their ``http.attempt``."""
    pair = seq // 2
    mark = marker(seq, sent_us)
    if seq % 2 == 0:
        return (
            f'{{"msgId":"msg_{pair}","attemptId":"atmpt_{pair}","appId":"{mark}",'
            f'"startTime":"{START}","endTime":"{END}"}}'
        )
    return (
        f'{{"msgId":"msg_{pair}","attemptId":"atmpt_{pair}","appId":"{mark}",'
        f'"url":"https://example.com/hook","startTime":"{START}","endTime":"{END}",'
        f'"responseStatusCode":200}}'
    )


def event_type(seq: int) -> str:
    return "message.attempt" if seq % 2 == 0 else "http.attempt"


def body_for(first: int, count: int) -> bytes:
    sent_us = time.time_ns() // 1000
    events = [
        {"eventType": event_type(s), "payload": webhook_payload(s, sent_us)}
        for s in range(first, first + count)
    ]
    return orjson.dumps({"events": events})


class Conn:
    def __init__(self, host: str, port: int, token: str):
        self.host, self.port, self.token = host, port, token
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer {self.token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        try:
            self.writer.write(head.encode() + body)
            raw = await self.reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in raw.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await self.reader.readexactly(length)
            return int(raw.split(b" ", 2)[1])
        except (OSError, asyncio.IncompleteReadError):
            self.writer.close()
            self.writer = None
            return 0


async def run(opts: dict[str, Any]) -> dict[str, Any]:
    host, port = opts.get("host", "127.0.0.1"), int(opts["port"])
    streams: list[str] = opts["streams"]
    total, per_post = int(opts["events"]), int(opts["batch_post"])
    rate, duration = float(opts.get("rate", 0)), float(opts.get("duration", 60))
    seq0 = int(opts.get("seq_start", 0))
    posts = -(-total // per_post)
    failed: list[list[int]] = []
    sent = accepted = 0
    next_post = 0
    t0 = time.monotonic()
    deadline = t0 + duration
    first_send_us = time.time_ns() // 1000

    async def worker() -> None:
        nonlocal next_post, sent, accepted
        conn = Conn(host, port, opts["token"])
        while next_post < posts and time.monotonic() < deadline:
            i = next_post
            next_post += 1
            first = seq0 + i * per_post
            count = min(per_post, seq0 + total - first)
            if rate > 0:
                delay = t0 + i * per_post / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            path = f"/api/v1/stream/{streams[i % len(streams)]}/events"
            status = await conn.post(path, body_for(first, count))
            sent += count
            if status == 202:
                accepted += count
            else:
                failed.append([first, first + count, status])
        if conn.writer is not None:
            conn.writer.close()

    await asyncio.gather(*(worker() for _ in range(int(opts.get("concurrency", 8)))))
    elapsed = time.monotonic() - t0
    return {
        "sent": sent,
        "accepted": accepted,
        "seq_start": seq0,
        "seq_end": seq0 + sent,
        "failed": failed,
        "first_send_us": first_send_us,
        "elapsed_s": elapsed,
        "events_per_s": accepted / elapsed if elapsed > 0 else 0.0,
    }


def main() -> None:
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    report = runner(run(orjson.loads(sys.argv[1])))
    sys.stdout.write(orjson.dumps(report).decode() + "\n")


if __name__ == "__main__":
    main()
