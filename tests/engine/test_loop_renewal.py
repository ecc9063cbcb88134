"""The delivery loop renews its lease and kick flag itself every RENEW_AFTER
seconds (reads only in between): run in this process with a renewal due at
every batch, it still delivers everything in order and leaves nothing held."""

from __future__ import annotations

import pytest
import redis

from streamsink.delivery import job as delivery
from streamsink.delivery import scheduling
from streamsink.delivery.engine import Engine
from streamsink.settings import Settings

from .conftest import Api, Receiver


@pytest.mark.parametrize("renew_after", [-1.0, 3600.0])
def test_loop_delivers_with_and_without_renewals(
    api: Api,
    receiver: Receiver,
    redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    renew_after: float,
) -> None:
    monkeypatch.setattr(delivery, "RENEW_AFTER", renew_after)
    stream = api.stream()
    sink = api.sink(stream, receiver.traces_url, batchSize=10)
    api.post_seqs(stream, range(0, 55))
    engine = Engine(redis_client, Settings())
    try:
        renewals = []
        real = scheduling.Lease.stage_keep_alive

        def spy(self: scheduling.Lease, pipe: object) -> None:
            renewals.append(1)
            real(self, pipe)  # type: ignore[arg-type]

        monkeypatch.setattr(scheduling.Lease, "stage_keep_alive", spy)
        delivery.process_sink(engine, stream, sink["id"])
    finally:
        engine.close()
    receiver.wait_accepted(55, timeout=10)
    assert receiver.accepted_seqs() == list(range(55))
    assert (len(renewals) >= 6) if renew_after < 0 else (renewals == [])
    assert not redis_client.exists(scheduling.lease_key(sink["id"]))
    assert not redis_client.exists(scheduling.kick_key(sink["id"]))


def test_one_round_trip_per_batch(
    api: Api, receiver: Receiver, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next batch's reads ride on the outcome pipeline of the last one."""
    from redis.client import Pipeline

    stream = api.stream()
    sink = api.sink(stream, receiver.traces_url, batchSize=10)
    api.post_seqs(stream, range(0, 60))
    executed: list[int] = []
    real = Pipeline.execute

    def counting(self: Pipeline, *args: object, **kwargs: object) -> list[object]:
        executed.append(len(self))
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Pipeline, "execute", counting)
    engine = Engine(redis_client, Settings())
    try:
        delivery.process_sink(engine, stream, sink["id"])
    finally:
        engine.close()
    monkeypatch.undo()
    receiver.wait_accepted(60, timeout=10)
    assert receiver.accepted_seqs() == list(range(60))
    # the first read, then one outcome (with the next reads) per batch of 10
    # (and one more after the loop: the re-check of the sink in process_sink)
    assert len(executed) == 1 + 6 + 1, executed
