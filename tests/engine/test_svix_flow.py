"""The whole flow driven by the official svix SDK against a real uvicorn server
and a real worker process: stream, sink, transformation, events -> spans at a
receiver on 127.0.0.1 carrying the handler's names and attributes."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import redis
import uvicorn
from svix.api import (
    CreateStreamEventsIn,
    EventIn,
    OtelTracingConfigIn,
    SinkTransformIn,
    StreamIn,
    StreamSinkIn,
    Svix,
    SvixOptions,
)
from svix.models import SinkStatus

from streamsink.api.app import create_app
from streamsink.settings import Settings

from .conftest import TOKEN, Receiver, Workers, wait_until

HANDLER = """
function handler(input) {
  return {
    config: { serviceName: "checkout", scope: { name: "orders", version: "1.2.3" } },
    spans: input.events.map(function (e) {
      var p = e.payload;
      return {
        name: e.eventType + " #" + p.order,
        kind: "SERVER",
        traceIdKey: "order-" + p.order,
        spanIdKey: e.eventType + "-" + p.order,
        parentSpanIdKey: e.eventType === "order.paid" ? "order.created-" + p.order : undefined,
        startTime: p.at,
        endTime: p.at,
        attributes: { "order.id": p.order, "order.total": p.total, customer: { tier: p.tier } }
      };
    })
  };
}
"""


@pytest.fixture
def server_url(redis_url: str, redis_client: redis.Redis) -> Iterator[str]:
    settings = Settings(auth_token=TOKEN, redis_url=redis_url)
    app = create_app(settings, redis_client)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 10, "uvicorn to start", interval=0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_svix_sdk_end_to_end(server_url: str, receiver: Receiver, workers: Workers) -> None:
    workers.start()
    svix = Svix(TOKEN, SvixOptions(server_url=server_url, retry_schedule=[]))
    stream = svix.streaming.stream.create(StreamIn(name="Orders", uid="orders"))
    sink = svix.streaming.sink.create(
        "orders",
        StreamSinkIn(
            type="otelTracing",
            config=OtelTracingConfigIn(url=receiver.traces_url, headers={"X-Api-Key": "k1"}),
            uid="traces",
            batch_size=4,
            event_types=["order.created", "order.paid"],
        ),
    )
    svix.streaming.sink.transformation.patch("orders", "traces", SinkTransformIn(code=HANDLER))

    events = []
    for order in (1, 2, 3):
        at = f"2024-05-01T10:00:0{order}.123456789Z"
        for event_type in ("order.created", "order.note", "order.paid"):
            payload = f'{{"order": {order}, "total": {order * 10.5}, "tier": "gold", "at": "{at}"}}'
            events.append(EventIn(event_type=event_type, payload=payload))
    svix.streaming.events.create("orders", CreateStreamEventsIn(events=events))

    spans = receiver.wait_accepted(6, timeout=15)
    assert [s["name"] for s in spans] == [
        f"{t} #{o}" for o in (1, 2, 3) for t in ("order.created", "order.paid")
    ]
    first = spans[0]
    assert first["kind"] == "SERVER" and first["serviceName"] == "checkout"
    assert first["scope"] == {"name": "orders", "version": "1.2.3"}
    assert first["attributes"] == {"order.id": 1, "order.total": 10.5, "customer.tier": "gold"}
    assert first["startTimeUnixNano"] % 1_000_000_000 == 123456789
    by_name = {s["name"]: s for s in spans}
    for order in (1, 2, 3):
        created, paid = by_name[f"order.created #{order}"], by_name[f"order.paid #{order}"]
        assert paid["traceId"] == created["traceId"]
        assert paid["parentSpanId"] == created["spanId"]
    assert len({s["traceId"] for s in spans}) == 3
    request = receiver.settle()[0].request
    assert request.headers["x-api-key"] == "k1"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("streamsink/")

    def caught_up():  # type: ignore[no-untyped-def]
        out = svix.streaming.sink.get(stream.id, sink.id)
        return out.current_iterator != sink.current_iterator and out

    out = wait_until(caught_up, 5, "currentIterator to move")
    assert out.status == SinkStatus.ENABLED and out.failure_reason is None
    time.sleep(0.2)
    assert len(receiver.settle()) == 2  # batches of 4 matching events: 4 + 2
