"""``Content-Encoding`` of request bodies: gzip is decoded (both lanes of the
events POST store the same), bounded by STREAMSINK_MAX_BODY_BYTES while it
expands; any other encoding is a 415 naming the supported ones."""

from __future__ import annotations

import gzip
import zlib
from typing import Any

import orjson
import pytest
import redis
from fastapi.testclient import TestClient

from streamsink.api.middleware.encoding import BodyTooLarge, gunzip
from streamsink.storage import appends, eventlog

from .util import events_body

E = "/api/v1/stream/orders/events"
GZIP = {"content-type": "application/json", "content-encoding": "gzip"}


def _stored(redis_client: redis.Redis, stream_id: str) -> list[tuple[bytes, bytes]]:
    entries = eventlog.parse_entries(redis_client.xrange(f"ss:log:{stream_id}"))
    return [(e.event_type.encode(), e.payload.encode()) for e in entries]


@pytest.mark.parametrize("path", [E, E + "?lane=route"])
def test_gzip_events_are_decoded_on_both_lanes(
    client: TestClient,
    stream: dict[str, Any],
    redis_client: redis.Redis,
    path: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    route_calls: list[str] = []  # the fast lane never calls ``append_existing``
    real = appends.append_existing
    monkeypatch.setattr(
        appends,
        "append_existing",
        lambda client, sid, *a, **k: route_calls.append(sid) or real(client, sid, *a, **k),
    )
    body = gzip.compress(orjson.dumps(events_body(3)))
    r = client.post(path, content=body, headers=GZIP)
    assert r.status_code == 202, r.text
    assert route_calls == ([] if path == E else ["orders"])
    assert _stored(redis_client, stream["id"]) == [
        (b"order.created", f'{{"n": {i}}}'.encode()) for i in range(3)
    ]


def test_gzip_works_for_other_routes_and_aliases(client: TestClient) -> None:
    body = gzip.compress(b'{"name": "zipped", "uid": "zipped"}')
    r = client.post("/api/v1/stream", content=body, headers=GZIP)
    assert r.status_code == 201 and r.json()["uid"] == "zipped", r.text
    headers = {**GZIP, "content-encoding": "identity, x-gzip"}
    body = gzip.compress(b'{"name": "renamed"}')
    r = client.patch("/api/v1/stream/zipped", content=body, headers=headers)
    assert r.status_code == 200 and r.json()["name"] == "renamed", r.text


def test_a_gzip_bomb_stops_at_the_body_limit(
    client: TestClient, stream: dict[str, Any], redis_client: redis.Redis
) -> None:
    """256 KiB limit in these tests: a 16 MiB document compressed to ~16 KiB."""
    payload = "x" * (16 * 1024 * 1024)
    body = gzip.compress(orjson.dumps({"events": [{"eventType": "e", "payload": payload}]}))
    assert len(body) < 256 * 1024
    for path in (E, E + "?lane=route"):
        r = client.post(path, content=body, headers=GZIP)
        assert r.status_code == 413, r.text
        assert r.json()["code"] == "payload_too_large"
        assert "STREAMSINK_MAX_BODY_BYTES" in r.json()["detail"]
    assert _stored(redis_client, stream["id"]) == []


@pytest.mark.parametrize("encoding", ["br", "deflate", "zstd", "gzip, br", "compress"])
def test_other_encodings_are_415(client: TestClient, stream: Any, encoding: str) -> None:
    body = orjson.dumps(events_body(1))
    for path in (E, "/api/v1/stream"):
        r = client.post(path, content=body, headers={**GZIP, "content-encoding": encoding})
        assert r.status_code == 415, r.text
        assert r.json()["code"] == "unsupported_media_type"
        assert "gzip" in r.json()["detail"] and "identity" in r.json()["detail"]


def test_identity_is_the_plain_body(
    client: TestClient, stream: dict[str, Any], redis_client: redis.Redis
) -> None:
    r = client.post(E, json=events_body(1), headers={"content-encoding": "identity"})
    assert r.status_code == 202 and len(_stored(redis_client, stream["id"])) == 1


@pytest.mark.parametrize("body", [b'{"events": []}', b"", gzip.compress(b"{}", mtime=0)[:-5]])
def test_a_body_that_is_not_gzip_is_400(client: TestClient, stream: Any, body: bytes) -> None:
    r = client.post(E, content=body, headers=GZIP)
    assert r.status_code == 400 and r.json()["code"] == "bad_request", r.text
    assert "gzip" in r.json()["detail"]


def test_gunzip_unit() -> None:
    data = b"a" * 1000
    assert gunzip(gzip.compress(data), 1000) == data
    assert gunzip(gzip.compress(data[:400]) + gzip.compress(data[400:]), 1000) == data
    with pytest.raises(BodyTooLarge):
        gunzip(gzip.compress(data), 999)
    with pytest.raises(zlib.error):
        gunzip(b"plain", 1000)
