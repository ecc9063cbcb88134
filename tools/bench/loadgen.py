"""The benchmark's load generator, run as its own process.

``python -m tools.bench.loadgen '<json options>'`` POSTs ``events`` events
in batches of ``batch_post`` to ``/api/v1/stream/{id}/events``, round-robin
over the given streams, over ``concurrency`` keep-alive connections (raw
HTTP/1.1 on asyncio: the generator must cost the machine little). Every
payload carries a sequence number and the send time (``receiver.marker``).
``rate`` (events/s, 0 = as fast as possible) paces the POSTs; ``duration``
(seconds) bounds the run. Prints one JSON object: counts, timings, answers
by status and the sequence ranges of POSTs that were never accepted (202).
``events_per_s`` is accepted events over the time to the last 202 (not to the
end of ``duration``, which a stream refused to the end would stretch).

Back-pressure: a 429 or 503 answer pauses that stream for its ``Retry-After``
(1 s when absent, counted in ``retry_after_missing``) and the POST is sent
again, the same events, once the pause is over, while the other streams go on;
only a 202 counts as accepted. A POST still refused when ``duration`` ends is
reported in ``failed``. (``retry: false`` reports 429/503 as failed at once.)
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import deque
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


def reference_body(first: int, count: int, sent_us: int) -> bytes:
    """The body of events ``first``.. as the API reads it (``body_for`` writes these bytes)."""
    events = [
        {"eventType": event_type(s), "payload": webhook_payload(s, sent_us)}
        for s in range(first, first + count)
    ]
    return orjson.dumps({"events": events})


def _templates() -> tuple[bytes, bytes]:
    """The JSON of an even and of an odd event with ``%d`` for its pair number
    (twice), sequence number and send time, from ``webhook_payload`` itself."""
    out = []
    for seq in (0, 1):  # pair 0 ("msg_0", "atmpt_0"), marker "b<seq>.0"
        text = orjson.dumps({"eventType": event_type(seq), "payload": webhook_payload(seq, 0)})
        text = text.replace(b"%", b"%%").replace(b"msg_0", b"msg_%d", 1)
        text = text.replace(b"atmpt_0", b"atmpt_%d", 1)
        out.append(text.replace(b"b%d.0" % seq, b"b%d.%d", 1))
    return out[0], out[1]


_EVEN, _ODD = _templates()


def body_for(first: int, count: int) -> bytes:
    """``reference_body`` at the time now, by filling two templates: building
    each body with dicts and ``orjson`` cost the load generator ~2.6 µs an
    event, CPU taken from the stack it measures (and the 8 bodies due after a
    group of 202s were late by that much)."""
    sent_us = time.time_ns() // 1000
    parts = [
        (_ODD if s & 1 else _EVEN) % (s >> 1, s >> 1, s, sent_us)
        for s in range(first, first + count)
    ]
    return b'{"events":[' + b",".join(parts) + b"]}"


class Conn:
    def __init__(self, host: str, port: int, token: str):
        self.host, self.port, self.token = host, port, token
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, float | None]:
        """(status, Retry-After seconds or None); status 0 for a broken connection."""
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
            length, retry_after = 0, None
            for line in raw.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"retry-after":
                    retry_after = _seconds(value)
            await self.reader.readexactly(length)
            return int(raw.split(b" ", 2)[1]), retry_after
        except (OSError, asyncio.IncompleteReadError):
            self.writer.close()
            self.writer = None
            return 0, None


def _seconds(value: bytes) -> float | None:
    """Retry-After as delay-seconds (an HTTP date is not expected from the API)."""
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        return None


async def run(opts: dict[str, Any]) -> dict[str, Any]:
    host, port = opts.get("host", "127.0.0.1"), int(opts["port"])
    streams: list[str] = opts["streams"]
    total, per_post = int(opts["events"]), int(opts["batch_post"])
    rate, duration = float(opts.get("rate", 0)), float(opts.get("duration", 60))
    retry = bool(opts.get("retry", True))
    max_pause = float(opts.get("max_retry_after", 30))
    seq0 = int(opts.get("seq_start", 0))
    posts = -(-total // per_post)
    failed: list[list[int]] = []
    statuses: dict[str, int] = {}
    sent = accepted = resent = backpressured = retry_after_missing = 0
    next_post = 0
    paused_until: dict[str, float] = {}  # stream -> monotonic end of its Retry-After
    deferred: dict[str, deque[int]] = {sid: deque() for sid in streams}
    refused: dict[str, int] = {}  # stream -> its last 429/503
    refused_posts: set[int] = set()
    t0 = time.monotonic()
    last_accept = t0
    deadline = t0 + duration
    first_send_us = time.time_ns() // 1000

    def take() -> tuple[int, bool] | None:
        """The next POST: a deferred one whose stream's pause is over, else a new one."""
        nonlocal next_post
        now = time.monotonic()
        for sid, queue in deferred.items():
            if queue and paused_until.get(sid, 0.0) <= now:
                return queue.popleft(), True
        if next_post < posts:
            next_post += 1
            return next_post - 1, False
        return None

    async def worker() -> None:
        nonlocal sent, accepted, resent, backpressured, retry_after_missing, last_accept
        conn = Conn(host, port, opts["token"])
        while time.monotonic() < deadline:
            item = take()
            if item is None:
                if not any(deferred.values()):
                    break
                await asyncio.sleep(0.02)
                continue
            i, again = item
            sid = streams[i % len(streams)]
            first = seq0 + i * per_post
            count = min(per_post, seq0 + total - first)
            if not again:
                sent += count
                if rate > 0:
                    delay = t0 + i * per_post / rate - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                if paused_until.get(sid, 0.0) > time.monotonic():
                    deferred[sid].append(i)  # behind the stream's refused POSTs: keep order
                    continue
            elif i in refused_posts:
                resent += 1
            status, retry_after = await conn.post(
                f"/api/v1/stream/{sid}/events", body_for(first, count)
            )
            statuses[str(status)] = statuses.get(str(status), 0) + 1
            if status == 202:
                accepted += count
                last_accept = time.monotonic()
            elif status in (429, 503) and retry:
                backpressured += 1
                refused[sid] = status
                refused_posts.add(i)
                if retry_after is None:
                    retry_after_missing += 1
                pause = min(max_pause, 1.0 if retry_after is None else retry_after)
                paused_until[sid] = max(paused_until.get(sid, 0.0), time.monotonic() + pause)
                deferred[sid].appendleft(i)
            else:
                failed.append([first, first + count, status])
        if conn.writer is not None:
            conn.writer.close()

    await asyncio.gather(*(worker() for _ in range(int(opts.get("concurrency", 8)))))
    for sid, queue in deferred.items():  # refused until the end: never acknowledged
        for i in queue:
            first = seq0 + i * per_post
            failed.append([first, min(first + per_post, seq0 + total), refused.get(sid, 429)])
    elapsed = time.monotonic() - t0
    accepting = last_accept - t0
    return {
        "sent": sent,
        "accepted": accepted,
        "seq_start": seq0,
        "seq_end": seq0 + sent,
        "failed": sorted(failed),
        "statuses": statuses,
        "backpressured": backpressured,
        "resent": resent,
        "retry_after_missing": retry_after_missing,
        "first_send_us": first_send_us,
        "elapsed_s": elapsed,
        "accepting_s": accepting,
        "events_per_s": accepted / accepting if accepting > 0 else 0.0,
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
