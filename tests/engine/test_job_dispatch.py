"""How a delivery job finds its engine: ``streamsink worker`` hands the engine
and pool it owns to each job (``worker.DeliveryJob``), with no process-wide
engine; a plain RQ worker runs the same job (``scheduling.JOB_PATH``) with an
engine made from env settings. Both run in this process on a real Redis."""

from __future__ import annotations

import pytest
import redis
from rq import Queue, SimpleWorker
from rq.job import Job

from streamsink.delivery import engine as engine_mod
from streamsink.delivery import job as job_mod
from streamsink.delivery import scheduling
from streamsink.delivery.engine import Engine
from streamsink.delivery.lanes import DeliveryPool
from streamsink.delivery.worker import Drain, StreamsinkWorker
from streamsink.settings import Settings

from .conftest import Api, Receiver


def test_engine_module_has_no_process_global() -> None:
    for name in ("install", "current", "uninstall", "_installed"):
        assert not hasattr(engine_mod, name), name


def test_streamsink_worker_passes_its_engine_to_the_job(
    api: Api, receiver: Receiver, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = api.stream()
    sink = api.sink(stream, receiver.traces_url, batchSize=10)
    api.post_seqs(stream, range(25))  # kicks the sink: a JOB_PATH job in Redis
    assert scheduling.delivery_queue(redis_client, False).count == 1

    def unbound(stream_id: str, sink_id: str) -> None:
        raise AssertionError("the worker ran the job without its engine")

    monkeypatch.setattr(job_mod, "deliver_job", unbound)
    engine = Engine(redis_client, Settings())
    calls: list[tuple[str, str]] = []

    def runner(stream_id: str, sink_id: str) -> None:
        calls.append((stream_id, sink_id))
        job_mod.deliver(engine, None, stream_id, sink_id)

    try:
        worker = StreamsinkWorker(
            scheduling.delivery_queues(redis_client), connection=redis_client, runner=runner
        )
        worker.work(burst=True, logging_level="WARNING", with_scheduler=False)
    finally:
        engine.close()
    assert calls and calls[0] == (stream, sink["id"])
    receiver.wait_accepted(25, timeout=10)
    assert receiver.accepted_seqs() == list(range(25))
    assert api.get_sink(stream, sink["id"])["status"] == "enabled"


def test_plain_rq_worker_runs_the_job_with_an_engine_from_env(
    api: Api, receiver: Receiver, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREAMSINK_JS_TIMEOUT_MS", "1000")
    made: list[Engine] = []
    real_init = Engine.__init__

    def spy(self: Engine, connection: redis.Redis, settings: Settings) -> None:
        made.append(self)
        real_init(self, connection, settings)

    monkeypatch.setattr(Engine, "__init__", spy)
    stream = api.stream()
    sink = api.sink(stream, receiver.traces_url, batchSize=10)
    api.post_seqs(stream, range(12))
    worker = SimpleWorker(scheduling.delivery_queues(redis_client), connection=redis_client)
    worker.work(burst=True, logging_level="WARNING", with_scheduler=False)
    receiver.wait_accepted(12, timeout=10)
    assert receiver.accepted_seqs() == list(range(12))
    assert made and made[0].settings.js_timeout_ms == 1000
    assert api.get_sink(stream, sink["id"])["status"] == "enabled"


def test_one_rq_job_hands_over_every_queued_delivery_job(
    api: Api, receiver: Receiver, redis_client: redis.Redis
) -> None:
    """``Drain``: RQ hands one delivery job to the worker, which runs it and
    pops the others straight off the queue (no RQ bookkeeping per job);
    a job of another function in the queue is left to RQ, still runs, and
    ``rq info``'s count of successful jobs stays right."""
    streams = [api.stream(f"s{i}") for i in range(12)]
    for stream in streams:
        api.sink(stream, receiver.traces_url, batchSize=5)
    for i, stream in enumerate(streams):
        api.post_seqs(stream, range(5 * i, 5 * i + 5))
        if i == 5:  # a job that is not a delivery, between the kicks
            scheduling.delivery_queue(redis_client).enqueue("os.getpid", result_ttl=600)
    queue = scheduling.delivery_queue(redis_client)
    assert queue.count == 13
    engine = Engine(redis_client, Settings())
    pool = DeliveryPool(32)
    drain = Drain(engine, pool, queue.key)
    executed: list[str] = []
    try:
        worker = StreamsinkWorker(
            scheduling.delivery_queues(redis_client), connection=redis_client, drain=drain
        )
        real = worker.execute_job

        def counting(job: Job, q: Queue) -> None:
            executed.append(job.func_name)
            real(job, q)

        worker.execute_job = counting  # type: ignore[method-assign]
        worker.work(burst=True, max_jobs=1, logging_level="WARNING", with_scheduler=False)
        assert executed == [scheduling.JOB_PATH]  # one RQ job ...
        assert queue.get_job_ids() and len(queue.get_job_ids()) == 1  # ... took 11 more
        (foreign,) = queue.jobs
        assert foreign.func_name == "os.getpid"
        worker.refresh()
        assert worker.successful_job_count == 12  # as ``rq info`` shows it
        worker.work(burst=True, logging_level="WARNING", with_scheduler=False)
        assert executed == [scheduling.JOB_PATH, "os.getpid"]
        assert foreign.get_status(refresh=True) == "finished"
        receiver.wait_accepted(60, timeout=20)
    finally:
        pool.shutdown()
        engine.close()
    assert sorted(receiver.accepted_seqs()) == list(range(60))
    # The delivery jobs' hashes are gone; the other job's stays for its result_ttl.
    assert [k.decode() for k in redis_client.keys("rq:job:*")] == [f"rq:job:{foreign.id}"]
