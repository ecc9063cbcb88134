"""Bearer tokens: several accepted (rotation), compared in constant time, and
required on every route of the OpenAPI document but /health (and its Svix path
/api/v1/health) and the local OTLP receiver (/v1/traces)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from streamsink.api import deps

OPEN = {("GET", "/health"), ("GET", "/api/v1/health"), ("POST", "/v1/traces")}


def _routes(client: TestClient) -> list[tuple[str, str]]:
    spec = client.get("/openapi.json").json()
    return [(m.upper(), p) for p, ops in spec["paths"].items() for m in ops]


def test_every_route_but_health_and_receiver_needs_a_token(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(headers={})
    routes = _routes(client)
    assert len(routes) >= 30 and set(routes) >= OPEN
    for method, path in routes:
        url = re.sub(r"\{[^}]+\}", "x1", path)
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic tok"}):
            r = client.request(method, url, headers=headers, json={})
            if (method, path) in OPEN:
                assert r.status_code != 401, (method, path)
                continue
            assert r.status_code == 401, (method, path, headers, r.status_code)
            assert r.json()["code"] == "authentication_failed"
            assert r.headers["www-authenticate"] == "Bearer"


def test_several_tokens_for_rotation(make_client: Callable[..., TestClient]) -> None:
    client = make_client(headers={}, auth_token=" old-token , new-token ,")
    for token, status in (("old-token", 200), ("new-token", 200), ("other", 401), ("", 401)):
        r = client.get("/api/v1/stream", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == status, token
    # A prefix or a comma-joined pair of accepted tokens is not a token.
    for token in ("old", "old-token,new-token", "new-token "):
        r = client.get("/api/v1/stream", headers={"Authorization": f"Bearer {token}x"})
        assert r.status_code == 401


def test_tokens_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = deps.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(deps.hmac, "compare_digest", spy)
    assert deps.token_matches("b", ["a", "b", "c"])
    assert len(calls) == 3  # every token compared, no early exit on a match
    assert not deps.token_matches("zz", [])
