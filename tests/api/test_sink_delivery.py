"""``.../attempt`` and ``.../skip`` input checks (no worker: the engine tests in
tests/engine/test_sink_controls.py cover what they do to delivery)."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from streamsink.storage import attempts, eventlog

from .util import events_body


@pytest.fixture
def base(stream: dict[str, Any], sink: dict[str, Any]) -> str:
    return f"/api/v1/stream/{stream['id']}/sink/{sink['id']}"


@pytest.mark.parametrize("iterator", ["abc", "atmpt_", "atmpt_XYZ123456789", "1700000000000-0"])
def test_attempt_list_refuses_a_malformed_iterator(
    client: TestClient, base: str, iterator: str
) -> None:
    r = client.get(f"{base}/attempt", params={"iterator": iterator})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["query", "iterator"]


def test_attempt_list_pages_with_its_own_iterators(
    client: TestClient, base: str, sink: dict[str, Any], redis_client: redis.Redis
) -> None:
    made = [attempts.Attempt(outcome="success", spans_sent=i, duration_ms=1.0) for i in range(3)]
    for attempt in made:
        attempts.record(redis_client, sink["id"], attempt)
    first = client.get(f"{base}/attempt", params={"limit": 2}).json()
    assert [a["spansSent"] for a in first["data"]] == [2, 1] and not first["done"]
    rest = client.get(f"{base}/attempt", params={"limit": 2, "iterator": first["iterator"]})
    assert rest.status_code == 200 and [a["spansSent"] for a in rest.json()["data"]] == [0]


def test_skip_needs_an_iterator_and_one_value(
    client: TestClient, base: str, stream: dict[str, Any]
) -> None:
    client.post(f"/api/v1/stream/{stream['id']}/events", json=events_body(2))
    last = client.get(base).json()["currentIterator"]
    assert last == "0-0"
    for kwargs in ({}, {"json": {}}, {"json": {"iterator": None}}):
        r = client.post(f"{base}/skip", **kwargs)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "iterator"]
    r = client.post(f"{base}/skip", params={"iterator": "0-0"}, json={"iterator": "1-0"})
    assert r.status_code == 422 and "differs" in r.json()["detail"][0]["msg"]
    for bad in ("abc", "1-x", "-1-0", "18446744073709551616-0"):
        r = client.post(f"{base}/skip", params={"iterator": bad})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "iterator"]
        r = client.post(f"{base}/skip", json={"iterator": bad})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "iterator"]


def test_skip_takes_only_positions_of_the_log(
    client: TestClient, base: str, stream: dict[str, Any], redis_client: redis.Redis
) -> None:
    # An empty log: only 0-0 (its start and its end).
    r = client.post(f"{base}/skip", json={"iterator": "1-0"})
    assert r.status_code == 422 and "past the end" in r.json()["detail"][0]["msg"], r.text
    assert client.post(f"{base}/skip", json={"iterator": "0-0"}).status_code == 202
    client.post(f"/api/v1/stream/{stream['id']}/events", json=events_body(3))
    ids = [e.id for e in eventlog.parse_entries(redis_client.xrange(f"ss:log:{stream['id']}"))]
    for target in (ids[1], ids[2], ids[0], "0-0"):
        r = client.post(f"{base}/skip", params={"iterator": target})
        assert r.status_code == 202 and r.json()["currentIterator"] == target, r.text
    ms, seq = ids[0].split("-")
    padded = f"000{ms}-{seq}"  # the same id, written with leading zeros
    r = client.post(f"{base}/skip", json={"iterator": padded})
    assert r.status_code == 202 and r.json()["currentIterator"] == ids[0]
    for past in (f"{int(ids[2].split('-')[0]) + 1}-0", "9999999999999-0"):
        r = client.post(f"{base}/skip", json={"iterator": past})
        assert r.status_code == 422 and "past the end" in r.json()["detail"][0]["msg"]
    assert client.get(base).json()["currentIterator"] == ids[0]


def test_skip_to_the_sinks_own_cursor_is_allowed_after_a_trim(
    client: TestClient, base: str, stream: dict[str, Any], redis_client: redis.Redis
) -> None:
    """Its current cursor is always a position the sink may be left at (a way
    to enable a failed sink where it stands), even once that event is trimmed."""
    client.post(f"/api/v1/stream/{stream['id']}/events", json=events_body(3))
    ids = [e.id for e in eventlog.parse_entries(redis_client.xrange(f"ss:log:{stream['id']}"))]
    assert client.post(f"{base}/skip", json={"iterator": ids[1]}).status_code == 202
    redis_client.xdel(f"ss:log:{stream['id']}", ids[2])  # the append's entry: all three
    r = client.post(f"{base}/skip", json={"iterator": ids[1]})
    assert r.status_code == 202 and r.json()["currentIterator"] == ids[1], r.text
    r = client.post(f"{base}/skip", json={"iterator": ids[0]})
    assert r.status_code == 422 and "no event" in r.json()["detail"][0]["msg"], r.text


def test_force_retry_answers_204_without_a_body_as_svix(
    client: TestClient, base: str, sink: dict[str, Any], redis_client: redis.Redis
) -> None:
    from streamsink.storage import sinks as store_sinks

    store_sinks.update_sink_state(
        redis_client, sink["id"], status="disabled", failure_reason="HTTP 400: bad"
    )
    r = client.post(f"{base}/force-retry")
    assert r.status_code == 204 and r.content == b"", r.text
    after = client.get(base).json()
    assert after["status"] == "retrying" and after["nextRetryAt"] is None
    # a sink a user disabled stays so: 409 {code, detail}
    store_sinks.update_sink_state(redis_client, sink["id"], status="disabled", failure_reason=None)
    r = client.post(f"{base}/force-retry")
    assert r.status_code == 409 and r.json()["code"] == "conflict", r.text
    r = client.post(base.rsplit("/", 1)[0] + "/sink_nope/force-retry")
    assert r.status_code == 404 and set(r.json()) == {"code", "detail"}


def test_attempts_as_svix_shapes_them(
    client: TestClient, base: str, sink: dict[str, Any], redis_client: redis.Redis
) -> None:
    """Svix's ``SinkAttemptOut`` fields (status as the SDK's MessageStatus enums
    read it) beside streamsink's; ``attempt/{id}``; the filters as the SDK
    sends them (``status=2``, ``before``/``after`` as ISO times)."""
    from datetime import UTC, datetime, timedelta

    from svix.models import MessageStatus, MessageStatusText

    ok = attempts.Attempt(
        "success", 4, 12.6, status_code=200, first_event="1-0", last_event="1-3", num_events=4
    )
    bad = attempts.Attempt("retrying", 4, 3.2, status_code=503, error="HTTP 503: down")
    for a in (ok, bad):
        attempts.record(redis_client, sink["id"], a)
    page = client.get(f"{base}/attempt").json()
    first = page["data"][1]
    assert {k: first[k] for k in ("id", "sinkId", "numEvents", "responseDurationMs")} == {
        "id": ok.id,
        "sinkId": sink["id"],
        "numEvents": 4,
        "responseDurationMs": 13,
    }
    assert MessageStatus(first["status"]) is MessageStatus.SUCCESS
    assert MessageStatusText(first["statusText"]) is MessageStatusText.SUCCESS
    assert (first["firstEventId"], first["lastEventId"]) == ("1-0", "1-3")
    assert datetime.fromisoformat(first["timestamp"].replace("Z", "+00:00")).tzinfo
    assert (first["outcome"], first["spansSent"], first["statusCode"]) == ("success", 4, 200)
    assert MessageStatus(page["data"][0]["status"]) is MessageStatus.FAIL
    assert page["data"][0]["error"] == "HTTP 503: down"

    r = client.get(f"{base}/attempt", params={"status": str(MessageStatus.FAIL)})
    assert [a["id"] for a in r.json()["data"]] == [bad.id]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert client.get(f"{base}/attempt", params={"after": future}).json()["data"] == []
    assert len(client.get(f"{base}/attempt", params={"before": future}).json()["data"]) == 2
    for name, value in (("status", "7"), ("before", "yesterday")):
        r = client.get(f"{base}/attempt", params={name: value})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", name]

    one = client.get(f"{base}/attempt/{ok.id}")
    assert one.status_code == 200 and one.json() == first
    r = client.get(f"{base}/attempt/atmpt_0123456789")
    assert r.status_code == 404 and r.json()["code"] == "not_found", r.text
    assert set(r.json()) == {"code", "detail"}
