"""Authentication on every route, /health, OpenAPI docs, unexpected errors."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from redis.backoff import NoBackoff
from redis.retry import Retry

from streamsink.api.app import create_app
from streamsink.settings import Settings

ROUTES = [
    ("GET", "/api/v1/stream"),
    ("POST", "/api/v1/stream"),
    ("GET", "/api/v1/stream/orders"),
    ("PUT", "/api/v1/stream/orders"),
    ("PATCH", "/api/v1/stream/orders"),
    ("DELETE", "/api/v1/stream/orders"),
    ("GET", "/api/v1/stream/event-type"),
    ("POST", "/api/v1/stream/event-type"),
    ("GET", "/api/v1/stream/event-type/a.b"),
    ("PUT", "/api/v1/stream/event-type/a.b"),
    ("PATCH", "/api/v1/stream/event-type/a.b"),
    ("DELETE", "/api/v1/stream/event-type/a.b"),
    ("POST", "/api/v1/stream/orders/events"),
    ("GET", "/api/v1/stream/orders/events/latest"),
    ("GET", "/api/v1/stream/orders/sink"),
    ("POST", "/api/v1/stream/orders/sink"),
    ("GET", "/api/v1/stream/orders/sink/main"),
    ("PUT", "/api/v1/stream/orders/sink/main"),
    ("PATCH", "/api/v1/stream/orders/sink/main"),
    ("DELETE", "/api/v1/stream/orders/sink/main"),
    ("GET", "/api/v1/stream/orders/sink/main/headers"),
    ("PATCH", "/api/v1/stream/orders/sink/main/headers"),
    ("GET", "/api/v1/stream/orders/sink/main/transformation"),
    ("PATCH", "/api/v1/stream/orders/sink/main/transformation"),
    ("GET", "/api/v1/stream/orders/sink/main/events"),
]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic dGVzdA=="}],
    ids=["missing", "wrong", "basic"],
)
def test_every_route_requires_the_token(client: TestClient, headers: dict[str, str]) -> None:
    client.headers.pop("Authorization")
    for method, path in ROUTES:
        r = client.request(method, path, headers=headers, json={})
        assert r.status_code == 401, (method, path, r.text)
        assert r.json()["code"] == "authentication_failed"
        assert r.headers["www-authenticate"] == "Bearer"


def test_rotated_second_token_is_accepted(client: TestClient) -> None:
    r = client.get("/api/v1/stream", headers={"Authorization": "Bearer second-token"})
    assert r.status_code == 200


def test_no_configured_token_rejects_everything(redis_client: redis.Redis) -> None:
    app = create_app(Settings(auth_token=None), redis_client)
    with TestClient(app) as c:
        r = c.get("/api/v1/stream", headers={"Authorization": "Bearer anything"})
    assert r.status_code == 401


def test_health_is_open_and_pings_redis(client: TestClient) -> None:
    r = client.get("/health", headers={"Authorization": ""})
    assert r.status_code == 200
    body = r.json()
    assert body["redis"] is True and body["queueDepth"] == 0
    # No worker runs in these tests: the API is up, delivery is not.
    assert body["status"] == "degraded" and body["workers"] == []


def test_health_503_when_redis_is_down(settings: Settings, tmp_path: Any) -> None:
    dead = redis.Redis(unix_socket_path=str(tmp_path / "nothing.sock"), retry=Retry(NoBackoff(), 0))
    with TestClient(create_app(settings, dead)) as c:
        r = c.get("/health")
        assert r.status_code == 503
        assert r.json()["status"] == "unavailable"
        r = c.get("/api/v1/stream", headers={"Authorization": "Bearer test-token"})
        assert r.status_code == 503
        assert r.json()["code"] == "service_unavailable"


def test_openapi_lists_every_route_with_ids_and_tags(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    ops = [(m.upper(), p, op) for p, item in spec["paths"].items() for m, op in item.items()]
    for method, path in ROUTES:
        templ = (
            path.replace("/orders", "/{stream_id}")
            .replace("/main", "/{sink_id}")
            .replace("/a.b", "/{name}")
        )
        match = [op for m, p, op in ops if m == method and p == templ]
        assert match, (method, templ)
        assert match[0]["operationId"] and match[0]["tags"]
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    assert client.get("/docs").status_code == 200


def test_unknown_route_is_404_json(client: TestClient) -> None:
    r = client.get("/api/v1/nothing-here")
    assert r.status_code == 404
    assert r.json()["code"] == "not_found"


def test_unexpected_exception_is_500_internal(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamsink.storage import streams as store_streams

    def boom(*_: Any, **__: Any) -> None:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(store_streams, "list_streams", boom)
    r = client.get("/api/v1/stream")
    assert r.status_code == 500
    assert r.json() == {"code": "internal", "detail": "internal server error"}
