"""How a delivery job finds its engine: ``streamsink worker`` hands the engine
and pool it owns to each job (``worker.DeliveryJob``), with no process-wide
engine; a plain RQ worker runs the same job (``scheduling.JOB_PATH``) with an
engine made from env settings. Both run in this process on a real Redis."""

from __future__ import annotations

import pytest
import redis
from rq import SimpleWorker

from streamsink.delivery import engine as engine_mod
from streamsink.delivery import job as job_mod
from streamsink.delivery import scheduling
from streamsink.delivery.engine import Engine
from streamsink.delivery.worker import StreamsinkWorker
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
