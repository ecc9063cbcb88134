"""Scoped tokens over time: portal tokens expire (Redis TTL and a check of
their own), log out, and end by expire-all (by session, now or later); poller
tokens rotate with the old one working until ``oldTokenExpiry``; the secret
that derives poller tokens is private and shared by processes that share it."""

from __future__ import annotations

import hashlib
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from streamsink.auth_token import SECRET_FILE

from .conftest import new_sink, new_stream


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def key_of(token: str) -> str:
    return "ss:token:" + hashlib.sha256(token.encode()).hexdigest()


@pytest.fixture
def client(make_client: Callable[..., TestClient], tmp_path: Path) -> TestClient:
    return make_client(data_dir=tmp_path / "data")


def mint(client: TestClient, stream: str, **body: Any) -> str:
    r = client.post(f"/api/v1/auth/stream-portal-access/{stream}", json=body)
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def status(client: TestClient, token: str, url: str) -> int:
    return client.get(url, headers=bearer(token)).status_code


def wait_for(check: Callable[[], bool], limit: float = 10.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def test_portal_access_answer(client: TestClient, make_client: Callable[..., TestClient]) -> None:
    a = new_stream(client, "a")
    r = client.post("/api/v1/auth/stream-portal-access/a", json={})
    out = r.json()
    assert r.status_code == 200 and set(out) == {"url", "token"}
    assert out["token"].startswith("sk_portal_") and len(out["token"]) >= 50
    assert out["url"] == f"http://testserver/portal/{a}#key={out['token']}"
    public = make_client(public_url="https://streams.example.com/")
    url = public.post("/api/v1/auth/stream-portal-access/a", json={}).json()["url"]
    assert url.startswith(f"https://streams.example.com/portal/{a}#key=sk_portal_")
    r = client.post("/api/v1/auth/stream-portal-access/missing", json={})
    assert r.status_code == 404
    for bad in ({"expiry": 0}, {"expiry": 7 * 86400 + 1}, {"sessionIds": "x", "sessionId": ""}):
        r = client.post("/api/v1/auth/stream-portal-access/a", json=bad)
        assert r.status_code == 422, bad
    # the default expiry is Svix's: 7 days
    token = out["token"]
    assert 7 * 86400 * 1000 - 60_000 < client.app.state.redis.pttl(key_of(token)) <= 7 * 86400_000


def test_portal_token_expires(client: TestClient, redis_client: redis.Redis) -> None:
    a = new_stream(client, "a")
    url = f"/api/v1/stream/{a}"
    short = mint(client, a, expiry=1)
    assert 0 < redis_client.pttl(key_of(short)) <= 1000
    assert status(client, short, url) == 200
    assert wait_for(lambda: status(client, short, url) == 401)
    assert not redis_client.exists(key_of(short))  # Redis ended it too
    # the expiry is checked apart from the TTL: a key Redis has not expired yet
    kept = mint(client, a, expiry=3600)
    assert status(client, kept, url) == 200
    redis_client.persist(key_of(kept))
    redis_client.hset(key_of(kept), "expiresAt", int(time.time() * 1000) - 1)
    r = client.get(url, headers=bearer(kept))
    assert r.status_code == 401 and r.json()["code"] == "authentication_failed"


def test_logout(client: TestClient, redis_client: redis.Redis) -> None:
    a = new_stream(client, "a")
    token, other = mint(client, a), mint(client, a)
    r = client.post("/api/v1/auth/stream-logout", headers=bearer(token))
    assert r.status_code == 204 and r.content == b""
    assert status(client, token, f"/api/v1/stream/{a}") == 401
    assert client.post("/api/v1/auth/stream-logout", headers=bearer(token)).status_code == 401
    assert status(client, other, f"/api/v1/stream/{a}") == 200
    assert redis_client.zcard(f"ss:portal-tokens:{a}") == 1


def test_expire_all(client: TestClient, redis_client: redis.Redis) -> None:
    a, b = new_stream(client, "a"), new_stream(client, "b")
    s1, s2, plain = (
        mint(client, a, sessionId="s1"),
        mint(client, a, sessionId="s2"),
        mint(client, a),
    )
    in_b = mint(client, b, sessionId="s1")
    url_a, url_b = f"/api/v1/stream/{a}", f"/api/v1/stream/{b}"

    r = client.post(f"/api/v1/auth/stream/{a}/expire-all", json={"sessionIds": ["s1"]})
    assert r.status_code == 204
    assert [status(client, t, url_a) for t in (s1, s2, plain)] == [401, 200, 200]
    assert status(client, in_b, url_b) == 200  # same session, other stream

    r = client.post(f"/api/v1/auth/stream/{a}/expire-all", json={"expiry": 60})
    assert r.status_code == 204
    for token in (s2, plain):  # still working, now for at most a minute
        assert status(client, token, url_a) == 200
        assert 0 < redis_client.pttl(key_of(token)) <= 60_000
        assert redis_client.zscore(f"ss:portal-tokens:{a}", key_of(token)[9:]) is not None
    assert redis_client.pttl(key_of(in_b)) > 3600_000

    r = client.post("/api/v1/auth/stream/a/expire-all")  # no body: every token, now
    assert r.status_code == 204
    assert [status(client, t, url_a) for t in (s2, plain)] == [401, 401]
    assert not redis_client.exists(f"ss:portal-tokens:{a}")
    assert status(client, in_b, url_b) == 200
    assert client.post("/api/v1/auth/stream/nope/expire-all", json={}).status_code == 404


def _poller_url(stream: str, sink: str, rotate: bool = False) -> str:
    return f"/api/v1/auth/stream/{stream}/sink/{sink}/poller/token" + ("/rotate" if rotate else "")


def test_poller_token_get_and_rotate(client: TestClient, redis_client: redis.Redis) -> None:
    a = new_stream(client, "a")
    sink = new_sink(client, a, uid="p", type="poller", config={})["id"]
    read = f"/api/v1/stream/{a}/sink/{sink}/events"
    first = client.get(_poller_url(a, sink)).json()
    assert first["token"].startswith("sk_poll_") and first["id"].startswith("ptok_")
    assert first["createdAt"] and first["expiresAt"] is None
    assert client.get(_poller_url("a", "p")).json() == first  # the same token again, by uids
    assert status(client, first["token"], read) == 200

    r = client.post(_poller_url(a, sink, rotate=True), json={"oldTokenExpiry": 1})
    second = r.json()
    assert r.status_code == 200 and second["token"] != first["token"]
    assert client.get(_poller_url(a, sink)).json()["token"] == second["token"]
    assert status(client, second["token"], read) == 200
    assert status(client, first["token"], read) == 200  # until oldTokenExpiry
    assert wait_for(lambda: status(client, first["token"], read) == 401)

    r = client.post(_poller_url(a, sink, rotate=True), json={})  # Svix's default: 300 s
    third = r.json()
    assert 290_000 < redis_client.pttl(key_of(second["token"])) <= 300_000
    assert status(client, second["token"], read) == 200

    r = client.post(_poller_url(a, sink, rotate=True), json={"oldTokenExpiry": 0, "expiry": 60})
    fourth = r.json()
    assert status(client, third["token"], read) == 401  # 0: ended at once
    assert status(client, second["token"], read) == 200  # its own 300 s still run
    assert status(client, fourth["token"], read) == 200 and fourth["expiresAt"]
    assert 0 < redis_client.pttl(key_of(fourth["token"])) <= 60_000
    for bad in ({"oldTokenExpiry": 86401}, {"expiry": 0}, {"oldTokenExpiry": -1}):
        assert client.post(_poller_url(a, sink, rotate=True), json=bad).status_code == 422
    assert client.get(_poller_url(a, "missing")).status_code == 404


def test_poller_tokens_are_for_poller_sinks_only(
    client: TestClient, redis_client: redis.Redis
) -> None:
    """Svix's poller token reads a poller sink: GET and rotate on a sink of
    another type are a 409 naming the type, and issue nothing."""
    a = new_stream(client, "a")
    for fields in ({}, {"type": "http", "config": {"url": "https://hooks.example.com/in"}}):
        sink = new_sink(client, a, **fields)
        for method, rotate in (("GET", False), ("POST", True)):
            r = client.request(method, _poller_url(a, sink["id"], rotate=rotate), json={})
            assert r.status_code == 409, r.text
            body = r.json()
            assert body["code"] == "not_a_poller_sink", body
            assert repr(sink["type"]) in body["detail"] and "'poller'" in body["detail"]
    assert redis_client.keys("ss:poller:*") == [] and redis_client.keys("ss:token:*") == []


def test_poller_token_dies_with_its_sink(client: TestClient, redis_client: redis.Redis) -> None:
    a = new_stream(client, "a")
    sink = new_sink(client, a, type="poller", config={})["id"]
    token = client.get(_poller_url(a, sink)).json()["token"]
    assert client.delete(f"/api/v1/stream/{a}/sink/{sink}").status_code == 204
    assert status(client, token, f"/api/v1/stream/{a}/sink/{sink}") == 401
    assert not redis_client.exists(key_of(token), f"ss:poller:{sink}")


def test_secret_file_is_private_and_shared(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    one = make_client(data_dir=tmp_path / "data")
    a = new_stream(one, "a")
    sink = new_sink(one, a, type="poller", config={})["id"]
    token = one.get(_poller_url(a, sink)).json()["token"]
    path = tmp_path / "data" / SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert len(path.read_text().strip()) >= 43
    # another process with the same data dir derives the same token
    two = make_client(data_dir=tmp_path / "data")
    assert two.get(_poller_url(a, sink)).json()["token"] == token
    # one with another secret can not show it, says why, and a rotation fixes it
    other = make_client(data_dir=tmp_path / "elsewhere", token_secret="x" * 40)
    r = other.get(_poller_url(a, sink))
    assert r.status_code == 409 and "STREAMSINK_TOKEN_SECRET" in r.json()["detail"]
    assert status(other, token, f"/api/v1/stream/{a}/sink/{sink}") == 200  # lookups need no secret
    new = other.post(_poller_url(a, sink, rotate=True), json={}).json()["token"]
    assert other.get(_poller_url(a, sink)).json()["token"] == new
    assert not (tmp_path / "elsewhere").exists()  # the setting wins: no file written


def test_token_secret_setting_is_checked() -> None:
    from pydantic import ValidationError

    from streamsink.settings import Settings

    with pytest.raises(ValidationError, match="token_secret"):
        Settings(token_secret="short")
