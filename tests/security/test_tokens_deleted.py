"""Deleting a sink ends its poller tokens, and deleting a stream ends its
portal tokens and its sinks' poller tokens, at once: nothing of them stays in
Redis (checked on a dump of the whole database), not the sink's poller record,
nor the current token, nor a previous one still in its rotation grace, nor the
stream's portal-token index. Other sinks' and streams' tokens are untouched."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import redis
from fastapi.testclient import TestClient

from tests.helpers.redis_dump import dump_all

from .conftest import AUTH, new_sink, new_stream

AUTH_API = "/api/v1/auth"


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).hexdigest().encode()


def poller_tokens(client: TestClient, stream: str, sink: str) -> list[str]:
    """The sink's first poller token and two rotations that keep the previous
    one working for an hour: three live tokens."""
    path = f"{AUTH_API}/stream/{stream}/sink/{sink}/poller/token"
    r = client.get(path, headers=AUTH)
    assert r.status_code == 200, r.text
    found = [r.json()["token"]]
    for _ in range(2):
        r = client.post(path + "/rotate", json={"oldTokenExpiry": 3600}, headers=AUTH)
        assert r.status_code == 200, r.text
        found.append(r.json()["token"])
    return found


def portal_token(client: TestClient, stream: str) -> str:
    r = client.post(f"{AUTH_API}/stream-portal-access/{stream}", json={}, headers=AUTH)
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def reads(client: TestClient, token: str, stream: str, sink: str | None = None) -> int:
    path = f"/api/v1/stream/{stream}" + (f"/sink/{sink}" if sink else "")
    return client.get(path, headers={"Authorization": f"Bearer {token}"}).status_code


def poller_sink(client: TestClient, stream: str) -> str:
    return str(new_sink(client, stream, type="poller", config={})["id"])


def test_deleting_a_sink_deletes_its_poller_tokens(
    make_client: Callable[..., Any], redis_client: redis.Redis
) -> None:
    client = make_client()
    stream = new_stream(client, "a")
    doomed, kept = poller_sink(client, stream), poller_sink(client, stream)
    gone, other = poller_tokens(client, stream, doomed), poller_tokens(client, stream, kept)
    before = dump_all(redis_client)
    assert all(digest(t) in before for t in gone + other)  # the dump sees token keys
    assert f"ss:poller:{doomed}".encode() in before
    assert all(reads(client, t, stream, doomed) == 200 for t in gone)

    r = client.delete(f"/api/v1/stream/{stream}/sink/{doomed}", headers=AUTH)
    assert r.status_code == 204, r.text

    after = dump_all(redis_client)
    assert [t for t in gone if digest(t) in after] == []
    assert f"ss:poller:{doomed}".encode() not in after
    assert all(reads(client, t, stream, doomed) == 401 for t in gone)
    assert all(digest(t) in after for t in other)  # the other sink's tokens stay
    assert reads(client, other[-1], stream, kept) == 200


def test_deleting_a_stream_deletes_its_portal_and_poller_tokens(
    make_client: Callable[..., Any], redis_client: redis.Redis
) -> None:
    client = make_client()
    stream, other_stream = new_stream(client, "a"), new_stream(client, "b")
    sink = poller_sink(client, stream)
    gone = poller_tokens(client, stream, sink) + [portal_token(client, stream) for _ in range(2)]
    kept = portal_token(client, other_stream)
    before = dump_all(redis_client)
    assert all(digest(t) in before for t in [*gone, kept])
    assert f"ss:portal-tokens:{stream}".encode() in before
    assert reads(client, gone[-1], stream) == 200

    r = client.delete(f"/api/v1/stream/{stream}", headers=AUTH)
    assert r.status_code == 204, r.text

    after = dump_all(redis_client)
    assert [t for t in gone if digest(t) in after] == []
    assert f"ss:portal-tokens:{stream}".encode() not in after
    assert f"ss:poller:{sink}".encode() not in after
    assert all(reads(client, t, stream) == 401 for t in gone)
    assert digest(kept) in after and reads(client, kept, other_stream) == 200
