"""``poller`` sinks through the official svix SDK on a real uvicorn server: the
consumer pages the log with ``events.get`` and the iterator it comes back with
is the sink's cursor; no delivery job is ever queued for such a sink."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
import redis
from fastapi.testclient import TestClient
from rq import Queue
from svix.api import (
    CreateStreamEventsIn,
    EventIn,
    StreamIn,
    StreamSinkIn,
    StreamSinkPatch,
    Svix,
)
from svix.api.streaming_events import StreamingEventsGetOptions
from svix.exceptions import HttpError, HTTPValidationError
from svix.models import SinkStatusIn

from streamsink.delivery.scheduling import QUEUE_NAMES
from streamsink.settings import Settings
from streamsink.storage import eventlog as event_log
from streamsink.storage import sinks as store_sinks
from tests.helpers.sdk_server import sdk, serve_api

from .util import AUTH, TOKEN, sink_body


@pytest.fixture
def server_url(redis_client: redis.Redis) -> Iterator[str]:
    """A real uvicorn server on 127.0.0.1 (free port) in a background thread."""
    with serve_api(Settings(auth_token=TOKEN), redis_client) as url:
        yield url


@pytest.fixture
def svix(server_url: str) -> Svix:
    return sdk(server_url, TOKEN)


def _post(svix: Svix, stream: str, events: list[tuple[str, str]]) -> None:
    body = CreateStreamEventsIn(events=[EventIn(event_type=t, payload=p) for t, p in events])
    svix.streaming.events.create(stream, body)


def _get(svix: Svix, stream: str, sink: str, **options: object) -> object:
    return svix.streaming.events.get(stream, sink, StreamingEventsGetOptions(**options))  # type: ignore[arg-type]


def _poller(svix: Svix, stream: str, **fields: object) -> str:
    sink = svix.streaming.sink.create(stream, StreamSinkIn(type="poller", config={}, **fields))  # type: ignore[arg-type]
    return sink.id


def test_poller_pages_in_order_with_filter_and_cursor(
    svix: Svix, redis_client: redis.Redis
) -> None:
    stream = svix.streaming.stream.create(StreamIn(name="orders", uid="orders")).id
    _post(svix, "orders", [("paid", "before-0"), ("paid", "before-1")])  # before the sink
    sink_id = _poller(svix, "orders", uid="poll", event_types=["paid"], batch_size=10)
    created = svix.streaming.sink.get("orders", "poll")
    assert created.type == "poller" and created.config == {} and created.status.value == "enabled"
    start = created.current_iterator
    assert start == event_log.last_id(redis_client, stream) != "0-0"

    expected = []
    for batch in range(4):
        events = []
        for i in range(13):
            n = batch * 13 + i
            kind = "paid" if n % 3 else "other"
            events.append((kind, f"{kind}-{n}"))
            if kind == "paid":
                expected.append(f"{kind}-{n}")
        _post(svix, "orders", events)

    first = _get(svix, "orders", "poll")
    assert first.data == [] and first.done is False  # type: ignore[attr-defined]
    iterator, seen, calls = first.iterator, [], 0  # type: ignore[attr-defined]
    while True:
        calls += 1
        assert calls < 50
        page = _get(svix, "orders", sink_id, limit=4, iterator=iterator)
        assert len(page.data) <= 4  # type: ignore[attr-defined]
        # coming back with ``iterator`` acknowledged everything before it
        acked = svix.streaming.sink.get("orders", "poll").current_iterator
        if calls > 1:
            assert acked == _position(iterator) != start
        seen += [e.payload for e in page.data]  # type: ignore[attr-defined]
        assert all(e.event_type == "paid" for e in page.data)  # type: ignore[attr-defined]
        iterator = page.iterator  # type: ignore[attr-defined]
        if page.done:  # type: ignore[attr-defined]
            break
    assert seen == expected  # stream order, none missing or doubled, filter applied
    last = event_log.last_id(redis_client, stream)
    caught_up = _get(svix, "orders", "poll", iterator=iterator)
    assert caught_up.data == [] and caught_up.done is True  # type: ignore[attr-defined]
    assert svix.streaming.sink.get("orders", "poll").current_iterator == last

    # an older iterator reads again but never moves the cursor back
    again = _get(svix, "orders", "poll", iterator=first.iterator, limit=2)  # type: ignore[attr-defined]
    assert [e.payload for e in again.data] == expected[:2]  # type: ignore[attr-defined]
    assert svix.streaming.sink.get("orders", "poll").current_iterator == last

    # no iterator: the sink's position, which is now what was acknowledged
    _post(svix, "orders", [("paid", "late")])
    resumed = _get(svix, "orders", "poll")
    assert resumed.data == [] and _position(resumed.iterator) == last  # type: ignore[attr-defined]
    tail = _get(svix, "orders", "poll", iterator=resumed.iterator)  # type: ignore[attr-defined]
    assert [e.payload for e in tail.data] == ["late"] and tail.done  # type: ignore[attr-defined]


def test_a_thousand_events_none_missing_or_doubled(svix: Svix, redis_client: redis.Redis) -> None:
    stream = svix.streaming.stream.create(StreamIn(name="big", uid="big")).id
    sink_id = _poller(svix, "big")
    for start in range(0, 1000, 250):
        _post(svix, "big", [("n", str(i)) for i in range(start, start + 250)])
    iterator = _get(svix, "big", sink_id).iterator  # type: ignore[attr-defined]
    seen: list[str] = []
    calls = 0
    while calls < 40:
        calls += 1
        page = _get(svix, "big", sink_id, iterator=iterator)  # the default limit: 50
        assert len(page.data) <= 50  # type: ignore[attr-defined]
        seen += [e.payload for e in page.data]  # type: ignore[attr-defined]
        iterator = page.iterator  # type: ignore[attr-defined]
        if page.done:  # type: ignore[attr-defined]
            break
    assert seen == [str(i) for i in range(1000)] and calls == 20
    _get(svix, "big", sink_id, iterator=iterator)
    last = event_log.last_id(redis_client, stream)
    assert svix.streaming.sink.get("big", sink_id).current_iterator == last


def _position(iterator: str) -> str:
    import base64

    text = base64.urlsafe_b64decode(iterator + "=" * (-len(iterator) % 4)).decode()
    return text.partition(":")[2]


def test_after_starts_at_a_time(svix: Svix, redis_client: redis.Redis) -> None:
    svix.streaming.stream.create(StreamIn(name="t", uid="t"))
    _poller(svix, "t", uid="p")
    _post(svix, "t", [("a", "old")])
    time.sleep(0.01)
    middle = datetime.now(tz=UTC)
    time.sleep(0.01)
    _post(svix, "t", [("a", "new-1"), ("a", "new-2")])
    start = _get(svix, "t", "p", after=middle)
    assert start.data == [] and start.done is False  # type: ignore[attr-defined]
    page = _get(svix, "t", "p", iterator=start.iterator)  # type: ignore[attr-defined]
    assert [e.payload for e in page.data] == ["new-1", "new-2"] and page.done  # type: ignore[attr-defined]
    future = _get(svix, "t", "p", after=datetime(2999, 1, 1, tzinfo=UTC))
    assert future.done is True  # type: ignore[attr-defined]
    assert _get(svix, "t", "p", iterator=future.iterator).data == []  # type: ignore[attr-defined]


def test_foreign_or_bad_iterators_are_422(svix: Svix) -> None:
    svix.streaming.stream.create(StreamIn(name="a", uid="a"))
    svix.streaming.stream.create(StreamIn(name="b", uid="b"))
    mine = _poller(svix, "a", uid="mine")
    sibling = _poller(svix, "a", uid="sibling")
    elsewhere = _poller(svix, "b", uid="elsewhere")
    _post(svix, "a", [("x", "1")])
    _get(svix, "a", "mine", iterator=_get(svix, "a", "mine").iterator)  # type: ignore[attr-defined]
    acked = svix.streaming.sink.get("a", "mine").current_iterator
    assert acked == "0-0"  # created on an empty log, then acknowledged its start
    for other_stream, other in (("a", sibling), ("b", elsewhere)):
        _post(svix, other_stream, [("x", "2")])
        start = _get(svix, other_stream, other).iterator  # type: ignore[attr-defined]
        foreign = _get(svix, other_stream, other, iterator=start).iterator  # type: ignore[attr-defined]
        assert _position(foreign) != "0-0"
        with pytest.raises(HTTPValidationError) as err:
            _get(svix, "a", "mine", iterator=foreign)
        msg = err.value.detail[0].msg
        assert foreign in msg and other in msg and mine in msg
        assert err.value.detail[0].loc == ["query", "iterator"]
    for bad in ("nope", "0-0", "c2lua194OjEtMA"):  # garbage, a bare event id, "sink_x:1-0"
        with pytest.raises(HTTPValidationError) as err:
            _get(svix, "a", "mine", iterator=bad)
        assert bad in err.value.detail[0].msg
    for limit in (0, 251):
        with pytest.raises(HTTPValidationError) as err:
            _get(svix, "a", "mine", limit=limit)
        assert err.value.detail[0].loc == ["query", "limit"]
    assert svix.streaming.sink.get("a", "mine").current_iterator == acked  # unmoved


def test_iterator_past_the_end_is_422(svix: Svix, redis_client: redis.Redis) -> None:
    stream = svix.streaming.stream.create(StreamIn(name="e", uid="e")).id
    sink_id = _poller(svix, "e", uid="p")
    _post(svix, "e", [("x", "1")])
    last = event_log.last_id(redis_client, stream)
    ms = int(last.split("-")[0]) + 60_000
    import base64

    forged = base64.urlsafe_b64encode(f"{sink_id}:{ms}-0".encode()).decode().rstrip("=")
    with pytest.raises(HTTPValidationError) as err:
        _get(svix, "e", "p", iterator=forged)
    assert "past the end" in err.value.detail[0].msg
    assert svix.streaming.sink.get("e", "p").current_iterator != f"{ms}-0"


def test_disabled_poller_is_409_and_config_keys_are_422(svix: Svix) -> None:
    svix.streaming.stream.create(StreamIn(name="d", uid="d"))
    _poller(svix, "d", uid="p")
    svix.streaming.sink.patch(
        "d", "p", StreamSinkPatch(type="poller", config={}, status=SinkStatusIn.DISABLED)
    )
    with pytest.raises(HttpError) as err:
        _get(svix, "d", "p")
    assert err.value.status_code == 409 and "disabled" in err.value.detail
    svix.streaming.sink.patch(
        "d", "p", StreamSinkPatch(type="poller", config={}, status=SinkStatusIn.ENABLED)
    )
    assert _get(svix, "d", "p").data == []  # type: ignore[attr-defined]
    with pytest.raises(HTTPValidationError) as verr:
        svix.streaming.sink.create(
            "d", StreamSinkIn(type="poller", config={"url": "https://x.example.com"})
        )
    assert verr.value.detail[0].loc == ["body", "config"]
    assert "url" in verr.value.detail[0].msg
    with pytest.raises(HTTPValidationError) as verr:  # PATCH cannot change the type
        svix.streaming.sink.patch("d", "p", StreamSinkPatch(type="otelTracing", config={}))
    assert verr.value.detail[0].loc == ["body", "type"]


def test_poller_sinks_are_never_kicked(client: TestClient, redis_client: redis.Redis) -> None:
    """Appends (fast lane and route), edits, skip and force-retry queue no job
    for a poller sink; an ``otelTracing`` sink beside it is kicked as usual."""
    client.post("/api/v1/stream", json={"name": "k", "uid": "k"})
    base = "/api/v1/stream/k/sink"
    poller = client.post(base, json={"type": "poller", "config": {}}).json()["id"]
    otel = client.post(base, json=sink_body()).json()["id"]
    queued = lambda: sum(Queue(n, connection=redis_client).count for n in QUEUE_NAMES)  # noqa: E731

    for path in ("/api/v1/stream/k/events", "/api/v1/stream/k/events?lane=route"):
        redis_client.delete(f"ss:kick:{otel}")
        before = queued()
        r = client.post(path, json={"events": [{"eventType": "a", "payload": "x"}]})
        assert r.status_code == 202
        assert redis_client.exists(f"ss:kick:{otel}") and queued() == before + 1
        assert not redis_client.exists(f"ss:kick:{poller}")

    before = queued()
    assert client.patch(f"{base}/{poller}", json={"batchSize": 5}).status_code == 200
    r = client.put(f"{base}/{poller}", json={"type": "poller", "config": {}, "batchSize": 7})
    assert r.status_code == 200 and r.json()["batchSize"] == 7 and r.json()["config"] == {}
    skip = client.post(f"{base}/{poller}/skip", params={"iterator": "0-0"})
    assert skip.status_code == 202 and skip.json()["currentIterator"] == "0-0"
    retry = client.post(f"{base}/{poller}/force-retry")
    assert retry.status_code == 409 and "poller" in retry.json()["detail"]
    assert queued() == before and not redis_client.exists(f"ss:kick:{poller}")


def test_put_switches_between_types(client: TestClient, redis_client: redis.Redis) -> None:
    client.post("/api/v1/stream", json={"name": "w", "uid": "w"})
    base = "/api/v1/stream/w/sink"
    made = client.post(base, json={"type": "poller", "uid": "s"}).json()  # config may be left out
    assert made["type"] == "poller" and made["config"] == {}
    otel = client.put(f"{base}/s", json=sink_body()).json()
    assert otel["id"] == made["id"] and otel["type"] == "otelTracing"
    assert otel["config"]["url"] == sink_body()["config"]["url"]
    back = client.put(f"{base}/s", json={"type": "poller", "config": {}}).json()
    assert back["type"] == "poller" and back["config"] == {}
    assert back["currentIterator"] == made["currentIterator"]
    r = client.patch(f"{base}/s", json={"config": {"url": "https://x.example.com"}})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "config"]

    # a retrying sink turned poller is enabled: no worker would ever retry it
    client.put(f"{base}/s", json=sink_body())
    state = {"status": "retrying", "failure_reason": "HTTP 503", "next_retry_at": 4_000_000_000_000}
    store_sinks.update_sink_state(redis_client, made["id"], **state)  # type: ignore[arg-type]
    out = client.put(f"{base}/s", json={"type": "poller", "config": {}}).json()
    assert out["status"] == "enabled" and out["failureReason"] is None
    assert out["nextRetryAt"] is None


def test_plain_http_reads_of_a_poller_sink(server_url: str, svix: Svix) -> None:
    """The wire: camelCase fields, iterator in the query, and the token required."""
    svix.streaming.stream.create(StreamIn(name="h", uid="h"))
    _poller(svix, "h", uid="p")
    _post(svix, "h", [("a", '{"n": 1}')])
    with httpx.Client(base_url=server_url, headers=AUTH) as http:
        start = http.get("/api/v1/stream/h/sink/p/events").json()
        assert start["data"] == [] and start["done"] is False
        page = http.get("/api/v1/stream/h/sink/p/events", params={"iterator": start["iterator"]})
        body = page.json()
        assert page.status_code == 200 and body["done"] is True
        assert body["data"][0]["eventType"] == "a" and body["data"][0]["payload"] == '{"n": 1}'
        assert (
            body["data"][0]["timestamp"].endswith("Z") or "+00:00" in body["data"][0]["timestamp"]
        )
    with httpx.Client(base_url=server_url) as http:
        assert http.get("/api/v1/stream/h/sink/p/events").status_code == 401
