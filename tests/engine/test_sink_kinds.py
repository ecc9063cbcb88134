"""The batch path takes transform, send and what to remember from the sink's
kind (``delivery.kinds.KINDS[sink.type]``) and keeps the outcome handling
(cursor, attempts, retry state, metrics) itself."""

from __future__ import annotations

import pytest
import redis
from redis.client import Pipeline

from streamsink.delivery import job as delivery
from streamsink.delivery.engine import Engine
from streamsink.delivery.kinds import KINDS, OtelTracingKind, Sent
from streamsink.settings import Settings
from streamsink.storage.base import sink_key
from streamsink.storage.eventlog import LogEntry
from streamsink.storage.sinks import SinkRecord
from streamsink.transform.pipeline import TransformResult

from .conftest import Api, Receiver


class RecordingKind(OtelTracingKind):
    """The ``otelTracing`` kind, noting each step the batch path asks of it."""

    def __init__(self) -> None:
        self.steps: list[str] = []

    def prepare(self, engine: Engine, sink: SinkRecord, events: list[LogEntry]) -> TransformResult:
        self.steps.append(f"prepare {len(events)}")
        return super().prepare(engine, sink, events)

    def send(
        self, engine: Engine, sink: SinkRecord, prepared: TransformResult, first: str, last: str
    ) -> Sent:
        self.steps.append("send")
        return super().send(engine, sink, prepared, first, last)

    def stage_success(
        self, pipe: Pipeline, engine: Engine, sink: SinkRecord, prepared: TransformResult
    ) -> None:
        self.steps.append("remember")
        super().stage_success(pipe, engine, sink, prepared)


def _run(redis_client: redis.Redis, stream: str, sink_id: str) -> None:
    engine = Engine(redis_client, Settings())
    try:
        delivery.process_sink(engine, stream, sink_id)
    finally:
        engine.close()


def test_batch_steps_come_from_the_sinks_kind(
    api: Api, receiver: Receiver, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    kind = RecordingKind()
    monkeypatch.setitem(KINDS, "otelTracing", kind)
    stream = api.stream()
    sink = api.sink(stream, receiver.traces_url, batchSize=10)
    api.post_seqs(stream, range(25))
    _run(redis_client, stream, sink["id"])
    receiver.wait_accepted(25, timeout=10)
    assert receiver.accepted_seqs() == list(range(25))
    per_batch = ["send", "remember"]
    assert kind.steps == [
        "prepare 10",
        *per_batch,
        "prepare 10",
        *per_batch,
        "prepare 5",
        *per_batch,
    ]
    done = api.attempts(stream, sink["id"])["data"]
    assert [a["outcome"] for a in done] == ["success"] * 3
    assert sorted(a["spansSent"] for a in done) == [5, 10, 10]


def test_a_sink_type_without_a_kind_is_disabled_with_its_reason(
    api: Api, receiver: Receiver, redis_client: redis.Redis
) -> None:
    stream = api.stream()
    sink = api.sink(stream, receiver.traces_url, batchSize=10)
    before = api.get_sink(stream, sink["id"])
    redis_client.hset(sink_key(sink["id"]), "type", "carrierPigeon")
    api.post_seqs(stream, range(3))
    _run(redis_client, stream, sink["id"])
    after = api.get_sink(stream, sink["id"])
    assert after["status"] == "disabled"
    assert 'sink type "carrierPigeon"' in after["failureReason"]
    assert receiver.settle() == []  # nothing sent, nothing dropped: the cursor stays
    assert after["currentIterator"] == before["currentIterator"]
    failed = api.attempts(stream, sink["id"])["data"]
    assert [a["outcome"] for a in failed] == ["failed"]
