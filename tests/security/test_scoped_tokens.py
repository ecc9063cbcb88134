"""Scoped tokens against every route of the app: a stream portal token (and a
read-only one) reaches its stream, its sinks, events, event types and simulate;
a poller token reads its own sink; nothing else (403 ``forbidden``), and no
token is 401. The routes are read from the app, so a route added later is
checked by its template and method without touching this file."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from tests.helpers.redis_dump import dump_all

from .conftest import AUTH, TOKEN, new_sink, new_stream

S = "/api/v1/stream/{stream_id}"
EVENT_TYPE = "order.created"


def _routes(app: Any) -> list[tuple[str, str]]:
    """(method, full path template) of every route of the app."""
    try:  # recent FastAPI keeps included routers as they are
        from fastapi.routing import iter_route_contexts

        found = [(rc.path_format, rc.methods) for rc in iter_route_contexts(app.routes)]
    except ImportError:  # older FastAPI copies their routes into app.routes
        found = [(r.path_format, getattr(r, "methods", None)) for r in app.routes]
    return sorted({(m, p) for p, methods in found if p for m in methods or () if m != "HEAD"})


def portal_allows(read_only: bool, method: str, template: str) -> bool:
    """The portal token's rule as the task states it (spelled apart from api.scopes)."""
    writes = method != "GET"
    if template.startswith("/api/v1/stream/event-type"):
        return not writes
    if template == "/api/v1/stream/transformations/simulate":
        return method == "POST"
    if template == "/api/v1/auth/stream-logout":
        return method == "POST"
    if template == "/api/v1/auth/whoami":
        return method == "GET"
    if template == "/api/v1/auth/stream/{stream_id}/sink/{sink_id}/poller/token":
        return method == "GET" and not read_only
    if template == S:
        return method == "GET" or (method in ("PUT", "PATCH") and not read_only)
    if template.startswith(S + "/sink"):
        return not writes or not read_only
    if template.startswith(S + "/"):
        return not writes
    return False


def poller_allows(method: str, template: str) -> bool:
    mine = (S + "/sink/{sink_id}", S + "/sink/{sink_id}/events", "/api/v1/auth/whoami")
    return method == "GET" and template in mine


