"""``api.middleware.idempotency``: replay of the first answer, refusal of a
different body under the same key, expiry after the TTL, and what is not
stored. The middleware wraps a small ASGI app that counts its runs, on a real
Redis database."""

from __future__ import annotations

import time
from collections.abc import Iterator

import orjson
import pytest
import redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from streamsink.api.middleware.idempotency import KEY_PREFIX, IdempotencyMiddleware
from streamsink.settings import Settings

TOKENS = ("tok-a", "tok-b")


class Counting:
    """The wrapped app: ``POST /api/thing`` answers 201 with a run number;
    ``POST /api/fail`` answers 503 (or raises with ``?raise=1``)."""

    def __init__(self) -> None:
        self.runs = 0
        self.app = Starlette(
            routes=[
                Route("/api/thing", self.thing, methods=["POST"]),
                Route("/api/fail", self.fail, methods=["POST"]),
                Route("/api/thing", self.get, methods=["GET"]),
            ]
        )

    async def thing(self, request: Request) -> Response:
        self.runs += 1
        body = await request.body()
        return JSONResponse({"run": self.runs, "len": len(body)}, status_code=201)

    async def fail(self, request: Request) -> Response:
        self.runs += 1
        if request.query_params.get("raise"):
            raise RuntimeError("boom")
        return JSONResponse({"code": "unavailable", "detail": "try later"}, status_code=503)

    async def get(self, request: Request) -> Response:
        self.runs += 1
        return JSONResponse({"run": self.runs})


@pytest.fixture
def app() -> Counting:
    return Counting()


def _client(app: Counting, redis_client: redis.Redis, ttl: int | None = None) -> TestClient:
    extra = {"idempotency_ttl_secs": ttl} if ttl is not None else {}
    settings = Settings(auth_token=",".join(TOKENS), **extra)
    wrapped = IdempotencyMiddleware(app.app, settings, redis_client)
    return TestClient(wrapped, raise_server_exceptions=False)


@pytest.fixture
def client(app: Counting, redis_client: redis.Redis) -> Iterator[TestClient]:
    with _client(app, redis_client) as c:
        yield c


def _h(key: str | None = "k1", token: str = TOKENS[0]) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers


def test_replays_the_first_answer(app: Counting, client: TestClient) -> None:
    first = client.post("/api/thing", content=b'{"a": 1}', headers=_h())
    assert first.status_code == 201 and first.json() == {"run": 1, "len": 8}
    assert "idempotent-replayed" not in first.headers
    again = client.post("/api/thing", content=b'{"a": 1}', headers=_h())
    assert again.status_code == 201
    assert again.json() == {"run": 1, "len": 8}  # the first answer, not a second run
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["content-type"] == first.headers["content-type"]
    assert app.runs == 1


def test_a_different_body_under_the_same_key_is_a_conflict(
    app: Counting, client: TestClient
) -> None:
    assert client.post("/api/thing", content=b'{"a": 1}', headers=_h()).status_code == 201
    r = client.post("/api/thing", content=b'{"a": 2}', headers=_h())
    assert r.status_code == 422
    assert r.json()["code"] == "idempotency_conflict"
    assert "idempotent-replayed" not in r.headers
    assert app.runs == 1
    # The first body is still replayed after the refusal.
    assert client.post("/api/thing", content=b'{"a": 1}', headers=_h()).json()["run"] == 1


def test_a_pending_claim_with_another_body_is_a_conflict(
    app: Counting, client: TestClient, redis_client: redis.Redis
) -> None:
    """A request still running under the key (its claim holds the body hash):
    a different body is refused at once, without waiting for it."""
    client.post("/api/thing", content=b"{}", headers=_h("probe"))
    (key,) = [k for k in redis_client.scan_iter(f"{KEY_PREFIX}*")]
    redis_client.delete(key)
    # Same path, token and key as the probe: the key's slot, claimed as pending.
    redis_client.set(key, f"pending:abc:{'0' * 64}", ex=60)
    r = client.post("/api/thing", content=b"{}", headers=_h("probe"))
    assert r.status_code == 422 and r.json()["code"] == "idempotency_conflict"
    assert app.runs == 1


def test_keys_are_scoped_by_token_path_and_key(app: Counting, client: TestClient) -> None:
    body = b'{"a": 1}'
    assert client.post("/api/thing", content=body, headers=_h("k")).json()["run"] == 1
    assert client.post("/api/thing", content=body, headers=_h("k", TOKENS[1])).json()["run"] == 2
    assert client.post("/api/thing?x=1", content=body, headers=_h("k")).json()["run"] == 3
    assert client.post("/api/thing", content=body, headers=_h("other")).json()["run"] == 4
    assert client.post("/api/thing", content=body, headers=_h(None)).json()["run"] == 5
    assert client.post("/api/thing", content=body, headers=_h(None)).json()["run"] == 6
    assert client.post("/api/thing", content=body, headers=_h("k")).json()["run"] == 1


def test_only_authenticated_posts_are_stored(
    app: Counting, client: TestClient, redis_client: redis.Redis
) -> None:
    bad = _h("k", "not-a-token")
    client.post("/api/thing", content=b"{}", headers=bad)
    client.post("/api/thing", content=b"{}", headers=bad)
    assert app.runs == 2  # an unknown token is never answered from the store
    client.get("/api/thing", headers=_h("k"))
    client.get("/api/thing", headers=_h("k"))
    assert app.runs == 4  # GET is not idempotency-keyed
    assert list(redis_client.scan_iter(f"{KEY_PREFIX}*")) == []


def test_server_errors_are_not_stored(
    app: Counting, client: TestClient, redis_client: redis.Redis
) -> None:
    for _ in range(2):
        assert client.post("/api/fail", content=b"{}", headers=_h("f")).status_code == 503
    assert app.runs == 2
    for _ in range(2):
        assert client.post("/api/fail?raise=1", content=b"{}", headers=_h("x")).status_code == 500
    assert app.runs == 4
    assert list(redis_client.scan_iter(f"{KEY_PREFIX}*")) == []  # claims released


def test_the_answer_expires_after_the_ttl(app: Counting, redis_client: redis.Redis) -> None:
    with _client(app, redis_client, ttl=1) as client:
        assert client.post("/api/thing", content=b"{}", headers=_h()).json()["run"] == 1
        (key,) = list(redis_client.scan_iter(f"{KEY_PREFIX}*"))
        assert 0 < redis_client.pttl(key) <= 1000
        stored = redis_client.get(key)
        assert stored is not None and stored.startswith(b"h:")
        assert orjson.loads(stored.split(b"\n", 3)[3]) == {"run": 1, "len": 2}
        assert client.post("/api/thing", content=b"{}", headers=_h()).json()["run"] == 1
        deadline = time.monotonic() + 5
        while redis_client.exists(key) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not redis_client.exists(key)
        again = client.post("/api/thing", content=b"{}", headers=_h())
        assert again.json()["run"] == 2 and "idempotent-replayed" not in again.headers


def test_default_ttl_is_twelve_hours(client: TestClient, redis_client: redis.Redis) -> None:
    client.post("/api/thing", content=b"{}", headers=_h())
    (key,) = list(redis_client.scan_iter(f"{KEY_PREFIX}*"))
    assert 12 * 3600 - 60 < redis_client.ttl(key) <= 12 * 3600
