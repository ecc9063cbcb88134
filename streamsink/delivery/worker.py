"""``streamsink worker``: an RQ worker that never forks per job.

The worker owns the delivery engine (``delivery.engine``) and its pool
(``delivery.lanes``) and passes them down: a delivery job (named
``scheduling.JOB_PATH`` in Redis) runs as ``job.deliver`` bound to them
(``DeliveryJob``), which only hands the sink to the pool, so V8 contexts and
HTTP connection pools live as long as the process. (A plain ``rq worker``
runs the same jobs through ``job.deliver_job``, with an engine per job.)
A delivery waiting on a sink's answer moves to the pool's waiting lane, so
hung receivers never hold the working slots RQ feeds; a slow destination gets
a bounded number of threads.
When every working slot is busy the job blocks, so the worker stops taking
jobs: back-pressure, not an unbounded backlog. RQ takes the ``deliver``
queue first and ``deliver-slow`` (retries, deferred sinks, re-kicks) only
when it is empty. A delivery job skips RQ's per-job bookkeeping and brings
more delivery jobs with it (``Drain``): a platform's many small sinks cost
one hand-off each, not one RQ job each.

Beside RQ's loop, a housekeeping thread moves due scheduled jobs to the queue
(RQ's scheduler, run in a thread rather than a forked process), renews the
leases this process holds, runs the reaper that re-kicks stranded sinks, and
sends the worker's heartbeat on a timer (RQ sends one only around jobs and
every ~7 minutes when idle, so ``/health`` said ``degraded`` on an idle
install).
"""

from __future__ import annotations

import functools
import gc
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.scheduler import RQScheduler

from streamsink.delivery.engine import Engine
from streamsink.delivery.job import deliver, process_sink, resume
from streamsink.delivery.lanes import DeliveryPool
from streamsink.delivery.scheduling import JOB_PATH, QUEUE_NAMES, delivery_queues
from streamsink.settings import Settings
from streamsink.storage.connection import connect

log = logging.getLogger(__name__)


TICK = 0.5  # seconds between scheduler checks: RQ keeps whole seconds, so a
# wake-up runs at most ~1.5 s after its moment
RENEW_EVERY = 6  # ticks (3 s; leases last 15 s)
REAP_EVERY = 10  # ticks (5 s)
HEARTBEAT_EVERY = 4  # ticks (2 s; /health calls a worker stale after 60 s)
GC_GEN0 = 20_000  # allocations between collections of the youngest generation
DRAIN_BATCH = 16  # delivery jobs popped at once (at most the pool's free working slots)
DRAIN_ROUNDS = 64  # pops per RQ job, then RQ's loop runs (stop requests, the slow queue)


#: A delivery with the worker's engine and pool bound: ``runner(stream_id, sink_id)``.
Runner = Callable[[str, str], None]


class DeliveryJob(Job):
    """An RQ job whose function, when it is the delivery job (``JOB_PATH``), is
    the worker's ``runner``: the job in Redis stays as any RQ worker reads it;
    the worker hands its engine and pool to it (``StreamsinkWorker.execute_job``)."""

    runner: Runner | None = None

    @property
    def func(self) -> Any:
        if self.runner is not None and self.func_name == JOB_PATH:
            return self.runner
        return super().func


