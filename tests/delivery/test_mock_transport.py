"""The delivery path (API ingest, ``Engine``, ``job.process_sink``, real Redis)
driven through ``MockTransport``: the mock sees the OTLP bodies, and the sink's
state follows its answers (200, 503 + Retry-After, 413, 415, 400)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from streamsink.api.app import create_app
from streamsink.delivery import job
from streamsink.delivery.engine import Engine
from streamsink.errors import ConnectError
from streamsink.otlp.answer import JSON, PROTOBUF
from streamsink.receiver.decode import decode_spans
from streamsink.settings import Settings
from streamsink.sinkhttp.client import DeliveryClient
from streamsink.sinkhttp.transport import MockTransport, Request, Response
from streamsink.storage import sinks as store_sinks

TOKEN = "tok-mock"
URL = "https://collector.example.com/v1/traces"  # never connected to: the mock answers
Handler = Callable[[Request, bytes], Response]


class Rig:
    """An API, an engine whose client sends through a ``MockTransport``, one stream."""

    def __init__(self, r: redis.Redis, handler: Handler):
        settings = Settings(auth_token=TOKEN)
        self.api = TestClient(create_app(settings, r), headers={"Authorization": f"Bearer {TOKEN}"})
        self.api.__enter__()
        self.redis = r
        self.engine = Engine(r, settings)
        self.engine.client.close()
        self.mock = MockTransport(handler)
        self.engine.client = DeliveryClient(transport=self.mock, total_timeout=5.0)
        answer = self.api.post("/api/v1/stream", json={"name": "s", "uid": "s"})
        assert answer.status_code == 201, answer.text
        self.stream = answer.json()["id"]

    def sink(self, **config: Any) -> str:
        body = {"type": "otelTracing", "batchSize": 100, "config": {"url": URL, **config}}
        answer = self.api.post(f"/api/v1/stream/{self.stream}/sink", json=body)
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])

    def post(self, seqs: range) -> None:
        events = [{"eventType": "e", "payload": f'{{"seq": {i}}}'} for i in seqs]
        answer = self.api.post(f"/api/v1/stream/{self.stream}/events", json={"events": events})
        assert answer.status_code == 202, answer.text

    def deliver(self, sink_id: str) -> None:
        job.process_sink(self.engine, self.stream, sink_id)

    def state(self, sink_id: str) -> dict[str, Any]:
        answer = self.api.get(f"/api/v1/stream/{self.stream}/sink/{sink_id}")
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def bodies(self) -> list[tuple[str, list[int]]]:
        """(content type, span seqs) of every body the mock received, in order."""
        return [(req.header("content-type") or "", seqs(req, body)) for req, body in self.mock.sent]

    def close(self) -> None:
        self.engine.close()
        self.api.__exit__(None, None, None)


def seqs(request: Request, body: bytes) -> list[int]:
    spans = decode_spans(body, request.header("content-type"), request.header("content-encoding"))
    return [int(s["attributes"]["seq"]) for s in spans]


@pytest.fixture
def rig(redis_client: redis.Redis) -> Iterator[Callable[[Handler], Rig]]:
    made: list[Rig] = []

    def make(handler: Handler) -> Rig:
        made.append(Rig(redis_client, handler))
        return made[-1]

    yield make
    for one in made:
        one.close()


def ok(request: Request, body: bytes) -> Response:
    return Response(200, {"Content-Type": JSON}, b"{}")


def test_200_delivers_the_batch_as_one_otlp_body(rig: Callable[[Handler], Rig]) -> None:
    r = rig(ok)
    sink = r.sink(encoding="json")
    r.post(range(3))
    r.deliver(sink)
    assert r.bodies() == [(JSON, [0, 1, 2])]
    request = r.mock.sent[0][0]
    assert request.url == URL
    assert request.origin == ("https", "collector.example.com", 443)
    assert (request.header("user-agent") or "").startswith("streamsink/")
    assert r.state(sink)["status"] == "enabled"

    r.post(range(3, 5))
    r.deliver(sink)
    assert r.bodies()[1:] == [(JSON, [3, 4])]


def test_503_with_retry_after_makes_the_sink_retry_then_deliver(
    rig: Callable[[Handler], Rig],
) -> None:
    answers = [Response(503, {"Retry-After": "30"}, b"busy")]

    def handler(request: Request, body: bytes) -> Response:
        return answers.pop(0) if answers else ok(request, body)

    r = rig(handler)
    sink = r.sink(encoding="json")
    r.post(range(2))
    before = time.time() * 1000
    r.deliver(sink)
    state = r.state(sink)
    assert state["status"] == "retrying"
    assert "503" in state["failureReason"]
    # Retry-After (30 s) is the wait, not the 1 s first step of the schedule.
    retry_at = store_sinks.get_sink(r.redis, sink).next_retry_at  # type: ignore[union-attr]
    assert retry_at is not None and before + 25_000 < retry_at < time.time() * 1000 + 35_000
    assert r.bodies() == [(JSON, [0, 1])]

    # Forced retry (the API's "retry now"): the same events go again, once, and succeed.
    answer = r.api.post(f"/api/v1/stream/{r.stream}/sink/{sink}/force-retry")
    assert answer.status_code in (200, 202, 204), answer.text
    r.deliver(sink)
    assert r.bodies() == [(JSON, [0, 1]), (JSON, [0, 1])]
    assert r.state(sink)["status"] == "enabled"


def test_413_splits_the_batch_in_halves_in_order(rig: Callable[[Handler], Rig]) -> None:
    def handler(request: Request, body: bytes) -> Response:
        return Response(413, {}, b"too big") if len(seqs(request, body)) > 2 else ok(request, body)

    r = rig(handler)
    sink = r.sink(encoding="json")
    r.post(range(5))
    r.deliver(sink)
    assert [s for _, s in r.bodies()] == [[0, 1, 2, 3, 4], [0, 1], [2, 3, 4], [2], [3, 4]]
    assert r.state(sink)["status"] == "enabled"
    r.post(range(5, 6))
    r.deliver(sink)  # the cursor moved past the split batch: only the new event goes
    assert r.bodies()[-1] == (JSON, [5])


def test_415_under_auto_switches_to_protobuf(rig: Callable[[Handler], Rig]) -> None:
    def handler(request: Request, body: bytes) -> Response:
        if request.header("content-type") == JSON:
            return Response(415, {}, b"protobuf only")
        return Response(200, {"Content-Type": PROTOBUF}, b"")

    r = rig(handler)
    sink = r.sink(encoding="auto")
    r.post(range(3))
    r.deliver(sink)
    assert r.bodies() == [(JSON, [0, 1, 2]), (PROTOBUF, [0, 1, 2])]
    assert r.state(sink)["status"] == "enabled"
    assert store_sinks.get_sink(r.redis, sink).negotiated_encoding == "protobuf"  # type: ignore[union-attr]


def test_permanent_answer_and_network_error(rig: Callable[[Handler], Rig]) -> None:
    calls: list[str] = []

    def handler(request: Request, body: bytes) -> Response:
        calls.append("x")
        if len(calls) == 1:
            raise ConnectError("connection refused (mock)")
        return Response(400, {}, b"bad request: no")

    r = rig(handler)
    sink = r.sink(encoding="json")
    r.post(range(1))
    r.deliver(sink)
    state = r.state(sink)
    assert state["status"] == "retrying" and "ConnectError" in state["failureReason"]
    assert r.api.post(f"/api/v1/stream/{r.stream}/sink/{sink}/force-retry").status_code < 300
    r.deliver(sink)
    state = r.state(sink)
    assert state["status"] == "disabled" and "400" in state["failureReason"]
    assert len(r.mock.sent) == 2
