"""A sink whose receiver is down: its stream fills to ``STREAMSINK_STREAM_MAX_BYTES``
and the API back-pressures it (429 + ``Retry-After``) while another stream keeps
flowing; when the receiver is up again the sink drains, the stream accepts
again, and every event ever answered 202 is delivered (lost 0)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import orjson
import pytest
import redis
from fastapi.testclient import TestClient

from streamsink.api.app import create_app
from streamsink.settings import Settings
from tests.helpers.receiver_server import Answer, Recorded

from .conftest import TOKEN, Receiver, Workers, wait_until

BUDGET = 30_000


@pytest.fixture
def client(redis_url: str, redis_client: redis.Redis) -> Iterator[TestClient]:
    settings = Settings(
        auth_token=TOKEN, redis_url=redis_url, stream_max_bytes=BUDGET, log_retention_secs=60
    )
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(create_app(settings, redis_client), headers=headers) as test_client:
        yield test_client


def _events(seqs: range) -> dict[str, object]:
    return {
        "events": [{"eventType": "e", "payload": orjson.dumps({"seq": i}).decode()} for i in seqs]
    }


def _setup(client: TestClient, uid: str, url: str) -> tuple[str, str]:
    sid = client.post("/api/v1/stream", json={"name": uid, "uid": uid}).json()["id"]
    body = {"type": "otelTracing", "config": {"url": url}, "batchSize": 100}
    r = client.post(f"/api/v1/stream/{sid}/sink", json=body)
    assert r.status_code == 201, r.text
    return sid, r.json()["id"]


def test_a_down_sink_back_pressures_its_stream_then_drains_with_nothing_lost(
    client: TestClient, receiver_factory: Callable[..., Receiver], workers: Workers
) -> None:
    up = threading.Event()

    def down_then_up(_: Recorded) -> Answer:
        return Answer(200) if up.is_set() else Answer(503, "down")

    down: Receiver = receiver_factory(handler=down_then_up)
    healthy: Receiver = receiver_factory()
    workers.start(retry_schedule="200ms..500ms")
    stream, sink = _setup(client, "down", down.traces_url)
    other, _ = _setup(client, "other", healthy.traces_url)

    accepted: list[int] = []
    refused = None
    seq = 0
    for _ in range(300):  # until the budget refuses a POST
        r = client.post(f"/api/v1/stream/{stream}/events", json=_events(range(seq, seq + 50)))
        if r.status_code == 429:
            refused = r
            break
        assert r.status_code == 202, r.text
        accepted += range(seq, seq + 50)
        seq += 50
    assert refused is not None, "the budget never refused a POST"
    assert refused.json()["code"] == "stream_over_budget"
    assert int(refused.headers["Retry-After"]) >= 1
    assert down.wait_for(1, timeout=10)  # the sink is failing, not just slow

    # Another stream keeps flowing meanwhile.
    client.post(f"/api/v1/stream/{other}/events", json=_events(range(100_000, 100_200)))
    healthy.wait_accepted(200, timeout=20)

    up.set()  # the receiver is back: the sink drains and the stream accepts again
    deadline = time.monotonic() + 60
    while True:
        r = client.post(f"/api/v1/stream/{stream}/events", json=_events(range(seq, seq + 50)))
        if r.status_code == 202:
            accepted += range(seq, seq + 50)
            break
        assert r.status_code == 429, r.text
        assert time.monotonic() < deadline, "the stream never accepted again"
        time.sleep(0.2)

    spans = down.wait_accepted(len(accepted), timeout=60)
    delivered = {s["attributes"]["seq"] for s in spans}
    assert set(accepted) <= delivered  # lost 0
    state = client.get(f"/api/v1/stream/{stream}/sink/{sink}").json()
    assert state["droppedEvents"] == 0
    wait_until(
        lambda: client.get(f"/api/v1/stream/{stream}/sink/{sink}").json()["status"] == "enabled",
        10,
        "the sink enabled again",
    )
