"""``http`` sinks through the official svix SDK against a real uvicorn server on
127.0.0.1: create, secrets (get, rotate), redaction, bad keys; then a delivery
by the real engine to a receiver that verifies with ``svix.webhooks.Webhook``."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import redis
from svix.api import (
    CreateStreamEventsIn,
    EndpointSecretRotateIn,
    EventIn,
    SinkHttpConfigIn,
    SinkHttpConfigPatch,
    StreamIn,
    StreamSinkIn,
    StreamSinkPatch,
    Svix,
)
from svix.exceptions import HttpError, HTTPValidationError
from svix.webhooks import Webhook, WebhookVerificationError

from streamsink.delivery import job as delivery
from streamsink.delivery.engine import Engine
from streamsink.settings import Settings
from tests.helpers.receiver_server import ReceiverServer, Recorded
from tests.helpers.sdk_server import sdk, serve_api

from .util import TOKEN

KEY = "whsec_" + "c2VjcmV0LWJ5dGVzLWZvci10ZXN0aW5nLTEyMzQ1Ng=="  # 32 bytes


@pytest.fixture
def server_url(redis_client: redis.Redis) -> Iterator[str]:
    """A real uvicorn server on 127.0.0.1 (free port) in a background thread."""
    with serve_api(Settings(auth_token=TOKEN), redis_client) as url:
        yield url


@pytest.fixture
def svix(server_url: str) -> Svix:
    return sdk(server_url, TOKEN)


@pytest.fixture
def receiver() -> Iterator[ReceiverServer]:
    with ReceiverServer() as server:
        yield server


def _stream(svix: Svix) -> str:
    return svix.streaming.stream.create(StreamIn(name="hooks")).id


def _deliver(redis_client: redis.Redis, stream_id: str, sink_id: str) -> None:
    engine = Engine(redis_client, Settings(retry_schedule="0"))
    try:
        delivery.process_sink(engine, stream_id, sink_id)
    finally:
        engine.close()


def _verify(key: str, req: Recorded) -> None:
    Webhook(key).verify(req.body, req.headers)


def test_sdk_creates_an_http_sink_and_its_requests_verify(
    svix: Svix, redis_client: redis.Redis, receiver: ReceiverServer
) -> None:
    stream_id = _stream(svix)
    config = SinkHttpConfigIn(url=f"{receiver.url}/in", headers={"Authorization": "Bearer x"})
    sink = svix.streaming.sink.create(stream_id, StreamSinkIn(type="http", config=config))
    assert sink.type == "http"
    assert sink.config.url == f"{receiver.url}/in"  # type: ignore[union-attr]
    assert sink.config.headers.headers == {"Authorization": "************"}  # type: ignore[union-attr]
    key = svix.streaming.sink.get_secret(stream_id, sink.id).key
    assert key is not None and key.startswith("whsec_")
    events = [EventIn(event_type="order.paid", payload='{"total": 12}')]
    svix.streaming.events.create(stream_id, CreateStreamEventsIn(events=events))
    _deliver(redis_client, stream_id, sink.id)
    [req] = receiver.requests
    _verify(key, req)
    assert req.headers["authorization"] == "Bearer x"
    assert httpx.Response(200, content=req.body).json() == [
        {"eventType": "order.paid", "payload": {"total": 12}}
    ]
    with pytest.raises(WebhookVerificationError):
        _verify("whsec_" + "QUJD" * 8, req)


def test_given_key_is_used_and_never_shown_but_by_get_secret(
    svix: Svix, server_url: str, redis_client: redis.Redis, receiver: ReceiverServer
) -> None:
    stream_id = _stream(svix)
    config = SinkHttpConfigIn(url=receiver.url, key=KEY)
    sink = svix.streaming.sink.create(stream_id, StreamSinkIn(type="http", config=config))
    assert svix.streaming.sink.get_secret(stream_id, sink.id).key == KEY
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=server_url, headers=auth) as http:
        for path in (f"/stream/{stream_id}/sink", f"/stream/{stream_id}/sink/{sink.id}"):
            text = http.get(f"/api/v1{path}").text
            assert KEY not in text and KEY[6:20] not in text
    # a PATCH (the SDK's) or a PUT without a key keep the secret
    patch = StreamSinkPatch(type="http", batch_size=5, config=SinkHttpConfigPatch(url=receiver.url))
    assert svix.streaming.sink.patch(stream_id, sink.id, patch).batch_size == 5
    again = StreamSinkIn(type="http", config=SinkHttpConfigIn(url=receiver.url))
    svix.streaming.sink.upsert(stream_id, sink.id, again)
    assert svix.streaming.sink.get_secret(stream_id, sink.id).key == KEY
    svix.streaming.events.create(
        stream_id, CreateStreamEventsIn(events=[EventIn(event_type="e", payload="{}")])
    )
    _deliver(redis_client, stream_id, sink.id)
    [req] = receiver.requests
    _verify(KEY, req)


def test_rotate_secret_through_the_sdk_old_and_new_both_verify(
    svix: Svix, redis_client: redis.Redis, receiver: ReceiverServer
) -> None:
    stream_id = _stream(svix)
    sink = svix.streaming.sink.create(
        stream_id, StreamSinkIn(type="http", config=SinkHttpConfigIn(url=receiver.url))
    )
    old = svix.streaming.sink.get_secret(stream_id, sink.id).key
    rotated = svix.streaming.sink.rotate_secret(stream_id, sink.id, EndpointSecretRotateIn())
    new = svix.streaming.sink.get_secret(stream_id, sink.id).key
    assert rotated.key == new and new != old and old and new
    svix.streaming.events.create(
        stream_id, CreateStreamEventsIn(events=[EventIn(event_type="e", payload="{}")])
    )
    _deliver(redis_client, stream_id, sink.id)
    [req] = receiver.requests
    _verify(old, req)
    _verify(new, req)
    # a given key, no grace: only it signs from now on
    svix.streaming.sink.rotate_secret(
        stream_id, sink.id, EndpointSecretRotateIn(key=KEY, grace_period_seconds=0)
    )
    assert svix.streaming.sink.get_secret(stream_id, sink.id).key == KEY
    svix.streaming.events.create(
        stream_id, CreateStreamEventsIn(events=[EventIn(event_type="e", payload="{}")])
    )
    _deliver(redis_client, stream_id, sink.id)
    last = receiver.requests[-1]
    _verify(KEY, last)
    with pytest.raises(WebhookVerificationError):
        _verify(new, last)


@pytest.mark.parametrize(
    ("key", "says"),
    [
        ("c2VjcmV0LWJ5dGVzLWZvci10ZXN0aW5nLTEyMzQ1Ng==", "must start with 'whsec_'"),
        ("whsec_not base64!", "not valid base64"),
        ("whsec_QUJD", "3 bytes; it must be 24 to 64 bytes"),
        ("whsec_" + "QUJD" * 30, "90 bytes; it must be 24 to 64 bytes"),
    ],
)
def test_bad_key_is_422_naming_config_key(
    svix: Svix, receiver: ReceiverServer, key: str, says: str
) -> None:
    stream_id = _stream(svix)
    config = SinkHttpConfigIn(url=receiver.url, key=key)
    with pytest.raises(HTTPValidationError) as caught:
        svix.streaming.sink.create(stream_id, StreamSinkIn(type="http", config=config))
    [error] = caught.value.detail
    assert error.loc == ["body", "config", "key"]
    assert says in error.msg
    with pytest.raises(HTTPValidationError):
        sink = svix.streaming.sink.create(
            stream_id, StreamSinkIn(type="http", config=SinkHttpConfigIn(url=receiver.url))
        )
        svix.streaming.sink.rotate_secret(stream_id, sink.id, EndpointSecretRotateIn(key=key))


def test_http_config_refuses_otel_keys_and_otel_sinks_have_no_secret(
    svix: Svix, server_url: str, receiver: ReceiverServer
) -> None:
    stream_id = _stream(svix)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=server_url, headers=auth) as http:
        body = {"type": "http", "config": {"url": receiver.url, "encoding": "json"}}
        r = http.post(f"/api/v1/stream/{stream_id}/sink", json=body)
        assert r.status_code == 422 and "unknown key 'encoding'" in r.text
        body = {"type": "http", "config": {"url": "http://169.254.169.254/latest"}}
        r = http.post(f"/api/v1/stream/{stream_id}/sink", json=body)
        assert r.status_code == 422 and "url not allowed" in r.text
        otel = {"type": "otelTracing", "config": {"url": receiver.url}}
        sink = http.post(f"/api/v1/stream/{stream_id}/sink", json=otel).json()
    with pytest.raises(HttpError) as caught:
        svix.streaming.sink.get_secret(stream_id, sink["id"])
    assert caught.value.status_code == 400 and caught.value.code == "not_http_sink"
    with pytest.raises(HttpError) as missing:
        svix.streaming.sink.get_secret(stream_id, "no-such-sink")
    assert missing.value.status_code == 404


def test_rotate_answers_the_new_key(svix: Svix, server_url: str, receiver: ReceiverServer) -> None:
    stream_id = _stream(svix)
    sink = svix.streaming.sink.create(
        stream_id, StreamSinkIn(type="http", config=SinkHttpConfigIn(url=receiver.url))
    )
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=server_url, headers=auth) as http:
        path = f"/api/v1/stream/{stream_id}/sink/{sink.id}/secret"
        r = http.post(f"{path}/rotate")  # no body at all
        assert r.status_code == 200, r.text
        assert r.json() == http.get(path).json()
        r = http.post(f"{path}/rotate", json={"gracePeriodSeconds": 8 * 86400})
        assert r.status_code == 422


def test_simulate_an_http_sink(server_url: str) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    path = "/api/v1/stream/transformations/simulate"
    events = [{"eventType": "a", "payload": '{"n": 1}'}]
    with httpx.Client(base_url=server_url, headers=auth) as http:
        r = http.post(path, json={"type": "http", "events": events, "url": "https://h.example/in"})
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["output"] == {
            "config": {"format": "json"},
            "data": [{"eventType": "a", "payload": {"n": 1}}],
        }
        assert answer["http"] == {
            "method": "POST",
            "url": "https://h.example/in",
            "format": "json",
            "contentType": "application/json",
            "headers": {},
            "body": '[{"eventType":"a","payload":{"n":1}}]',
        }
        raw = 'function handler(i) { return {config: {format: "raw"}, data: i.events}; }'
        r = http.post(path, json={"type": "http", "code": raw, "events": events})
        assert r.status_code == 400 and 'data: format \\"raw\\" sends a string' in r.text
        # otelTracing answers are as before
        r = http.post(path, json={"events": events})
        assert r.status_code == 200 and r.json()["otlp"]["resourceSpans"]


def test_put_with_a_key_replaces_the_secret_and_a_type_change_gets_one(
    svix: Svix, server_url: str, receiver: ReceiverServer
) -> None:
    stream_id = _stream(svix)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=server_url, headers=auth) as http:
        base = f"/api/v1/stream/{stream_id}/sink"
        body = {"type": "http", "config": {"url": receiver.url}}
        r = http.put(f"{base}/hook", json={**body, "config": {**body["config"], "key": KEY}})
        assert r.status_code == 201 and KEY not in r.text
        assert http.get(f"{base}/hook/secret").json() == {"key": KEY}
        otel = http.put(f"{base}/traces", json={"type": "otelTracing", "config": body["config"]})
        assert otel.status_code == 201
        assert http.get(f"{base}/traces/secret").status_code == 400
        assert http.put(f"{base}/traces", json=body).status_code == 200  # now an http sink
        made = http.get(f"{base}/traces/secret").json()["key"]
        assert made.startswith("whsec_") and made == http.get(f"{base}/traces/secret").json()["key"]


def test_patching_an_otel_setting_on_an_http_sink_is_422(
    svix: Svix, server_url: str, receiver: ReceiverServer
) -> None:
    stream_id = _stream(svix)
    sink = svix.streaming.sink.create(
        stream_id, StreamSinkIn(type="http", config=SinkHttpConfigIn(url=receiver.url))
    )
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=server_url, headers=auth) as http:
        path = f"/api/v1/stream/{stream_id}/sink/{sink.id}"
        r = http.patch(path, json={"config": {"encoding": "protobuf"}})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == [
            "body",
            "config",
            "encoding",
        ]
        r = http.patch(path, json={"config": {"url": f"{receiver.url}/new"}})
        assert r.status_code == 200 and r.json()["config"] == {
            "url": f"{receiver.url}/new",
            "headers": {"headers": {}, "sensitive": []},
        }
