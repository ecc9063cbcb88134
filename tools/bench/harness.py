"""The bench's hands on a running stack: create streams and sinks, run the
load generator, wait for the receiver, and count lost and duplicated events.
The phases (``run``, ``scale``, ``soak``, ``peerphase``) are built from these.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from tools.devstack import Stack

TRANSFORMS = Path(__file__).resolve().parents[2] / "transforms"


class BenchError(RuntimeError):
    """The bench found something wrong (not a slow figure): it stops loudly."""


def py(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def post_ranges(sent: dict[str, Any], batch_post: int, n_streams: int, which: set[int]) -> list:
    """``[lo, hi)`` sequence ranges of the POSTs that went to streams ``which``
    (indexes into the stream list; the load generator goes round-robin)."""
    seq0, end = int(sent["seq_start"]), int(sent["seq_end"])
    out = []
    for i, lo in enumerate(range(seq0, end, batch_post)):
        if i % n_streams in which:
            out.append([lo, min(lo + batch_post, end)])
    return out


def count_in(ranges: list[list[int]], skip: list[list[int]]) -> int:
    """How many sequence numbers ``ranges`` hold outside ``skip``."""
    skipped = {s for a, b, *_ in skip for s in range(a, b)}
    return sum(1 for a, b, *_ in ranges for s in range(a, b) if s not in skipped)


class Bench:
    def __init__(self, args: argparse.Namespace, stack: Stack, receiver_port: int):
        self.args = args
        self.stack = stack
        self.api = stack.http(timeout=30)
        # One client for the receiver's polls: a fresh ``httpx.get`` loads the CA
        # store each time (~20 ms of CPU), which at 20 polls a second took a
        # third of a core from the stack under test.
        self.rx_http = httpx.Client(timeout=120)
        self.rx = f"http://127.0.0.1:{receiver_port}"
        self.code = (TRANSFORMS / args.handler).read_text("utf-8")
        self.seq = 0
        self.lost = 0
        self.duplicated = 0

    def pids(self) -> dict[str, list[int]]:
        """Process ids by role: api (its children are counted with it), redis, workers."""
        api_pid = self.stack.api.pid if self.stack.api else 0
        redis_pid = int(getattr(getattr(self.stack.redis, "_server", None), "pid", 0) or 0)
        return {
            "api": [api_pid],
            "redis": [redis_pid],
            "workers": [p.pid for p in self.stack.workers],
        }

    # -- resources -----------------------------------------------------------

    def stream(self, name: str) -> str:
        r = self.api.post("/stream", json={"name": name})
        r.raise_for_status()
        return str(r.json()["id"])

    def sink_body(self, url: str, max_wait: int = 0, encoding: str | None = None) -> dict:
        config: dict[str, Any] = {"url": url}
        if encoding:
            config["encoding"] = encoding
        body = {"type": "otelTracing", "config": config, "batchSize": self.args.batch_size}
        return body | {"maxWaitSecs": max_wait}

    def sink(
        self,
        stream_id: str,
        path: str,
        code: str,
        max_wait: int = 0,
        encoding: str | None = None,
        rx: str | None = None,
    ) -> str:
        """An otelTracing sink to ``path`` on the receiver ``rx`` (the bench's) with ``code``."""
        body = self.sink_body(f"{rx or self.rx}{path}", max_wait, encoding)
        r = self.api.post(f"/stream/{stream_id}/sink", json=body)
        r.raise_for_status()
        sink_id = str(r.json()["id"])
        r = self.api.patch(
            f"/stream/{stream_id}/sink/{sink_id}/transformation", json={"code": code}
        )
        r.raise_for_status()
        return sink_id

    def streams_with_sinks(
        self,
        prefix: str,
        n: int,
        url: str,
        max_wait: int,
        concurrency: int = 16,
        own_code: bool = False,
    ) -> list[str]:
        """``n`` streams with one sink each (this handler), over the API with
        ``concurrency`` requests in flight; the stream ids in order.
        ``own_code``: each sink's code differs by a comment (as a platform's
        customers' code would): no bundled handler, an isolate per sink."""

        async def one(client: httpx.AsyncClient, sem: asyncio.Semaphore, i: int) -> str:
            async with sem:
                r = await client.post("/stream", json={"name": f"{prefix}-{i}"})
                r.raise_for_status()
                sid = str(r.json()["id"])
                r = await client.post(f"/stream/{sid}/sink", json=self.sink_body(url, max_wait))
                r.raise_for_status()
                path = f"/stream/{sid}/sink/{r.json()['id']}/transformation"
                code = f"{self.code}\n// {prefix} sink {i}\n" if own_code else self.code
                r = await client.patch(path, json={"code": code})
                r.raise_for_status()
                return sid

        async def all_of() -> list[str]:
            headers = {"Authorization": f"Bearer {self.stack.token}"}
            limits = httpx.Limits(max_connections=concurrency)
            async with httpx.AsyncClient(
                base_url=self.stack.api_url + "/api/v1", headers=headers, timeout=60, limits=limits
            ) as client:
                sem = asyncio.Semaphore(concurrency)
                return list(await asyncio.gather(*(one(client, sem, i) for i in range(n))))

        return asyncio.run(all_of())

    # -- load ----------------------------------------------------------------

    def load_opts(
        self, streams: list[str], events: int, rate: float, duration: float, batch_post: int
    ) -> dict[str, Any]:
        opts = {
            "port": self.stack.port,
            "token": self.stack.token,
            "streams": streams,
            "events": events,
            "batch_post": batch_post,
            "rate": rate,
            "duration": duration,
            "seq_start": self.seq,
            "concurrency": self.args.concurrency,
        }
        self.seq += events  # the next phase's numbers never overlap this one's
        return opts

    def start_load(
        self,
        streams: list[str],
        events: int,
        rate: float,
        duration: float,
        batch_post: int | None = None,
    ) -> subprocess.Popen[bytes]:
        opts = self.load_opts(streams, events, rate, duration, batch_post or self.args.batch_post)
        cmd = py("tools.bench.loadgen", orjson.dumps(opts).decode())
        return subprocess.Popen(cmd, stdout=subprocess.PIPE)

    def finish_load(self, proc: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
        out, _ = proc.communicate(timeout=timeout)
        if proc.returncode:
            raise BenchError(f"the load generator exited with {proc.returncode}")
        report: dict[str, Any] = orjson.loads(out)
        return report

    def load(
        self,
        streams: list[str],
        events: int,
        rate: float,
        duration: float,
        batch_post: int | None = None,
    ) -> dict[str, Any]:
        proc = self.start_load(streams, events, rate, duration, batch_post)
        return self.finish_load(proc, duration + 120)

    # -- the receiver --------------------------------------------------------

    def count(self, path: str, rx: str | None = None) -> int:
        return int(self.rx_http.get(f"{rx or self.rx}/count{path}", timeout=30).json()["distinct"])

    def wait_delivered(
        self, path: str, want: int, stall: float = 60.0, rx: str | None = None
    ) -> None:
        """Until ``want`` distinct events arrived, or none arrived for ``stall`` s."""
        last, since = -1, time.monotonic()
        while True:
            got = self.count(path, rx)
            if got >= want:
                return
            if got != last:
                last, since = got, time.monotonic()
            elif time.monotonic() - since > stall:
                return  # the missing ones are counted as lost
            time.sleep(0.05)

    def check(
        self,
        path: str,
        sent: dict[str, Any],
        skip: list[list[int]] | None = None,
        rx: str | None = None,
    ) -> dict[str, Any]:
        """Receiver figures for ``path``: every accepted event of ``sent`` outside
        ``skip`` must have arrived; adds lost and duplicated to the totals."""
        body = {
            "lo": sent["seq_start"],
            "hi": sent["seq_end"],
            "skip": [*sent["failed"], *(skip or [])],
        }
        r = self.rx_http.post(f"{rx or self.rx}/_check{path}", content=orjson.dumps(body))
        stats: dict[str, Any] = r.json()
        self.lost += stats["missing"]
        self.duplicated += stats["duplicated"]
        return stats
