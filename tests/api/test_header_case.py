"""Sink header names are case-insensitive (RFC 9110): two names that differ only
in case would both be stored and only one sent, so they are a 422 naming both."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from .util import SINK_URL, sink_body

TWINS = {"X-Api-Key": "a", "x-api-key": "b"}


def _assert_names_both(r: Any, loc: list[str]) -> None:
    assert r.status_code == 422, r.text
    error = r.json()["detail"][0]
    assert error["loc"] == loc
    assert "'X-Api-Key'" in error["msg"] and "'x-api-key'" in error["msg"], error


def test_create_and_put_refuse_names_equal_but_for_case(
    client: TestClient, stream: dict[str, Any], sink: dict[str, Any]
) -> None:
    base = f"/api/v1/stream/{stream['id']}/sink"
    body = sink_body(config={"url": SINK_URL, "headers": TWINS})
    _assert_names_both(client.post(base, json=body), ["body", "config", "headers"])
    _assert_names_both(client.put(f"{base}/{sink['id']}", json=body), ["body", "config", "headers"])
    _assert_names_both(client.put(f"{base}/fresh", json=body), ["body", "config", "headers"])
    r = client.patch(f"{base}/{sink['id']}", json={"config": {"headers": TWINS}})
    _assert_names_both(r, ["body", "config", "headers"])
    assert client.get(f"{base}/{sink['id']}/headers").json()["headers"] == {}


@pytest.mark.parametrize("patch", [TWINS, {"X-Api-Key": "a", "x-api-key": None}])
def test_headers_patch_refuses_names_equal_but_for_case(
    client: TestClient, stream: dict[str, Any], sink: dict[str, Any], patch: dict[str, Any]
) -> None:
    path = f"/api/v1/stream/{stream['id']}/sink/{sink['id']}/headers"
    _assert_names_both(client.patch(path, json={"headers": patch}), ["body", "headers"])


def test_headers_patch_replaces_a_stored_name_whatever_its_case(
    client: TestClient, stream: dict[str, Any]
) -> None:
    """Merging with stored headers: a name equal but for case replaces (or with
    null deletes) the stored one; the sink never holds both."""
    base = f"/api/v1/stream/{stream['id']}/sink"
    config = {"url": SINK_URL, "headers": {"X-Team": "one", "X-Keep": "k"}}
    sink = client.post(base, json=sink_body(config=config)).json()
    path = f"{base}/{sink['id']}/headers"
    r = client.patch(path, json={"headers": {"x-team": "two"}})
    assert r.status_code == 200 and r.json()["headers"] == {"X-Keep": "k", "x-team": "two"}
    r = client.patch(path, json={"headers": {"X-KEEP": None}})
    assert r.status_code == 200 and r.json()["headers"] == {"x-team": "two"}


def test_distinct_names_are_kept(client: TestClient, stream: dict[str, Any]) -> None:
    headers = {"X-A": "1", "X-AA": "2", "X-B": "3"}
    body = sink_body(config={"url": SINK_URL, "headers": headers})
    r = client.post(f"/api/v1/stream/{stream['id']}/sink", json=body)
    assert r.status_code == 201 and r.json()["config"]["headers"]["headers"] == headers
