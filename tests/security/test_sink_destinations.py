"""Sink URLs at the API: metadata and link-local refused always, private
addresses refused when STREAMSINK_BLOCK_PRIVATE_DESTINATIONS is set, in every
notation, on create, replace and patch (422 naming the URL and why); a name
that resolves to a refused address is refused at delivery, by a real
delivery loop, without a connection."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from streamsink.api.app import create_app
from streamsink.delivery import job as delivery
from streamsink.delivery.engine import Engine
from streamsink.settings import Settings
from tests.helpers.receiver_server import ReceiverServer

from .test_netguard import connects, fake_resolver  # noqa: F401 - a fixture

AUTH = {"Authorization": "Bearer tok"}


def _client(redis_client: redis.Redis, **settings: object) -> TestClient:
    app = create_app(Settings(auth_token="tok", **settings), redis_client)
    return TestClient(app, headers=AUTH, raise_server_exceptions=False)


@pytest.fixture
def open_api(redis_client: redis.Redis) -> Iterator[TestClient]:
    with _client(redis_client) as client:
        assert client.post("/api/v1/stream", json={"name": "s", "uid": "s"}).status_code == 201
        yield client


@pytest.fixture
def closed_api(redis_client: redis.Redis) -> Iterator[TestClient]:
    with _client(redis_client, block_private_destinations=True) as client:
        assert client.post("/api/v1/stream", json={"name": "s", "uid": "s"}).status_code == 201
        yield client


def _sink(url: str) -> dict[str, object]:
    return {"type": "otelTracing", "config": {"url": url}}


def _refused_everywhere(api: TestClient, url: str, why: str) -> None:
    """POST, PUT and PATCH with ``url`` are each a 422 on ``config.url`` naming
    the URL and ``why``, and the sink saved before keeps its URL."""
    ok = api.post("/api/v1/stream/s/sink", json=_sink("https://otel.example.com/v1/traces"))
    assert ok.status_code == 201, ok.text
    base = f"/api/v1/stream/s/sink/{ok.json()['id']}"
    answers = [
        api.post("/api/v1/stream/s/sink", json=_sink(url)),
        api.put(base, json=_sink(url)),
        api.put("/api/v1/stream/s/sink/new-uid", json=_sink(url)),
        api.patch(base, json=_sink(url)),
    ]
    for r in answers:
        assert r.status_code == 422, (r.request.method, r.text)
        error = r.json()["detail"][0]
        assert error["loc"][-1] == "url", error
        assert why in error["msg"] and repr(url) in error["msg"], error["msg"]
    assert api.get(base).json()["config"]["url"] == "https://otel.example.com/v1/traces"
    assert len(api.get("/api/v1/stream/s/sink").json()["data"]) == 1


ALWAYS_REFUSED = [
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[fd00:ec2::254]/v1/traces", "AWS metadata"),
    ("http://metadata.google.internal/computeMetadata/v1/", "metadata service"),
    ("http://metadata./computeMetadata/v1/", "metadata service"),
    ("http://instance-data/latest/", "metadata service"),
    ("ftp://collector.example.com/v1/traces", "http://"),
    ("http://168.63.129.16/machine", "Azure WireServer"),
    ("http://100.100.100.200/latest/meta-data/", "Alibaba"),
    ("http://2852039166/latest/meta-data/", "169.254.169.254"),
    ("http://0xa9fea9fe/", "169.254.169.254"),
    ("http://0251.0376.0251.0376/", "169.254.169.254"),
    ("http://169.254.43518/", "169.254.169.254"),
    ("http://169.0xfe.43518/", "169.254.169.254"),
    ("http://169\u3002254\u3002169\u3002254/", "169.254.169.254"),
    ("http://169\uff0e254\uff0e169\uff0e254/", "169.254.169.254"),
    ("http://169.254.169.254./", "169.254.169.254"),
    ("http://0:4318/v1/traces", "0.0.0.0"),
    ("http://0.0.0.0:4318/v1/traces", "unspecified"),
    ("http://[::]:4318/v1/traces", "unspecified"),
    ("http://[64:ff9b::a9fe:a9fe]/", "NAT64"),
    ("http://[64:ff9b:1::a9fe:a9fe]/", "NAT64"),
    ("http://[::a9fe:a9fe]/", "IPv4-compatible"),
    ("http://[2002:a9fe:a9fe::1]/", "6to4"),
    ("http://[::ffff:0:a9fe:a9fe]/", "IPv4-translated"),
    ("http://[::ffff:a9fe:a9fe]/", "IPv4-mapped"),
    ("http://[2001:0:4136:e378:8000:63bf:5601:5601]/", "Teredo"),
    ("http://[fe80::1%25eth0]/", "link-local"),
    ("http://1.2.3.256/", "not an IPv4 address"),
]


@pytest.mark.parametrize(("url", "why"), ALWAYS_REFUSED)
def test_always_refused(open_api: TestClient, url: str, why: str) -> None:
    _refused_everywhere(open_api, url, why)


@pytest.mark.parametrize(("url", "why"), ALWAYS_REFUSED[:3] + ALWAYS_REFUSED[8:12])
def test_always_refused_with_private_blocked(closed_api: TestClient, url: str, why: str) -> None:
    _refused_everywhere(closed_api, url, why)


PRIVATE = [
    "http://10.0.0.7:4318/v1/traces",
    "http://127.0.0.1:4318/v1/traces",
    "http://[::1]:4318/",
    "http://192.168.1.2/v1/traces",
    "http://2130706433:4318/v1/traces",
    "http://0x7f.1:4318/v1/traces",
    "http://012.0.0.7:4318/v1/traces",
    "http://10\u30020\u30020\u30027/v1/traces",
    "http://[::ffff:10.0.0.7]/v1/traces",
    "http://[64:ff9b::a00:7]/v1/traces",
    "http://[2002:a00:7::1]/v1/traces",
]


@pytest.mark.parametrize("url", PRIVATE)
def test_private_allowed_by_default(open_api: TestClient, url: str) -> None:
    r = open_api.post("/api/v1/stream/s/sink", json=_sink(url))
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("url", PRIVATE)
def test_private_refused_when_blocked(closed_api: TestClient, url: str) -> None:
    _refused_everywhere(closed_api, url, "STREAMSINK_BLOCK_PRIVATE_DESTINATIONS")


# --- at delivery ---------------------------------------------------------------------


def _deliver_one(
    redis_client: redis.Redis, api: TestClient, url: str, **settings: Any
) -> dict[str, Any]:
    """Save a sink on ``url``, post one event, run this process's delivery loop
    for the sink once; the sink as the API shows it afterwards."""
    r = api.post("/api/v1/stream/s/sink", json=_sink(url))
    assert r.status_code == 201, r.text
    sink_id = r.json()["id"]
    event = {"eventType": "e", "payload": '{"seq": 0}'}
    assert api.post("/api/v1/stream/s/events", json={"events": [event]}).status_code == 202
    engine = Engine(redis_client, Settings(**settings))
    try:
        delivery.process_sink(engine, api.get("/api/v1/stream/s").json()["id"], sink_id)
    finally:
        engine.close()
    return api.get(f"/api/v1/stream/s/sink/{sink_id}").json()


@pytest.mark.parametrize(
    ("resolved", "why"),
    [
        ("169.254.169.254", "link-local"),
        ("168.63.129.16", "Azure WireServer"),
        ("64:ff9b::a9fe:a9fe", "NAT64"),  # what DNS64 answers for 169.254.169.254
        ("2002:a9fe:a9fe::1", "6to4"),
        ("::ffff:0:a9fe:a9fe", "IPv4-translated"),
        ("fd00:ec2::254", "AWS metadata"),
    ],
)
def test_name_resolving_to_refused_address_is_refused_at_delivery(
    redis_client: redis.Redis,
    open_api: TestClient,
    monkeypatch: pytest.MonkeyPatch,
    connects: list[object],  # noqa: F811
    resolved: str,
    why: str,
) -> None:
    fake_resolver(monkeypatch, {"collector.rebind.test": resolved})
    sink = _deliver_one(redis_client, open_api, "http://collector.rebind.test:4318/v1/traces")
    assert sink["status"] == "disabled", sink
    assert "destination refused" in sink["failureReason"] and why in sink["failureReason"]
    assert connects == []


@pytest.mark.parametrize("blocked", [False, True])
def test_name_resolving_to_loopback_is_allowed_unless_private_blocked(
    redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    connects: list[object],  # noqa: F811
    blocked: bool,
) -> None:
    fake_resolver(monkeypatch, {"collector.localhost.test": "127.0.0.1"})
    with (
        ReceiverServer() as receiver,
        _client(redis_client, block_private_destinations=blocked) as api,
    ):
        assert api.post("/api/v1/stream", json={"name": "s", "uid": "s"}).status_code == 201
        url = f"http://collector.localhost.test:{receiver.port}/v1/traces"
        sink = _deliver_one(redis_client, api, url, block_private_destinations=blocked)
        if blocked:
            assert sink["status"] == "disabled", sink
            assert "private or loopback" in sink["failureReason"]
            assert receiver.requests == [] and connects == []
        else:
            assert sink["status"] == "enabled" and sink["failureReason"] is None, sink
            assert len(receiver.requests) == 1
