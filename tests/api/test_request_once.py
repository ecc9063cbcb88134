"""Each request's bearer token is parsed once and its body read and copied once
(``api.middleware.body``); the idempotency check, the ingest fast lane, the
auth dependency and the local receiver read them from the scope."""

from __future__ import annotations

import asyncio
import gzip
from typing import Any

import orjson
import pytest
import redis
from fastapi.testclient import TestClient

from streamsink.api import deps
from streamsink.api.middleware import idempotency, ingest
from streamsink.api.middleware.body import BODY
from streamsink.settings import Settings

from .util import AUTH, TOKEN, events_body

E = "/api/v1/stream/orders/events"


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every parse of an ``Authorization`` value, wherever it is imported."""
    seen: list[str] = []
    real = deps.bearer_token

    def spy(header: str) -> str:
        seen.append(header)
        return real(header)

    for module in (deps, idempotency, ingest):
        monkeypatch.setattr(module, "bearer_token", spy, raising=False)
    return seen


@pytest.mark.parametrize("path", [E, E + "?lane=route"])
def test_bearer_parsed_once_per_request(
    client: TestClient, stream: dict[str, Any], parses: list[str], path: str
) -> None:
    r = client.post(path, json=events_body(3), headers={"Idempotency-Key": f"k{path}"})
    assert r.status_code == 202, r.text
    assert parses == [f"Bearer {TOKEN}"]


def test_bearer_parsed_once_for_local_receiver(client: TestClient, parses: list[str]) -> None:
    r = client.get("/api/v1/local/traces")
    assert r.status_code == 200, r.text
    assert parses == [f"Bearer {TOKEN}"]


async def _never(*_: Any) -> Any:
    raise AssertionError("receive() called: the body was read a second time")


def _scope(body: bytes) -> dict[str, Any]:
    headers = [(b"authorization", f"Bearer {TOKEN}".encode()), (b"idempotency-key", b"one")]
    return {
        "type": "http",
        "method": "POST",
        "path": E,
        "query_string": b"",
        "headers": headers,
        BODY: body,
    }


def test_idempotency_reads_the_body_from_the_scope(redis_client: redis.Redis) -> None:
    seen: list[bytes] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope[BODY])
        await send({"type": "http.response.start", "status": 202, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    body = orjson.dumps(events_body(1))
    middleware = idempotency.IdempotencyMiddleware(inner, Settings(auth_token=TOKEN), redis_client)
    asyncio.run(middleware(_scope(body), _never, send))
    assert seen == [body] and seen[0] is body
    assert sent[0]["status"] == 202


def test_body_in_scope_is_the_decoded_body(
    client: TestClient, stream: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The route sees the very bytes object the body middleware left (no copy)."""
    from streamsink.api.routes import events as events_route

    seen: list[tuple[bytes, bytes]] = []
    real = events_route.OrjsonRequest.body

    async def spy(self: Any) -> bytes:
        got = await real(self)
        seen.append((got, self.scope[BODY]))
        return got

    monkeypatch.setattr(events_route.OrjsonRequest, "body", spy)
    raw = orjson.dumps(events_body(2))
    headers = {**AUTH, "Content-Encoding": "gzip", "Content-Type": "application/json"}
    r = client.post(E + "?lane=route", content=gzip.compress(raw), headers=headers)
    assert r.status_code == 202, r.text
    assert seen and all(got == raw and got is kept for got, kept in seen)
