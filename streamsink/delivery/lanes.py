"""The worker's delivery pool: a working lane, a waiting lane and a
per-destination gate, so no slow, hung or failing sink delays another
(docs/architecture.md, guarantees), at any count of them.

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
  late within the last ``SLOW_MEMORY`` s) gets no more: the delivery loop
  defers the sink (``defer_if_busy``: lease released, cursor untouched) and
  the gate parks it. Each request to that destination that ends kicks the
  oldest parked sink (``resume``), so they take turns at the cap; a
  fallback wake-up (``FALLBACK`` s, with jitter) covers a worker that died
  or restarted. One hung host with a thousand sinks thus holds the cap of
  threads (``BURST`` times it in its first ``SLOW_AFTER`` s) and costs no
  job per sink until a slot frees. Destinations that answer fast are not
  capped (but at ``BURST`` times the cap, far above what a worker's CPU
  can keep in flight to one).
- **Lingering**: a sink that just delivered and caught up may wait a moment
  for its next events (``idle_wait``; ``delivery_linger_ms``) in the waiting
  lane, at most ``delivery_linger_sinks`` at once: a steady stream of POSTs
  then goes straight to its sink's thread instead of through a job each.
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

from streamsink.sinkhttp.transport import Origin, network_wait

log = logging.getLogger(__name__)

SLOW_AFTER = 0.5  # seconds: a request outstanding this long makes its destination slow
SLOW_MEMORY = 60.0  # seconds a destination stays slow after a slow answer
BURST = 4  # x the cap: requests in flight at once to a destination not yet known slow
FALLBACK = 30.0  # seconds (x 1..1.5) before a parked sink is woken anyway


class DestinationGate:
    """Requests in flight by destination, and which destinations are slow."""

    def __init__(self, cap: int):
        self.cap = cap
        self._lock = threading.Lock()
        self._flight: dict[Origin, list[float]] = {}  # start times (monotonic)
        self._slow_until: dict[Origin, float] = {}
        self._warned: dict[Origin, float] = {}
        self._parked: dict[Origin, dict[str, str]] = {}  # sink id -> stream id, oldest first

    def enter(self, origin: Origin) -> float:
        started = time.monotonic()
        with self._lock:
            self._flight.setdefault(origin, []).append(started)
        return started

    def leave(self, origin: Origin, started: float) -> tuple[str, str] | None:
        """The request started at ``started`` ended; returns the parked sink
        (stream id, sink id) to kick into the freed slot, if any."""
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
            parked = self._parked.get(origin)
            if not parked:
                return None
            sink_id = next(iter(parked))
            stream_id = parked.pop(sink_id)
            if not parked:
                del self._parked[origin]
            return stream_id, sink_id

    def parked(self, origin: Origin) -> int:
        with self._lock:
            return len(self._parked.get(origin, ()))

    def in_flight(self, origin: Origin) -> int:
        with self._lock:
            return len(self._flight.get(origin, ()))

    def busy(self, origin: Origin, park: tuple[str, str] | None = None) -> bool:
        """Whether ``origin`` is at its cap and slow: no request may start now.
        If so, ``park`` (stream id, sink id) is parked in the same step, so a
        request ending meanwhile cannot miss it; if not, it is unparked (it
        goes now, e.g. at its fallback wake-up)."""
        if self.cap <= 0:
            return False
        now = time.monotonic()
        with self._lock:
            flight = self._flight.get(origin)
            waited = now - min(flight) if flight else 0.0
            fresh = waited < SLOW_AFTER and self._slow_until.get(origin, 0.0) <= now
            if not flight or len(flight) < self.cap or (fresh and len(flight) < self.cap * BURST):
                # Under the cap, or at it but answering fast (so far): not capped.
                parked = self._parked.get(origin)
                if park is not None and parked and parked.pop(park[1], None) and not parked:
                    del self._parked[origin]
                return False
            if park is not None:
                self._parked.setdefault(origin, {}).setdefault(park[1], park[0])
            count = len(flight)
            warn = self._warned.get(origin, 0.0) <= now
            if warn:
                if len(self._warned) > 10_000:
                    self._warned.clear()
                self._warned[origin] = now + SLOW_MEMORY
        if warn:
            log.warning(
                "destination %s://%s:%s is slow (%d requests in flight, the oldest for %.1f s): "
                "its other sinks wait their turn (STREAMSINK_DELIVERY_PER_DESTINATION=%d)",
                *origin,
                count,
                waited,
                self.cap,
            )
        return True


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
            resumed = pool.gate.leave(origin, started)
            if resumed is not None and pool.resume is not None:
                try:
                    pool.resume(*resumed)
                except Exception:  # noqa: BLE001 - its fallback wake-up still comes
                    log.warning("could not resume sink %s", resumed[1], exc_info=True)
            if moved:
                pool._working.acquire()
                self.working = True
                pool._waiting.release()

    @contextlib.contextmanager
    def lingering(self) -> Iterator[bool]:
        """A linger slot and a waiting slot for the working one, or False."""
        pool = self.pool
        if not self.working or not pool._lingering.acquire(blocking=False):
            yield False
            return
        if not pool._waiting.acquire(blocking=False):
            pool._lingering.release()
            yield False
            return
        self.working = False
        pool._working.release()
        try:
            yield True
        finally:
            pool._working.acquire()
            self.working = True
            pool._waiting.release()
            pool._lingering.release()


_local = threading.local()


class DeliveryPool:
    """Threads for deliveries: ``working`` slots fed by ``submit`` (blocks while
    all are taken), ``waiting`` more for deliveries waiting on a sink's
    answer, and the destination gate (``per_destination``; 0: no cap).
    ``resume(stream_id, sink_id)`` kicks a parked sink when a slot frees."""

    def __init__(
        self,
        working: int,
        waiting: int = 0,
        per_destination: int = 0,
        resume: Callable[[str, str], Any] | None = None,
        linger: int = 0,
    ):
        self.resume = resume
        self._lingering = threading.BoundedSemaphore(max(linger, 1))
        if linger == 0:
            self._lingering.acquire()  # never taken: no sink lingers
        self._executor = ThreadPoolExecutor(
            max_workers=working + waiting, thread_name_prefix="deliver"
        )
        self._working = threading.BoundedSemaphore(working)
        self._waiting = threading.BoundedSemaphore(max(waiting, 1))
        if waiting == 0:
            self._waiting.acquire()  # never taken: no waiting lane
        self.gate = DestinationGate(per_destination)

    def submit(self, fn: Callable[..., Any], *args: Any, reserved: bool = False) -> None:
        """Run ``fn(*args)`` in a working slot: waits for one, unless the
        caller took one with ``reserve``."""
        if not reserved:
            self._working.acquire()
        try:
            self._executor.submit(self._run, fn, args)
        except BaseException:
            self._working.release()
            raise

    def reserve(self, most: int) -> int:
        """Take up to ``most`` free working slots without waiting; how many.
        Each goes to a ``submit(..., reserved=True)`` or back with ``unreserve``."""
        taken = 0
        while taken < most and self._working.acquire(blocking=False):
            taken += 1
        return taken

    def unreserve(self, count: int) -> None:
        for _ in range(count):
            self._working.release()

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


@contextlib.contextmanager
def idle_wait() -> Iterator[bool]:
    """For the delivery loop of a sink that delivered and caught up: whether it
    may wait for new events now (holding a linger slot and a waiting slot, its
    working slot given back meanwhile). No pool (a plain ``rq worker``): never."""
    task: _Task | None = getattr(_local, "task", None)
    if task is None:
        yield False
        return
    with task.lingering() as admitted:
        yield admitted


def defer_if_busy(url: str, stream_id: str, sink_id: str) -> float | None:
    """For the delivery loop, before a batch: None when it may go now; else
    the sink is parked (the calling thread's pool resumes it when a request
    to its destination ends) and this is the fallback wake-up, in seconds.
    No pool (a plain ``rq worker``): never busy."""
    task: _Task | None = getattr(_local, "task", None)
    if task is None:
        return None
    origin = origin_of(url)
    gate = task.pool.gate
    if origin is None or not gate.busy(origin, park=(stream_id, sink_id)):
        return None
    return FALLBACK * random.uniform(1.0, 1.5)
