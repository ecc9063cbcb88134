"""The worker's delivery pool: a working lane, a waiting lane and a
per-destination gate, so no slow, hung or failing sink delays another
(DESIGN section 7), at any count of them.

- **Working lane**: ``delivery_threads`` slots for deliveries that work
  (Redis reads and writes, the handler, encoding, the outcome). The RQ job
  blocks in ``submit`` while all are taken: back-pressure, not a backlog.
- **Waiting lane**: around every request to a sink (the transport's
  ``network_wait`` hook) a delivery gives its working slot back and holds one
  of ``delivery_wait_threads`` waiting slots instead: a hung receiver holds a
  blocked thread (cheap), never a slot RQ feeds. After the answer it takes a
  working slot again (waiting for one if need be). With the waiting lane
  full it waits on the sink keeping its working slot: truly saturated, so RQ
  stops feeding the process.
- **Destination gate**: the requests in flight per (scheme, host, port). A
  destination with ``delivery_per_destination`` of them in flight that is
  slow (one outstanding longer than ``SLOW_AFTER`` s, or one answered that
  late within the last ``SLOW_MEMORY`` s) gets no more: ``busy_for`` tells
  the delivery loop to defer the sink (lease released, a wake-up
  scheduled), so one hung host with a thousand sinks holds about the cap of
  threads. Fast destinations are never capped.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from streamsink.otlp.transport import Origin, network_wait

log = logging.getLogger(__name__)

SLOW_AFTER = 0.5  # seconds: a request outstanding this long makes its destination slow
SLOW_MEMORY = 60.0  # seconds a destination stays slow after a slow answer
MIN_DEFER, MAX_DEFER = 1.0, 30.0  # seconds a deferred sink waits (RQ's scheduler: ~1 s steps)


class DestinationGate:
    """Requests in flight by destination, and which destinations are slow."""

    def __init__(self, cap: int):
        self.cap = cap
        self._lock = threading.Lock()
        self._flight: dict[Origin, list[float]] = {}  # start times (monotonic)
        self._slow_until: dict[Origin, float] = {}
        self._warned: dict[Origin, float] = {}

    def enter(self, origin: Origin) -> float:
        started = time.monotonic()
        with self._lock:
            self._flight.setdefault(origin, []).append(started)
        return started

    def leave(self, origin: Origin, started: float) -> None:
        now = time.monotonic()
        with self._lock:
            flight = self._flight.get(origin)
            if flight is not None:
                flight.remove(started)
                if not flight:
                    del self._flight[origin]
            if now - started >= SLOW_AFTER:
                if len(self._slow_until) > 10_000:  # forget the expired ones
                    self._slow_until = {o: t for o, t in self._slow_until.items() if t > now}
                self._slow_until[origin] = now + SLOW_MEMORY

    def in_flight(self, origin: Origin) -> int:
        with self._lock:
            return len(self._flight.get(origin, ()))

    def busy_for(self, origin: Origin) -> float | None:
        """None when a request to ``origin`` may go now; else the seconds a
        sink should wait before trying again (about as long as the oldest
        request in flight has waited, with jitter, so deferred sinks come
        back spread out and rarely)."""
        if self.cap <= 0:
            return None
        now = time.monotonic()
        with self._lock:
            flight = self._flight.get(origin)
            if not flight or len(flight) < self.cap:
                return None
            waited = now - min(flight)
            if waited < SLOW_AFTER and self._slow_until.get(origin, 0.0) <= now:
                return None  # at the cap but answering fast: not capped
            count = len(flight)
            warn = self._warned.get(origin, 0.0) <= now
            if warn:
                if len(self._warned) > 10_000:
                    self._warned.clear()
                self._warned[origin] = now + SLOW_MEMORY
        if warn:
            log.warning(
                "destination %s://%s:%s is slow (%d requests in flight, the oldest for %.1f s): "
                "deferring its other sinks (STREAMSINK_DELIVERY_PER_DESTINATION=%d)",
                *origin,
                count,
                waited,
                self.cap,
            )
        return min(max(waited, MIN_DEFER), MAX_DEFER) * random.uniform(1.0, 1.5)


class _Task:
    """One delivery running on the pool: which lane it is in."""

    __slots__ = ("pool", "working")

    def __init__(self, pool: DeliveryPool):
        self.pool = pool
        self.working = True  # holds a working slot (else a waiting one)

    @contextlib.contextmanager
    def waiting(self, origin: Origin) -> Iterator[None]:
        pool = self.pool
        moved = self.working and pool._waiting.acquire(blocking=False)
        if moved:
            self.working = False
            pool._working.release()
        started = pool.gate.enter(origin)
        try:
            yield
        finally:
            pool.gate.leave(origin, started)
            if moved:
                pool._working.acquire()
                self.working = True
                pool._waiting.release()


_local = threading.local()


class DeliveryPool:
    """Threads for deliveries: ``working`` slots fed by ``submit`` (blocks while
    all are taken), ``waiting`` more for deliveries waiting on a sink's
    answer, and the destination gate (``per_destination``; 0: no cap)."""

    def __init__(self, working: int, waiting: int = 0, per_destination: int = 0):
        self._executor = ThreadPoolExecutor(
            max_workers=working + waiting, thread_name_prefix="deliver"
        )
        self._working = threading.BoundedSemaphore(working)
        self._waiting = threading.BoundedSemaphore(max(waiting, 1))
        if waiting == 0:
            self._waiting.acquire()  # never taken: no waiting lane
        self.gate = DestinationGate(per_destination)

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        self._working.acquire()
        try:
            self._executor.submit(self._run, fn, args)
        except BaseException:
            self._working.release()
            raise

    def _run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        task = _Task(self)
        _local.task = task
        token = network_wait.set(task.waiting)
        try:
            fn(*args)
        finally:
            network_wait.reset(token)
            _local.task = None
            if task.working:
                self._working.release()
            else:  # only if ``waiting`` was left by an exception in acquire
                self._waiting.release()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=False)


@functools.lru_cache(maxsize=4096)
def origin_of(url: str) -> Origin | None:
    """(scheme, host, port) of a sink URL as the transport sees it; None if unparsable."""
    try:
        u = httpx.URL(url)
        host = u.raw_host.decode("ascii")
    except Exception:  # noqa: BLE001 - the POST reports a bad URL
        return None
    return (u.scheme, host, u.port or (443 if u.scheme == "https" else 80))


def busy_for(url: str) -> float | None:
    """For the delivery loop: None when a batch for ``url`` may go now, else
    seconds to defer the sink (the calling thread's pool says; no pool, as
    in a plain ``rq worker``: never busy)."""
    task: _Task | None = getattr(_local, "task", None)
    if task is None:
        return None
    origin = origin_of(url)
    return None if origin is None else task.pool.gate.busy_for(origin)
