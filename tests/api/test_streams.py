"""Streams: create, get by id/uid, list and paginate, upsert, patch, delete."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from .util import events_body, sink_body

BASE = "/api/v1/stream"


def test_create_and_get_by_id_and_uid(client: TestClient) -> None:
    r = client.post(BASE, json={"name": "Orders", "uid": "orders", "metadata": {"team": "a"}})
    assert r.status_code == 201
    body = r.json()
    assert body["id"].startswith("strm_") and len(body["id"]) > 20
    assert body["uid"] == "orders" and body["name"] == "Orders"
    assert body["metadata"] == {"team": "a"}
    assert body["createdAt"].endswith("Z") and body["updatedAt"] == body["createdAt"]
    assert client.get(f"{BASE}/{body['id']}").json() == body
    assert client.get(f"{BASE}/orders").json() == body


def test_create_without_uid_and_ids_are_random(client: TestClient) -> None:
    a = client.post(BASE, json={"name": "a"}).json()
    b = client.post(BASE, json={"name": "a"}).json()
    assert a["uid"] is None and a["metadata"] == {}
    assert a["id"] != b["id"]


def test_duplicate_uid_is_409(client: TestClient, stream: dict[str, Any]) -> None:
    r = client.post(BASE, json={"name": "again", "uid": stream["uid"]})
    assert r.status_code == 409
    assert r.json()["code"] == "conflict"
    assert "orders" in r.json()["detail"]


@pytest.mark.parametrize(
    "uid", ["strm_abc", "a.b", "has space", "", "x" * 61, "a/b", "event-type", "ü"]
)
def test_bad_uid_is_422(client: TestClient, uid: str) -> None:
    r = client.post(BASE, json={"name": "x", "uid": uid})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["body", "uid"]


@pytest.mark.parametrize(
    "body",
    [{}, {"name": 5}, {"name": "x", "metadata": {"a": 1}}, {"name": "x", "metadata": []}, []],
)
def test_wrong_types_are_422(client: TestClient, body: Any) -> None:
    r = client.post(BASE, json=body)
    assert r.status_code == 422
    assert isinstance(r.json()["detail"], list)


def test_malformed_json_is_422(client: TestClient) -> None:
    r = client.post(BASE, content=b'{"name": ', headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["type"] == "json_invalid"


def test_unknown_stream_is_404(client: TestClient) -> None:
    for path in (f"{BASE}/nope", f"{BASE}/strm_0000000000000000000000"):
        r = client.get(path)
        assert r.status_code == 404
        assert r.json()["code"] == "not_found" and "stream" in r.json()["detail"]
    assert client.patch(f"{BASE}/nope", json={"name": "x"}).status_code == 404
    assert client.delete(f"{BASE}/nope").status_code == 404


def test_list_paginates_forward_and_back(client: TestClient) -> None:
    ids = [client.post(BASE, json={"name": f"s{i}"}).json()["id"] for i in range(5)]
    page1 = client.get(BASE, params={"limit": 2}).json()
    assert [s["id"] for s in page1["data"]] == ids[:2] and page1["done"] is False
    page2 = client.get(BASE, params={"limit": 2, "iterator": page1["iterator"]}).json()
    assert [s["id"] for s in page2["data"]] == ids[2:4] and page2["done"] is False
    page3 = client.get(BASE, params={"limit": 2, "iterator": page2["iterator"]}).json()
    assert [s["id"] for s in page3["data"]] == ids[4:] and page3["done"] is True
    back = client.get(BASE, params={"limit": 2, "iterator": page3["prevIterator"]}).json()
    assert [s["id"] for s in back["data"]] == ids[2:4]
    desc = client.get(BASE, params={"order": "descending", "limit": 3}).json()
    assert [s["id"] for s in desc["data"]] == ids[::-1][:3]
    rest = client.get(
        BASE, params={"order": "descending", "limit": 3, "iterator": desc["iterator"]}
    ).json()
    assert [s["id"] for s in rest["data"]] == ids[1::-1] and rest["done"] is True


def test_empty_list(client: TestClient) -> None:
    assert client.get(BASE).json() == {
        "data": [],
        "iterator": None,
        "prevIterator": None,
        "done": True,
    }


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 251}, {"limit": "x"}, {"order": "sideways"}, {"iterator": "!!"}],
)
def test_bad_list_params_are_422(client: TestClient, params: dict[str, Any]) -> None:
    r = client.get(BASE, params=params)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][0] == "query"


def test_upsert_creates_then_updates(client: TestClient) -> None:
    r = client.put(f"{BASE}/billing", json={"name": "Billing", "metadata": {"a": "1"}})
    assert r.status_code == 201
    created = r.json()
    assert created["uid"] == "billing"
    r = client.put(f"{BASE}/billing", json={"name": "Billing 2"})
    assert r.status_code == 200
    updated = r.json()
    assert updated["id"] == created["id"] and updated["name"] == "Billing 2"
    assert updated["metadata"] == {} and updated["uid"] == "billing"
    r = client.put(f"{BASE}/{created['id']}", json={"name": "by id", "uid": "billing-2"})
    assert r.status_code == 200 and r.json()["uid"] == "billing-2"
    assert client.get(f"{BASE}/billing").status_code == 404
    assert client.get(f"{BASE}/billing-2").json()["name"] == "by id"


def test_upsert_unknown_id_is_404_and_mismatched_uid_is_400(client: TestClient) -> None:
    assert client.put(f"{BASE}/strm_0000000000000000000000", json={"name": "x"}).status_code == 404
    r = client.put(f"{BASE}/one", json={"name": "x", "uid": "two"})
    assert r.status_code == 400 and r.json()["code"] == "bad_request"
    assert client.put(f"{BASE}/a.b", json={"name": "x"}).status_code == 400


def test_patch_changes_only_given_fields(client: TestClient, stream: dict[str, Any]) -> None:
    r = client.patch(f"{BASE}/orders", json={"metadata": {"k": "v"}})
    assert r.status_code == 200
    assert r.json()["metadata"] == {"k": "v"} and r.json()["name"] == "orders"
    r = client.patch(f"{BASE}/orders", json={"description": "renamed"})
    assert r.json()["name"] == "renamed" and r.json()["metadata"] == {"k": "v"}
    r = client.patch(f"{BASE}/orders", json={"uid": "orders-2"})
    assert r.json()["uid"] == "orders-2"
    assert client.get(f"{BASE}/orders").status_code == 404
    r = client.patch(f"{BASE}/{stream['id']}", json={"uid": None})
    assert r.json()["uid"] is None
    assert client.get(f"{BASE}/orders-2").status_code == 404


def test_patch_to_taken_uid_is_409(client: TestClient, stream: dict[str, Any]) -> None:
    client.post(BASE, json={"name": "other", "uid": "other"})
    r = client.patch(f"{BASE}/other", json={"uid": "orders"})
    assert r.status_code == 409
    assert client.get(f"{BASE}/other").status_code == 200


def test_delete_removes_sinks_and_log(
    client: TestClient, stream: dict[str, Any], redis_client: redis.Redis
) -> None:
    sink = client.post(f"{BASE}/orders/sink", json=sink_body(uid="s1")).json()
    assert client.post(f"{BASE}/orders/events", json=events_body(2)).status_code == 202
    assert redis_client.exists(f"ss:log:{stream['id']}")
    r = client.delete(f"{BASE}/orders")
    assert r.status_code == 204 and r.content == b""
    assert client.get(f"{BASE}/{stream['id']}").status_code == 404
    assert not redis_client.exists(f"ss:log:{stream['id']}")
    assert not redis_client.exists(f"ss:sink:{sink['id']}")
    assert redis_client.keys("ss:stream*") == []
    assert client.get(BASE).json()["data"] == []
    # the uid is free again
    assert client.post(BASE, json={"name": "orders", "uid": "orders"}).status_code == 201
