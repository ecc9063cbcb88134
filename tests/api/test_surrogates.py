"""Lone UTF-16 surrogates (JSON ``"\\udfff"``, a key ``"\\ud800"``) anywhere in a
body are a 422 naming the field, never a 500, on every write (POST, PUT, PATCH)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from streamsink.api.text import has_surrogate, surrogate_error

from .util import sink_body

JSON = {"content-type": "application/json"}
#: JSON texts of values holding a lone surrogate, with where the message points.
BAD_OBJECTS = [
    ('{"a": "\\udfff"}', '["a"]'),
    ('{"\\ud800": "v"}', "key"),
    ('{"ok": "x", "b": "\\ud83d"}', '["b"]'),  # a high surrogate with no low one
]


def _send(client: TestClient, method: str, path: str, text: str) -> Any:
    """Send JSON text as is (``json=`` could not carry a lone surrogate)."""
    return client.request(method, path, content=text.encode(), headers=JSON)


def _assert_422(r: Any, loc: list[Any], where: str | None = None) -> None:
    assert r.status_code == 422, r.text
    error = r.json()["detail"][0]
    assert error["loc"] == loc, error
    if where is not None:
        assert "surrogate" in error["msg"] and where in error["msg"], error


@pytest.mark.parametrize(("obj", "where"), BAD_OBJECTS)
def test_stream_metadata(client: TestClient, stream: dict[str, Any], obj: str, where: str) -> None:
    body = f'{{"name": "n", "metadata": {obj}}}'
    _assert_422(_send(client, "POST", "/api/v1/stream", body), ["body", "metadata"], where)
    _assert_422(_send(client, "PUT", "/api/v1/stream/other", body), ["body", "metadata"], where)
    path = f"/api/v1/stream/{stream['id']}"
    _assert_422(_send(client, "PUT", path, body), ["body", "metadata"], where)
    patch = f'{{"metadata": {obj}}}'
    _assert_422(_send(client, "PATCH", path, patch), ["body", "metadata"], where)
    assert client.get(path).json()["metadata"] == {}
    assert client.get("/api/v1/stream/other").status_code == 404


@pytest.mark.parametrize(("obj", "where"), BAD_OBJECTS)
def test_sink_metadata(
    client: TestClient, stream: dict[str, Any], sink: dict[str, Any], obj: str, where: str
) -> None:
    base = f"/api/v1/stream/{stream['id']}/sink"
    body = '{"type": "otelTracing", "config": {"url": "https://c.example.com/v1/traces"}, '
    body += f'"metadata": {obj}}}'
    _assert_422(_send(client, "POST", base, body), ["body", "metadata"], where)
    _assert_422(_send(client, "PUT", f"{base}/{sink['id']}", body), ["body", "metadata"], where)
    _assert_422(_send(client, "PUT", f"{base}/new-one", body), ["body", "metadata"], where)
    patch = f'{{"metadata": {obj}}}'
    _assert_422(_send(client, "PATCH", f"{base}/{sink['id']}", patch), ["body", "metadata"], where)
    assert [s["id"] for s in client.get(base).json()["data"]] == [sink["id"]]


def test_sink_header_values_and_names(
    client: TestClient, stream: dict[str, Any], sink: dict[str, Any]
) -> None:
    base = f"/api/v1/stream/{stream['id']}/sink/{sink['id']}"
    r = _send(client, "PATCH", f"{base}/headers", '{"headers": {"X-A": "\\udfff"}}')
    _assert_422(r, ["body", "headers"], '["X-A"]')
    r = _send(client, "PATCH", f"{base}/headers", '{"headers": {"X-\\udfff": "v"}}')
    assert r.status_code == 422, r.text
    r = _send(client, "PATCH", base, '{"config": {"headers": {"X-A": "\\udfff"}}}')
    _assert_422(r, ["body", "config", "headers"], '["X-A"]')


def test_event_type_description_and_names(client: TestClient) -> None:
    base = "/api/v1/stream/event-type"
    body = '{"name": "order.created", "description": "\\udfff"}'
    _assert_422(_send(client, "POST", base, body), ["body", "description"], "")
    _assert_422(_send(client, "PUT", f"{base}/order.created", body), ["body", "description"], "")
    assert client.post(base, json={"name": "order.created"}).status_code == 201
    patch = '{"description": "ok \\ud800 then"}'
    _assert_422(_send(client, "PATCH", f"{base}/order.created", patch), ["body", "description"])
    r = _send(client, "POST", base, '{"name": "a\\udfff"}')
    _assert_422(r, ["body", "name"])
    r = _send(client, "PATCH", f"{base}/order.created", '{"featureFlags": ["\\udfff"]}')
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][:2] == ["body", "featureFlags"]
    assert client.get(f"{base}/order.created").json()["description"] is None


def test_names_and_uids(client: TestClient, stream: dict[str, Any]) -> None:
    for body in ('{"name": "\\udfff"}', '{"name": "n", "uid": "\\udfff"}'):
        assert _send(client, "POST", "/api/v1/stream", body).status_code == 422
    path = f"/api/v1/stream/{stream['id']}"
    _assert_422(_send(client, "PATCH", path, '{"description": "\\udfff"}'), ["body", "description"])
    assert client.get(path).json()["name"] == "orders"


@pytest.mark.parametrize(("obj", "where"), BAD_OBJECTS)
def test_simulate_payload_object(client: TestClient, obj: str, where: str) -> None:
    body = f'{{"events": [{{"eventType": "e", "payload": {obj}}}]}}'
    r = _send(client, "POST", "/api/v1/stream/transformations/simulate", body)
    _assert_422(r, ["body", "events", 0, "payload"], where)


@pytest.mark.parametrize(
    ("event", "loc", "where"),
    [
        ('{"eventType": "e", "payload": {"a": "\\udfff"}}', "payload", '["a"]'),
        ('{"eventType": "e", "payload": {"\\ud800": 1}}', "payload", "key"),
        ('{"eventType": "e", "payload": ["ok", "\\udfff"]}', "payload", "[1]"),
        ('{"eventType": "e", "payload": "\\udfff"}', "payload", ""),
        ('{"eventType": "e\\udfff", "payload": "p"}', "eventType", None),
    ],
)
def test_events_both_lanes_answer_the_same_422(
    client: TestClient, stream: dict[str, Any], event: str, loc: str, where: str | None
) -> None:
    body = f'{{"events": [{{"eventType": "ok", "payload": "p"}}, {event}]}}'
    fast = _send(client, "POST", "/api/v1/stream/orders/events", body)
    route = _send(client, "POST", "/api/v1/stream/orders/events?lane=route", body)
    _assert_422(fast, ["body", "events", 1, loc], where)
    assert route.status_code == 422 and route.json() == fast.json()
    latest = client.get("/api/v1/stream/orders/events/latest").json()
    assert latest["data"] == []  # nothing written (all or none)


def test_events_with_invalid_json_stay_json_invalid(client: TestClient, stream: Any) -> None:
    """The stdlib second parse is for surrogates only: NaN stays refused."""
    body = '{"events": [{"eventType": "e", "payload": {"a": NaN, "b": "\\udfff"}}]}'
    for path in ("/api/v1/stream/orders/events", "/api/v1/stream/orders/events?x=1"):
        r = _send(client, "POST", path, body)
        assert r.status_code == 422 and r.json()["detail"][0]["type"] == "json_invalid"


def test_surrogate_error_unit() -> None:
    assert not has_surrogate("plain é 😀") and has_surrogate("a\udfff")
    assert surrogate_error({"a": ["x", {"b": "ok"}]}) is None
    assert surrogate_error("\ud800") == "lone surrogate \\ud800 is not valid Unicode text"
    message = surrogate_error({"a": ["x", {"b": "\udfff"}]})
    assert message is not None and '["a"][1]["b"]' in message
    deep: Any = "\udfff"
    for _ in range(600):  # past orjson's depth: the walk is iterative
        deep = [deep]
    message = surrogate_error({"d": deep})
    assert message is not None and message.count("[0]") == 600


def test_valid_text_is_unchanged(client: TestClient) -> None:
    r = client.post("/api/v1/stream", json={"name": "😀", "metadata": {"é": "\u2028 😀"}})
    assert r.status_code == 201 and r.json()["metadata"] == {"é": "\u2028 😀"}
    sink = client.post(f"/api/v1/stream/{r.json()['id']}/sink", json=sink_body(metadata={"k": "ü"}))
    assert sink.status_code == 201 and sink.json()["metadata"] == {"k": "ü"}