class Drain:
    """Delivery jobs run by the worker itself, many per RQ job.

    A delivery job only hands its sink to the pool. RQ's bookkeeping around a
    job (status, started and finished registries, an execution record, two
    heartbeats) tracks that hand-off, which cannot fail, and cost ~5 ms of
    worker CPU and ~1.3 ms of Redis per job: more than the batch of a small
    sink. So a delivery job RQ hands to ``StreamsinkWorker`` is deleted and
    its sink given to the pool; then up to the pool's free working slots of
    jobs are popped straight off the ``deliver`` queue (``LPOP`` with a
    count) and run the same way, for ``DRAIN_ROUNDS`` rounds at most, before
    RQ's loop goes on. Jobs of another function are pushed back for RQ. A job
    popped and lost in a crash is what a lost RQ job is: the sink's kick flag
    expires and the reaper's due set re-kicks it (docs/architecture.md)."""

    def __init__(self, engine: Engine, pool: DeliveryPool, queue_key: str) -> None:
        self.engine, self.pool, self.queue_key = engine, pool, queue_key

    def run(self, worker: StreamsinkWorker, job: Job) -> None:
        self.pool.submit(process_sink, self.engine, *job.args)  # first: the sink waits
        with worker.connection.pipeline(transaction=False) as pipe:
            pipe.delete(job.key)
            pipe.hincrby(worker.key, "successful_job_count", 1)  # as ``rq info`` counts
            pipe.execute()
        for _ in range(DRAIN_ROUNDS):
            if worker._stop_requested or not self._more(worker):  # noqa: SLF001
                return

    def _more(self, worker: StreamsinkWorker) -> bool:
        """One round; False when the queue or the free slots ran out."""
        connection = worker.connection
        free = self.pool.reserve(DRAIN_BATCH)
        if not free:
            return False
        used = 0
        try:
            ids = [i.decode() for i in connection.lpop(self.queue_key, free) or ()]
            if not ids:
                return False
            jobs = DeliveryJob.fetch_many(ids, connection=connection, serializer=worker.serializer)
            ours = [j for j in jobs if j is not None and j.func_name == JOB_PATH]
            foreign = [j.id for j in jobs if j is not None and j.func_name != JOB_PATH]
            with connection.pipeline(transaction=False) as pipe:
                if ours:
                    pipe.delete(*(j.key for j in ours))
                    pipe.hincrby(worker.key, "successful_job_count", len(ours))
                if foreign:  # not ours to run: back to the front, for RQ
                    pipe.lpush(self.queue_key, *reversed(foreign))
                pipe.execute()
            for job in ours:
                self.pool.submit(process_sink, self.engine, *job.args, reserved=True)
                used += 1
            return len(ids) == free and not foreign
        finally:
            self.pool.unreserve(free - used)


class StreamsinkWorker(SimpleWorker):
    """RQ's ``SimpleWorker`` that runs delivery jobs with ``runner`` (the
    engine and pool it was given) and whose heartbeat the housekeeping thread
    can send too, between its registered birth and death only (a heartbeat
    before birth would make RQ refuse the name; one after death would revive
    the key)."""

    def __init__(
        self, *args: Any, runner: Runner | None = None, drain: Drain | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, job_class=DeliveryJob, **kwargs)
        self.runner = runner
        self.drain = drain
        self._alive_lock = threading.Lock()
        self._alive = False

    def execute_job(self, job: Job, queue: Queue) -> None:
        if self.drain is not None and job.func_name == JOB_PATH:
            self.drain.run(self, job)
            return
        if isinstance(job, DeliveryJob):
            job.runner = self.runner
        super().execute_job(job, queue)

    def register_birth(self) -> None:
        with self._alive_lock:
            super().register_birth()
            self._alive = True

    def register_death(self) -> None:
        with self._alive_lock:
            self._alive = False
            super().register_death()

    def retire(self) -> None:
        """No more timer heartbeats (its loop ended, with or without a death)."""
        with self._alive_lock:
            self._alive = False

    def timer_heartbeat(self, connection: redis.Redis) -> None:
        """RQ's heartbeat (``last_heartbeat`` and the key's expiry, as ``rq info``
        reads them), sent on ``connection``: the engine's, with its short socket
        time-outs, not RQ's, which waits minutes on blocking pops."""
        with self._alive_lock:
            if self._alive:
                pipe = connection.pipeline(transaction=False)
                self.heartbeat(pipeline=pipe)
                pipe.execute()


