"""Stream event types: create, get, list (archived hidden), upsert, patch, delete."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

BASE = "/api/v1/stream/event-type"


def test_create_get_and_conflict(client: TestClient) -> None:
    body = {"name": "order.created", "description": "An order", "featureFlags": ["beta"]}
    r = client.post(BASE, json=body)
    assert r.status_code == 201
    out = r.json()
    assert out["name"] == "order.created" and out["description"] == "An order"
    assert out["featureFlags"] == ["beta"]
    assert out["deprecated"] is False and out["archived"] is False
    assert client.get(f"{BASE}/order.created").json() == out
    r = client.post(BASE, json={"name": "order.created"})
    assert r.status_code == 409 and r.json()["code"] == "conflict"


@pytest.mark.parametrize("name", ["has space", "", "x" * 257, "a/b", "ü"])
def test_bad_name_is_422(client: TestClient, name: str) -> None:
    r = client.post(BASE, json={"name": name})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "name"]


def test_unknown_is_404(client: TestClient) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        r = client.request(method, f"{BASE}/nope", json={})
        assert r.status_code == 404
        assert "nope" in r.json()["detail"]


def test_list_in_name_order_with_archived_hidden(client: TestClient) -> None:
    for name in ("c.one", "a.one", "b.one", "d.one"):
        client.post(BASE, json={"name": name})
    assert client.delete(f"{BASE}/b.one").status_code == 204
    names = [e["name"] for e in client.get(BASE).json()["data"]]
    assert names == ["a.one", "c.one", "d.one"]
    everything = client.get(BASE, params={"include_archived": "true"}).json()["data"]
    assert [e["name"] for e in everything] == ["a.one", "b.one", "c.one", "d.one"]
    assert everything[1]["archived"] is True
    page = client.get(BASE, params={"limit": 2}).json()
    assert [e["name"] for e in page["data"]] == ["a.one", "c.one"] and not page["done"]
    page = client.get(BASE, params={"limit": 2, "iterator": page["iterator"]}).json()
    assert [e["name"] for e in page["data"]] == ["d.one"] and page["done"]
    desc = client.get(BASE, params={"order": "descending"}).json()["data"]
    assert [e["name"] for e in desc] == ["d.one", "c.one", "a.one"]


def test_expunge_deletes_entirely(client: TestClient) -> None:
    client.post(BASE, json={"name": "gone"})
    assert client.delete(f"{BASE}/gone", params={"expunge": "true"}).status_code == 204
    assert client.get(f"{BASE}/gone").status_code == 404
    assert client.get(BASE, params={"include_archived": True}).json()["data"] == []
    assert client.post(BASE, json={"name": "gone"}).status_code == 201


def test_upsert_and_patch(client: TestClient) -> None:
    r = client.put(f"{BASE}/user.signup", json={"name": "user.signup", "description": "d1"})
    assert r.status_code == 201
    created = r.json()
    r = client.put(f"{BASE}/user.signup", json={"name": "user.signup", "deprecated": True})
    assert r.status_code == 200
    assert r.json()["deprecated"] is True and r.json()["description"] is None
    assert r.json()["createdAt"] == created["createdAt"]
    r = client.patch(f"{BASE}/user.signup", json={"description": "d2"})
    assert r.status_code == 200
    assert r.json()["description"] == "d2" and r.json()["deprecated"] is True
    r = client.patch(f"{BASE}/user.signup", json={"archived": True})
    assert r.json()["archived"] is True
    r = client.patch(f"{BASE}/user.signup", json={"archived": False, "featureFlags": ["x"]})
    assert r.json()["archived"] is False and r.json()["featureFlags"] == ["x"]


def test_bad_path_name_is_422(client: TestClient) -> None:
    assert client.get(f"{BASE}/bad%20name").status_code == 422