@dataclass
class World:
    client: TestClient
    redis: redis.Redis
    stream_a: str
    stream_b: str
    sink_a: str  # the poller token's sink
    sink_a2: str  # another sink of stream A
    sink_b: str
    portal: str
    read_only: str
    poller: str


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def mint(client: TestClient, stream: str, **body: Any) -> str:
    r = client.post(f"/api/v1/auth/stream-portal-access/{stream}", json=body, headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json()["url"].endswith(f"#key={r.json()['token']}")
    return str(r.json()["token"])


@pytest.fixture
def world(
    make_client: Callable[..., TestClient], redis_client: redis.Redis, tmp_path: Any
) -> Iterator[World]:
    client = make_client(headers={}, data_dir=tmp_path / "data")
    r = client.post("/api/v1/stream/event-type", json={"name": EVENT_TYPE}, headers=AUTH)
    assert r.status_code in (200, 201), r.text
    client.headers.update(AUTH)
    a, b = new_stream(client, "a"), new_stream(client, "b")
    sink_a = new_sink(client, a, type="poller", config={})  # poller tokens read poller sinks
    sink_a2, sink_b = new_sink(client, a), new_sink(client, b)
    r = client.get(f"/api/v1/auth/stream/{a}/sink/{sink_a['id']}/poller/token")
    assert r.status_code == 200, r.text
    poller = r.json()["token"]
    client.headers.pop("Authorization")
    yield World(
        client,
        redis_client,
        a,
        b,
        sink_a["id"],
        sink_a2["id"],
        sink_b["id"],
        portal=mint(client, a, sessionId="s1"),
        read_only=mint(client, a, readOnly=True),
        poller=poller,
    )


def _url(template: str, **params: str) -> str:
    defaults = {"name": EVENT_TYPE, "trace_id": "0" * 32, "attempt_id": "x1", "path": "x"}
    return re.sub(r"\{(\w+)\}", lambda m: {**defaults, **params}.get(m.group(1), "x1"), template)


def _call(w: World, method: str, template: str, token: str | None, **params: str) -> Any:
    params = {"stream_id": w.stream_a, "sink_id": w.sink_a, **params}
    headers = bearer(token) if token else {}
    return w.client.request(method, _url(template, **params), headers=headers, json={})


def _order(item: tuple[str, str]) -> tuple[bool, bool, str, str]:
    """Per token, the calls that end things last: DELETE routes, then stream-logout."""
    method, template = item
    return (template.endswith("/stream-logout"), method == "DELETE", template, method)


def test_every_route_by_token_kind(world: World) -> None:
    w = world
    routes = _routes(w.client.app)
    templates = {t for _, t in routes}
    assert len(routes) >= 35, routes
    assert {S, S + "/sink/{sink_id}", "/api/v1/auth/stream-logout", "/metrics"} <= templates
    guarded = [rt for rt in routes if _call(w, *rt, None).status_code == 401]
    assert len(guarded) >= 30 and ("GET", "/health") not in guarded
    kinds = [
        ("poller", w.poller, lambda m, t: poller_allows(m, t)),
        ("read-only portal", w.read_only, lambda m, t: portal_allows(True, m, t)),
        ("portal", w.portal, lambda m, t: portal_allows(False, m, t)),
    ]
    checked = 0
    for kind, token, allows in kinds:  # the portal token (who deletes sinks) goes last
        for method, template in sorted(guarded, key=_order):
            r = _call(w, method, template, token)
            where = (kind, method, template, r.status_code, r.text[:200])
            if allows(method, template):
                assert r.status_code not in (401, 403), where
            else:
                assert r.status_code == 403, where
                body = r.json()
                assert body["code"] == "forbidden" and len(body["detail"]) > 10, where
            checked += 1
    assert checked == 3 * len(guarded)


def test_whoami_tells_each_token_about_itself_only(world: World) -> None:
    """What the portal asks to hide a read-only token's writes; no path names
    another token, so a token can only learn about itself."""
    w = world

    def me(token: str) -> dict[str, Any]:
        r = w.client.get("/api/v1/auth/whoami", headers=bearer(token))
        assert r.status_code == 200, r.text
        return dict(r.json())

    portal, read_only, poller = me(w.portal), me(w.read_only), me(w.poller)
    assert portal["kind"] == "portal" and portal["streamId"] == w.stream_a
    assert portal["readOnly"] is False and portal["sessionId"] == "s1"
    assert portal["expiresAt"] and portal.get("sinkId") is None
    assert read_only["kind"] == "portal" and read_only["readOnly"] is True
    assert read_only.get("sessionId") is None
    assert poller["kind"] == "poller" and poller["readOnly"] is True
    assert (poller["streamId"], poller["sinkId"]) == (w.stream_a, w.sink_a)
    admin = {k: v for k, v in me(TOKEN).items() if v is not None}
    assert admin == {"kind": "admin", "readOnly": False, "featureFlags": []}
    for token in (w.portal, w.read_only, w.poller):
        hashed = hashlib.sha256(token.encode()).hexdigest()
        assert token not in str(me(token)) and hashed not in str(me(token))
    r = w.client.get("/api/v1/auth/whoami", headers=bearer("sk_portal_not-a-live-one"))
    assert r.status_code == 401
    r = w.client.post("/api/v1/auth/whoami", headers=bearer(w.portal))
    assert r.status_code == 405


def test_other_streams_and_sinks_are_out_of_scope(world: World) -> None:
    w = world
    # API routes: the portal page (/portal/{stream_id}) is the same static page
    # for every stream and token, and holds no data until the API answers
    routes = [rt for rt in _routes(w.client.app) if "{stream_id}" in rt[1] and "/api/" in rt[1]]
    assert len(routes) >= 20
    for method, template in routes:
        for params in ({"stream_id": w.stream_b, "sink_id": w.sink_b}, {"stream_id": "b"}):
            for token in (w.portal, w.read_only, w.poller):
                r = _call(w, method, template, token, **params)
                assert r.status_code == 403, (method, template, params, r.text)
        if poller_allows(method, template):  # another sink of the same stream
            r = _call(w, method, template, w.poller, sink_id=w.sink_a2)
            assert r.status_code == 403 and "sink" in r.json()["detail"], (template, r.text)
    for missing in ("no-such-stream", "strm_0000000000000000000000"):
        r = w.client.get(f"/api/v1/stream/{missing}", headers=bearer(w.portal))
        assert r.status_code == 403, r.text  # not 404: a token learns nothing of others


def test_portal_token_by_uid_and_its_own_writes(world: World) -> None:
    w = world
    h = bearer(w.portal)
    assert w.client.get("/api/v1/stream/a", headers=h).json()["id"] == w.stream_a
    r = w.client.patch("/api/v1/stream/a", json={"name": "renamed"}, headers=h)
    assert r.status_code == 200 and r.json()["name"] == "renamed"
    r = w.client.post(f"/api/v1/stream/{w.stream_a}/sink", json=_sink_body(), headers=h)
    assert r.status_code == 201, r.text
    r = w.client.post(
        f"/api/v1/stream/{w.stream_a}/sink", json=_sink_body(), headers=bearer(w.read_only)
    )
    assert r.status_code == 403 and "read-only" in r.json()["detail"]
    r = w.client.get(
        f"/api/v1/auth/stream/a/sink/{w.sink_a}/poller/token", headers=bearer(w.portal)
    )
    assert r.status_code == 200 and r.json()["token"] == w.poller


def _sink_body() -> dict[str, Any]:
    return {"type": "otelTracing", "config": {"url": "https://collector.example.com/v1/traces"}}


def test_events_post_is_refused_on_both_lanes(world: World) -> None:
    w = world
    body = {"events": [{"eventType": EVENT_TYPE, "payload": {"n": 1}}]}
    for token in (w.portal, w.read_only, w.poller):
        for extra in ({}, {"Idempotency-Key": "k1"}):
            r = w.client.post(
                f"/api/v1/stream/{w.stream_a}/events", json=body, headers=bearer(token) | extra
            )
            assert r.status_code == 403 and r.json()["code"] == "forbidden", r.text
    assert w.redis.xlen(f"ss:log:{w.stream_a}") == 0
    r = w.client.post(f"/api/v1/stream/{w.stream_a}/events", json=body, headers=AUTH)
    assert r.status_code == 202 and w.redis.xlen(f"ss:log:{w.stream_a}") == 1
    r = w.client.get(f"/api/v1/stream/{w.stream_a}/events/latest", headers=bearer(w.read_only))
    assert r.status_code == 200 and len(r.json()["data"]) == 1
    url = f"/api/v1/stream/{w.stream_a}/sink/{w.sink_a}/events"
    r = w.client.get(url, headers=bearer(w.poller))  # a poller's first call: its position
    assert r.status_code == 200 and r.json()["data"] == [], r.text
    r = w.client.get(url, params={"iterator": r.json()["iterator"]}, headers=bearer(w.poller))
    assert r.status_code == 200 and [e["eventType"] for e in r.json()["data"]] == [EVENT_TYPE]


def test_simulate_is_open_to_read_only_tokens(world: World) -> None:
    code = (
        "function handler(input) {"
        " return {config: {serviceName: 's', scope: {name: 'x'}}, spans: []}; }"
    )
    body = {"type": "otelTracing", "code": code, "events": [{"eventType": "a", "payload": {}}]}
    r = world.client.post(
        "/api/v1/stream/transformations/simulate", json=body, headers=bearer(world.read_only)
    )
    assert r.status_code == 200, r.text


def test_tokens_can_not_mint_or_manage_tokens(world: World) -> None:
    w = world
    a, sink = w.stream_a, w.sink_a
    calls = [
        ("POST", f"/api/v1/auth/stream-portal-access/{a}", {}),
        ("POST", f"/api/v1/auth/stream-portal-access/{a}", {"readOnly": False}),
        ("POST", f"/api/v1/auth/stream/{a}/expire-all", {}),
        ("POST", f"/api/v1/auth/stream/{a}/sink/{sink}/poller/token/rotate", {}),
    ]
    for token in (w.portal, w.read_only, w.poller):
        for method, url, body in calls:
            r = w.client.request(method, url, json=body, headers=bearer(token))
            assert r.status_code == 403 and r.json()["code"] == "forbidden", (url, r.text)
    r = w.client.get(f"/api/v1/auth/stream/{a}/sink/{sink}/poller/token", headers=bearer(w.poller))
    assert r.status_code == 403
    # nothing was minted: stream A still has exactly its two portal tokens
    assert w.redis.zcard(f"ss:portal-tokens:{a}") == 2
    # logout is for portal tokens: the admin and the poller token are refused
    for headers in (AUTH, bearer(w.poller)):
        r = w.client.post("/api/v1/auth/stream-logout", headers=headers)
        assert r.status_code == 403, r.text


def test_tokens_are_stored_only_hashed(world: World) -> None:
    w = world
    r = w.client.post(
        f"/api/v1/auth/stream/{w.stream_a}/sink/{w.sink_a}/poller/token/rotate",
        json={"oldTokenExpiry": 60},
        headers=AUTH,
    )
    rotated = r.json()["token"]
    plain = [w.portal, w.read_only, w.poller, rotated]
    blob = dump_all(w.redis)
    for token in plain:
        secret_part = token.split("_", 2)[2]
        assert secret_part.encode() not in blob and token.encode() not in blob
        assert hashlib.sha256(token.encode()).hexdigest().encode() in blob  # the scan sees it
    for token in plain:  # and every one of them still works
        r = w.client.get(f"/api/v1/stream/{w.stream_a}/sink/{w.sink_a}", headers=bearer(token))
        assert r.status_code == 200, token


def test_routes_added_later_fall_under_the_rule(world: World) -> None:
    """Routes added later (made-up paths that no module serves) are judged by
    their template and method, with nothing listed for them."""
    from fastapi import APIRouter, Depends

    from streamsink.api.deps import require_token

    later = APIRouter(prefix="/api/v1", dependencies=[Depends(require_token)])
    for method, path in (
        ("GET", "/stream/{stream_id}/sink/{sink_id}/later-read"),
        ("POST", "/stream/{stream_id}/sink/{sink_id}/later-write/rotate"),
        ("GET", "/stream/{stream_id}/sink/{sink_id}/later-event"),
        ("POST", "/stream/{stream_id}/replay"),
        ("GET", "/console/overview"),
    ):
        later.add_api_route(path, lambda: {"ok": True}, methods=[method])
    w = world
    w.client.app.include_router(later)
    sink = S + "/sink/{sink_id}"
    expect = {  # (method, template): (portal, read-only, poller) allowed
        ("GET", sink + "/later-read"): (True, True, False),
        ("POST", sink + "/later-write/rotate"): (True, False, False),
        ("GET", sink + "/later-event"): (True, True, False),
        ("POST", S + "/replay"): (False, False, False),
        ("GET", "/api/v1/console/overview"): (False, False, False),
    }
    for (method, template), allowed in expect.items():
        assert _call(w, method, template, None).status_code == 401
        for token, ok in zip((w.portal, w.read_only, w.poller), allowed, strict=True):
            r = _call(w, method, template, token)
            assert r.status_code == (200 if ok else 403), (method, template, r.text)
            if token == w.poller:  # the matrix test's expectations agree
                assert ok == poller_allows(method, template)
            else:
                assert ok == portal_allows(token == w.read_only, method, template)
        r = _call(w, method, template, w.portal, stream_id=w.stream_b)
        assert r.status_code == 403