class Housekeeping(threading.Thread):
    """Scheduler tick, lease renewal, the reaper and the worker's heartbeat,
    until stopped."""

    def __init__(self, engine: Engine):
        super().__init__(name="housekeeping", daemon=True)
        self.engine = engine
        #: RQ's worker of the moment (``_run_rq`` sets it; restarts replace it).
        self.rq_worker: StreamsinkWorker | None = None
        self.stopping = threading.Event()
        self.scheduler = RQScheduler(list(QUEUE_NAMES), connection=engine.redis, interval=1)

    def run(self) -> None:
        from streamsink.delivery.reaper import reap

        tick = 0
        while not self.stopping.wait(TICK):
            tick += 1
            try:
                self._schedule()
                if tick % RENEW_EVERY == 0:
                    self.engine.leases.renew_all()
                if tick % REAP_EVERY == 0:
                    reap(self.engine)
                worker = self.rq_worker
                if tick % HEARTBEAT_EVERY == 0 and worker is not None:
                    worker.timer_heartbeat(self.engine.redis)
            except Exception:  # noqa: BLE001 - keep the thread alive through Redis blips
                log.exception("housekeeping tick failed")

    def _schedule(self) -> None:
        # Acquires the per-queue lock, or refreshes it when already ours.
        self.scheduler.acquire_locks()
        if self.scheduler.acquired_locks:
            self.scheduler.enqueue_scheduled_jobs()

    def stop(self) -> None:
        self.stopping.set()
        try:
            self.scheduler.release_locks()
        except Exception:  # noqa: BLE001
            log.debug("could not release scheduler locks", exc_info=True)


def run_worker(settings: Settings, *, burst: bool = False) -> int:
    assert settings.redis_url
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per POST is noise
    connection = connect(settings.redis_url)
    engine = Engine(connection, settings)
    _tune_gc()
    pool = DeliveryPool(
        settings.delivery_threads,
        settings.delivery_wait_threads,
        settings.delivery_per_destination,
        resume=functools.partial(resume, engine.redis),
        linger=settings.delivery_linger_sinks,
    )
    runner = functools.partial(deliver, engine, pool.submit)
    drain = Drain(engine, pool, delivery_queues(engine.redis)[0].key)
    housekeeping = Housekeeping(engine)
    housekeeping.start()
    try:
        _run_rq(settings, burst, housekeeping, runner, drain)
    finally:
        engine.stopping.set()  # batches in flight finish; sinks go to other workers
        housekeeping.stop()
        pool.shutdown()
        engine.close()
    return 0


def _tune_gc() -> None:
    """Python's cycle collector, for a process whose garbage is acyclic
    batches: what start-up made (modules, V8, RQ, pydantic models) is frozen
    out of every collection, and the youngest generation is collected every
    ``GC_GEN0`` allocations instead of 700 (a batch of 100 events allocates
    thousands of objects, freed by reference counting anyway)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_GEN0, *gc.get_threshold()[1:])


def _run_rq(
    settings: Settings,
    burst: bool,
    housekeeping: Housekeeping,
    runner: Runner,
    drain: Drain | None = None,
) -> None:
    """RQ's loop, started again when it quits on a Redis error (RQ retries a
    failed dequeue, but quits on an error elsewhere, e.g. a heartbeat while
    Redis restarts); ends on SIGTERM/SIGINT or, with ``burst``, when idle.

    RQ gets its own connection: it raises the socket time-out of its client
    above its blocking pops (minutes), which the engine's commands must not
    inherit."""
    assert settings.redis_url
    base = f"streamsink-{socket.gethostname()}-{threading.get_native_id()}"
    for attempt in range(1_000_000):
        connection = connect(settings.redis_url)
        worker = None
        try:  # RQ talks to Redis from its constructor on
            worker = StreamsinkWorker(
                delivery_queues(connection),  # in this order: slow jobs when no other waits
                connection=connection,
                name=base if attempt == 0 else f"{base}-{attempt}",
                runner=runner,
                drain=drain,
            )
            worker.max_connection_wait_time = 5.0  # reconnect soon after Redis is back
            housekeeping.rq_worker = worker
            worker.work(burst=burst, logging_level="WARNING", with_scheduler=False)
        except (redis.ConnectionError, redis.TimeoutError, ValueError):
            log.warning("RQ loop failed (Redis unavailable?)", exc_info=True)
        finally:
            if worker is not None:
                worker.retire()
            connection.close()
        if burst or (worker is not None and worker._shutdown_requested_date is not None):
            return
        log.warning("RQ loop ended without a stop request; restarting it in 1 s")
        time.sleep(1)
