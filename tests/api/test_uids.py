"""Uids follow Svix's rule (1..60 of ``[a-zA-Z0-9_-]``, a stream's not starting
with ``strm_``, a sink's not with ``sink_``), so ``.`` and ``..``, which a URL
path cannot carry, are refused; event-type names keep their dots but are not
``.`` or ``..``. Uids stored under the older rule stay reachable."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from streamsink.storage import streams as store_streams

from .util import sink_body

S = "/api/v1/stream"
BAD_UIDS = [".", "..", "a.b", "x" * 61, "", "a b", "ü", "a\n", "a/b"]


@pytest.mark.parametrize("uid", [*BAD_UIDS, "strm_x", "event-type"])
def test_bad_stream_uid_is_422(client: TestClient, stream: dict[str, Any], uid: str) -> None:
    r = client.post(S, json={"name": "x", "uid": uid})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["body", "uid"]
    r = client.patch(f"{S}/{stream['id']}", json={"uid": uid})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "uid"]
    r = client.put(f"{S}/{stream['id']}", json={"name": "x", "uid": uid})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "uid"]


@pytest.mark.parametrize("uid", [*BAD_UIDS, "sink_x"])
def test_bad_sink_uid_is_422(
    client: TestClient, stream: dict[str, Any], sink: dict[str, Any], uid: str
) -> None:
    base = f"{S}/{stream['id']}/sink"
    r = client.post(base, json=sink_body(uid=uid))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "uid"], r.text
    r = client.patch(f"{base}/{sink['id']}", json={"uid": uid})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "uid"]


def test_svix_rule_accepts(client: TestClient, stream: dict[str, Any]) -> None:
    # 60 characters; the other resource's prefix is a plain uid (as in Svix).
    for uid in ("x" * 60, "A-b_9", "sink_not_a_stream_prefix"):
        r = client.post(S, json={"name": "x", "uid": uid})
        assert r.status_code == 201, r.text
        assert client.get(f"{S}/{uid}").json()["id"] == r.json()["id"]
    r = client.post(f"{S}/{stream['id']}/sink", json=sink_body(uid="strm_is_fine_here"))
    assert r.status_code == 201, r.text
    assert client.get(f"{S}/{stream['id']}/sink/strm_is_fine_here").status_code == 200


def test_upsert_by_path_applies_the_rule(client: TestClient, stream: dict[str, Any]) -> None:
    r = client.put(f"{S}/with.dot", json={"name": "x"})
    assert r.status_code == 400 and "uid must match" in r.json()["detail"], r.text
    r = client.put(f"{S}/{stream['id']}/sink/with.dot", json=sink_body())
    assert r.status_code == 400 and "uid must match" in r.json()["detail"], r.text
    assert client.put(f"{S}/{'y' * 61}", json={"name": "x"}).status_code == 400
    assert client.put(f"{S}/fine-uid", json={"name": "x"}).status_code == 201


def test_a_uid_stored_under_the_older_rule_stays_reachable(
    client: TestClient, redis_client: redis.Redis
) -> None:
    record = store_streams.create_stream(redis_client, name="old", uid="legacy.v1", metadata={})
    assert client.get(f"{S}/legacy.v1").json()["id"] == record.id
    r = client.patch(f"{S}/legacy.v1", json={"name": "renamed"})
    assert r.status_code == 200 and r.json()["uid"] == "legacy.v1"


@pytest.mark.parametrize("name", [".", ".."])
def test_dot_event_type_names_are_422(client: TestClient, name: str) -> None:
    r = client.post(f"{S}/event-type", json={"name": name})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "name"], r.text


@pytest.mark.parametrize("name", [".", ".."])
def test_dot_event_type_in_events_and_filters(
    client: TestClient, stream: dict[str, Any], name: str
) -> None:
    body = {"events": [{"eventType": name, "payload": "p"}]}
    fast = client.post(f"{S}/orders/events", json=body)
    route = client.post(f"{S}/orders/events?lane=route", json=body)
    assert fast.status_code == 422 and route.json() == fast.json(), fast.text
    assert fast.json()["detail"][0]["loc"] == ["body", "events", 0, "eventType"]
    r = client.post(f"{S}/orders/sink", json=sink_body(eventTypes=[name]))
    assert r.status_code == 422, r.text


def test_dotted_event_type_names_still_work(client: TestClient, stream: dict[str, Any]) -> None:
    assert client.post(f"{S}/event-type", json={"name": "user.signup"}).status_code == 201
    assert client.get(f"{S}/event-type/user.signup").status_code == 200
    body = {"events": [{"eventType": "...", "payload": "p"}]}  # three dots: a name
    assert client.post(f"{S}/orders/events", json=body).status_code == 202
