"""The official svix SDK, pointed at a real uvicorn server on 127.0.0.1, drives
every streaming call it has (except secrets, which come later)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import redis
from svix.api import (
    CreateStreamEventsIn,
    EventIn,
    HttpSinkHeadersPatchIn,
    OtelTracingConfigIn,
    OtelTracingConfigPatch,
    SinkTransformIn,
    StreamEventTypeIn,
    StreamEventTypePatch,
    StreamIn,
    StreamPatch,
    StreamSinkIn,
    StreamSinkPatch,
    Svix,
)
from svix.api.streaming_event_type import (
    StreamingEventTypeDeleteOptions,
    StreamingEventTypeListOptions,
)
from svix.api.streaming_events import StreamingEventsCreateOptions, StreamingEventsGetOptions
from svix.api.streaming_sink import StreamingSinkListOptions
from svix.api.streaming_stream import StreamingStreamCreateOptions, StreamingStreamListOptions
from svix.exceptions import HttpError
from svix.models import Ordering, SinkStatus, SinkStatusIn

from streamsink.settings import Settings
from streamsink.storage import eventlog
from tests.helpers.sdk_server import sdk, serve_api

from .util import TOKEN

SINK_URL = "https://collector.example.com/v1/traces"


@pytest.fixture
def server_url(redis_client: redis.Redis) -> Iterator[str]:
    """A real uvicorn server on 127.0.0.1 (free port) in a background thread."""
    with serve_api(Settings(auth_token=TOKEN, max_body_bytes=1024 * 1024), redis_client) as url:
        yield url


@pytest.fixture
def svix(server_url: str) -> Svix:
    return sdk(server_url, TOKEN)


def test_oversized_body_on_a_real_server(server_url: str, svix: Svix) -> None:
    svix.streaming.stream.create(StreamIn(name="big", uid="big"))
    headers = {"Authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
    body = b'{"events": [{"eventType": "a", "payload": "' + b"x" * (2 * 1024 * 1024) + b'"}]}'
    with httpx.Client(base_url=server_url, headers=headers) as http:
        r = http.post("/api/v1/stream/big/events", content=body)
        assert r.status_code == 413 and r.json()["code"] == "payload_too_large"
        r = http.get("/health")
        assert r.status_code == 200 and r.json()["redis"] is True


def test_health_at_svix_path(server_url: str, svix: Svix) -> None:
    svix.health.get()  # GET /api/v1/health; raises on a 4xx/5xx
    with httpx.Client(base_url=server_url) as http:  # no token, as /health
        old, new = http.get("/health"), http.get("/api/v1/health")
    assert old.status_code == new.status_code == 200
    assert new.json()["redis"] is True and new.json().keys() == old.json().keys()


def test_streams(svix: Svix) -> None:
    streams = svix.streaming.stream
    created = streams.create(StreamIn(name="Orders", uid="orders", metadata={"team": "a"}))
    assert created.id.startswith("strm_") and created.uid == "orders"
    assert created.created_at.tzinfo is not None
    assert streams.get(created.id) == streams.get("orders") == created
    with pytest.raises(HttpError) as err:
        streams.create(StreamIn(name="dup", uid="orders"))
    assert err.value.status_code == 409 and err.value.code == "conflict"
    # the SDK sends an idempotency key on every POST; an explicit one replays
    key = StreamingStreamCreateOptions(idempotency_key="same")
    one = streams.create(StreamIn(name="x"), key)
    assert streams.create(StreamIn(name="x"), key).id == one.id

    for i in range(5):
        streams.create(StreamIn(name=f"s{i}"))
    seen, iterator, pages = [], None, 0
    while True:
        page = streams.list(StreamingStreamListOptions(limit=3, iterator=iterator))
        seen += [s.id for s in page.data]
        pages += 1
        if page.done:
            break
        iterator = page.iterator
    assert len(seen) == len(set(seen)) == 7 and pages == 3
    desc = streams.list(StreamingStreamListOptions(order=Ordering.DESCENDING))
    assert [s.id for s in desc.data] == seen[::-1]

    up = streams.upsert("billing", StreamIn(name="Billing"))
    assert up.uid == "billing"
    assert streams.upsert("billing", StreamIn(name="Billing 2")).id == up.id
    patched = streams.patch("billing", StreamPatch(description="Renamed", metadata={"k": "v"}))
    assert patched.name == "Renamed" and patched.metadata == {"k": "v"}
    streams.delete("billing")
    with pytest.raises(HttpError) as err:
        streams.get("billing")
    assert err.value.status_code == 404 and err.value.code == "not_found"


def test_event_types(svix: Svix) -> None:
    et = svix.streaming.event_type
    out = et.create(StreamEventTypeIn(name="order.created", description="d"))
    assert out.name == "order.created" and out.archived is False
    assert et.get("order.created").description == "d"
    assert et.upsert("order.paid", StreamEventTypeIn(name="order.paid")).name == "order.paid"
    assert et.patch("order.paid", StreamEventTypePatch(deprecated=True)).deprecated is True
    et.delete("order.paid")
    names = [e.name for e in et.list().data]
    assert names == ["order.created"]
    listed = et.list(StreamingEventTypeListOptions(include_archived=True))
    assert [e.name for e in listed.data] == ["order.created", "order.paid"]
    et.delete("order.paid", StreamingEventTypeDeleteOptions(expunge=True))
    assert len(et.list(StreamingEventTypeListOptions(include_archived=True)).data) == 1


def test_sinks_headers_transformation_and_events(svix: Svix, redis_client: redis.Redis) -> None:
    stream = svix.streaming.stream.create(StreamIn(name="Orders", uid="orders"))
    sinks = svix.streaming.sink
    sink = sinks.create(
        "orders",
        StreamSinkIn(
            type="otelTracing",
            config=OtelTracingConfigIn(url=SINK_URL, headers={"Authorization": "Bearer s3"}),
            uid="main",
            batch_size=10,
            event_types=["order.created"],
        ),
    )
    assert sink.id.startswith("sink_") and sink.status == SinkStatus.ENABLED
    assert sink.config.headers.headers == {"Authorization": "************"}
    assert sink.config.headers.sensitive == ["Authorization"]
    assert sinks.get(stream.id, "main") == sinks.get("orders", sink.id)
    with pytest.raises(HttpError) as err:
        sinks.create(
            "orders", StreamSinkIn(type="otelTracing", config={"url": SINK_URL}, uid="main")
        )
    assert err.value.status_code == 409

    for _ in range(4):
        sinks.create("orders", StreamSinkIn(type="otelTracing", config={"url": SINK_URL}))
    ids, iterator = [], None
    while True:
        page = sinks.list("orders", StreamingSinkListOptions(limit=2, iterator=iterator))
        ids += [s.id for s in page.data]
        if page.done:
            break
        iterator = page.iterator
    assert len(ids) == 5 and ids[0] == sink.id

    patched = sinks.patch(
        "orders",
        "main",
        StreamSinkPatch(
            type="otelTracing",
            config=OtelTracingConfigPatch(url="https://other.example.com/v1/traces"),
            status=SinkStatusIn.DISABLED,
            max_wait_secs=5,
        ),
    )
    assert patched.status == SinkStatus.DISABLED and patched.max_wait_secs == 5
    assert patched.config.url == "https://other.example.com/v1/traces"
    assert patched.batch_size == 10
    replaced = sinks.upsert(
        "orders",
        "main",
        StreamSinkIn(
            type="otelTracing",
            config=OtelTracingConfigIn(url=SINK_URL),
            event_types=["order.created"],
        ),
    )
    assert replaced.id == sink.id and replaced.batch_size == 100
    mirror = sinks.upsert(
        "orders", "mirror", StreamSinkIn(type="otelTracing", config={"url": SINK_URL})
    )
    assert mirror.uid == "mirror"
    sinks.delete("orders", "mirror")
    with pytest.raises(HttpError):
        sinks.get("orders", "mirror")

    headers = svix.streaming.sink_headers_patch(
        "orders", "main", HttpSinkHeadersPatchIn(headers={"X-Tenant": "acme", "X-Token": "t"})
    )
    assert headers.headers == {"X-Tenant": "acme", "X-Token": "************"}
    assert set(headers.sensitive) == {"X-Token"}
    got = svix.streaming.sink_headers_get("orders", "main")
    assert got.headers["X-Tenant"] == "acme"

    code = "function handler(input) {\n  return {spans: []};\n}\n"
    sinks.transformation.patch("orders", "main", SinkTransformIn(code=code))
    tr = sinks.transformation.get("orders", "main")
    assert tr.code == code and tr.enabled is True
    sinks.transformation.patch("orders", "main", SinkTransformIn(code=None))
    assert sinks.transformation.get("orders", "main").enabled is False

    events = svix.streaming.events
    body = CreateStreamEventsIn(
        events=[
            EventIn(event_type="order.created", payload='{"id": 1}'),
            EventIn(event_type="order.paid", payload='{"id": 1}'),
            EventIn(event_type="order.created", payload='{"id": 2}'),
        ]
    )
    opts = StreamingEventsCreateOptions(idempotency_key="batch-1")
    events.create("orders", body, opts)
    events.create("orders", body, opts)  # replayed, stored once
    assert eventlog.length(redis_client, stream.id) == 3
    out = events.get("orders", "main", StreamingEventsGetOptions(limit=10))
    assert [e.payload for e in out.data] == ['{"id": 1}', '{"id": 2}'] and out.done
    assert all(e.event_type == "order.created" for e in out.data)
    other = sinks.list("orders").data[1]
    everything = events.get("orders", other.id, StreamingEventsGetOptions(limit=2))
    assert len(everything.data) == 2 and not everything.done
    rest = events.get(
        "orders", other.id, StreamingEventsGetOptions(limit=2, iterator=everything.iterator)
    )
    assert len(rest.data) == 1 and rest.done

    # events for a stream that does not exist yet, created alongside
    events.create(
        "new-stream",
        CreateStreamEventsIn(
            events=[EventIn(event_type="a", payload="x")], stream=StreamIn(name="N")
        ),
    )
    assert svix.streaming.stream.get("new-stream").name == "N"
    with pytest.raises(HttpError) as err:
        events.create(
            "missing", CreateStreamEventsIn(events=[EventIn(event_type="a", payload="x")])
        )
    assert err.value.status_code == 404
