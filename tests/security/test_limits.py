"""Every API limit is a setting and answers a clear 413/422 naming it."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from .conftest import SINK_URL, new_sink, new_stream

HANDLER = "function handler(input) { return {spans: []}; }"


def _msg(r) -> str:  # type: ignore[no-untyped-def]
    assert r.status_code == 422, r.text
    return r.json()["detail"][0]["msg"]


def test_body_size(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_body_bytes=2048)
    stream = new_stream(client)
    big = {"events": [{"eventType": "e", "payload": "x" * 4096}]}
    r = client.post(f"/api/v1/stream/{stream}/events", json=big)
    assert r.status_code == 413
    assert r.json()["code"] == "payload_too_large"
    assert "2048 bytes" in r.json()["detail"]
    assert "STREAMSINK_MAX_BODY_BYTES" in r.json()["detail"]
    # Sent without Content-Length (chunked): the same answer once read.
    chunks = iter([b'{"events": [{"eventType": "e", "payload": "', b"x" * 4096, b'"}]}'])
    r = client.post(f"/api/v1/stream/{stream}/events", content=chunks)
    assert r.status_code == 413 and "STREAMSINK_MAX_BODY_BYTES" in r.json()["detail"]


def test_events_per_request(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_events_per_request=3)
    stream = new_stream(client)
    events = [{"eventType": "e", "payload": "{}"}] * 4
    r = client.post(f"/api/v1/stream/{stream}/events", json={"events": events})
    assert "at most 3" in _msg(r) and "STREAMSINK_MAX_EVENTS_PER_REQUEST" in _msg(r)
    route = client.post(f"/api/v1/stream/{stream}/events?lane=route", json={"events": events})
    assert route.json() == r.json()
    r = client.post(f"/api/v1/stream/{stream}/events", json={"events": events[:3]})
    assert r.status_code == 202


def test_code_size(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_code_bytes=100)
    stream = new_stream(client)
    sink = new_sink(client, stream)
    path = f"/api/v1/stream/{stream}/sink/{sink['id']}/transformation"
    big = HANDLER + " " * 100
    assert "STREAMSINK_MAX_CODE_BYTES" in _msg(client.patch(path, json={"code": big}))
    assert client.patch(path, json={"code": HANDLER}).status_code == 200
    sim = {"code": big, "events": [{"eventType": "e", "payload": "{}"}]}
    r = client.post("/api/v1/stream/transformations/simulate", json=sim)
    assert "STREAMSINK_MAX_CODE_BYTES" in _msg(r)


def test_headers_per_sink(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_headers_per_sink=2)
    stream = new_stream(client)
    three = {"X-A": "1", "X-B": "2", "X-C": "3"}
    body = {"type": "otelTracing", "config": {"url": SINK_URL, "headers": three}}
    r = client.post(f"/api/v1/stream/{stream}/sink", json=body)
    assert "STREAMSINK_MAX_HEADERS_PER_SINK" in _msg(r)
    sink = new_sink(client, stream, config={"url": SINK_URL, "headers": {"X-A": "1"}})
    path = f"/api/v1/stream/{stream}/sink/{sink['id']}"
    assert client.patch(f"{path}/headers", json={"headers": {"X-B": "2"}}).status_code == 200
    # A merge past the limit is refused; deleting one makes room.
    assert "at most 2" in _msg(client.patch(f"{path}/headers", json={"headers": {"X-C": "3"}}))
    r = client.patch(f"{path}/headers", json={"headers": {"X-A": None, "X-C": "3"}})
    assert r.status_code == 200 and set(r.json()["headers"]) == {"X-B", "X-C"}
    r = client.patch(path, json={"config": {"headers": three}})
    assert "at most 2" in _msg(r)
    r = client.put(path, json=body)
    assert "at most 2" in _msg(r)


def test_sinks_per_stream(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_sinks_per_stream=2)
    stream = new_stream(client)
    first = new_sink(client, stream)
    new_sink(client, stream, uid="second")
    body = {"type": "otelTracing", "config": {"url": SINK_URL}}
    r = client.post(f"/api/v1/stream/{stream}/sink", json=body)
    assert "STREAMSINK_MAX_SINKS_PER_STREAM" in _msg(r)
    assert "STREAMSINK_MAX_SINKS_PER_STREAM" in _msg(
        client.put(f"/api/v1/stream/{stream}/sink/third", json=body)
    )
    # Replacing an existing sink is not a new one.
    assert client.put(f"/api/v1/stream/{stream}/sink/second", json=body).status_code == 200
    assert client.put(f"/api/v1/stream/{stream}/sink/{first['id']}", json=body).status_code == 200
    # Another stream has its own room.
    other = new_stream(client, "other")
    new_sink(client, other)
    assert client.delete(f"/api/v1/stream/{stream}/sink/{first['id']}").status_code == 204
    new_sink(client, stream)


def test_model_ceilings_name_the_setting(make_client: Callable[..., TestClient]) -> None:
    """Past the hard ceilings of the wire models (1024 headers, 1 MiB of code),
    the message still names the setting that bounds them."""
    client = make_client(max_body_bytes=4 * 1024 * 1024)
    stream = new_stream(client)
    many = {f"X-H{i}": "v" for i in range(1025)}
    body = {"type": "otelTracing", "config": {"url": SINK_URL, "headers": many}}
    r = client.post(f"/api/v1/stream/{stream}/sink", json=body)
    assert "STREAMSINK_MAX_HEADERS_PER_SINK" in _msg(r)
    sink = new_sink(client, stream)
    path = f"/api/v1/stream/{stream}/sink/{sink['id']}"
    assert "STREAMSINK_MAX_HEADERS_PER_SINK" in _msg(
        client.patch(f"{path}/headers", json={"headers": many})
    )
    huge = HANDLER + " " * (1024 * 1024)
    r = client.patch(f"{path}/transformation", json={"code": huge})
    assert "STREAMSINK_MAX_CODE_BYTES" in _msg(r)
