"""Simulate under the handler limits: the result's size (422 naming
``STREAMSINK_JS_MAX_OUTPUT_BYTES``), its depth (one rule, 200 levels) and
concurrent runs (429 past ``STREAMSINK_SIMULATE_CONCURRENCY``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from streamsink.api.app import create_app
from streamsink.settings import Settings
from streamsink.transform.slots import api_slots

from .util import AUTH, TOKEN

SIMULATE = "/api/v1/stream/transformations/simulate"
EVENTS = [{"eventType": "e", "payload": {"n": 1}}]
DOUBLING = (
    "function handler() { var s = 'x'; for (var k = 0; k < 27; k++) s += s;"
    " return {spans: [{name: 'a', attributes: {big: s}}]}; }"
)


@pytest.fixture
def make_client(redis_client: redis.Redis) -> Iterator[Callable[..., TestClient]]:
    opened: list[TestClient] = []

    def make(**settings: Any) -> TestClient:
        app = create_app(Settings(auth_token=TOKEN, **settings), redis_client)
        client = TestClient(app, headers=AUTH, raise_server_exceptions=False)
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


def test_output_over_the_limit_is_a_422_naming_the_setting(
    make_client: Callable[..., TestClient],
) -> None:
    """The issue's handler answered 200 with a 537 MB body (2^28); now a 422
    ``{code, detail}`` at the default limit (js_memory_mb / 4 MiB)."""
    client = make_client(js_memory_mb=64)
    r = client.post(SIMULATE, json={"code": DOUBLING, "events": EVENTS})
    assert r.status_code == 422, r.text[:300]
    assert r.json() == {
        "code": "output_too_large",
        "detail": "the handler's result is at least 134217748 bytes of JSON, over the 16 MiB"
        " output limit (STREAMSINK_JS_MAX_OUTPUT_BYTES=16777216)",
    }
    assert len(r.content) < 1000


def test_output_limit_is_the_setting(make_client: Callable[..., TestClient]) -> None:
    code = "function handler() { return {spans: [{name: 'x'.repeat(2000)}]}; }"
    small = make_client(js_max_output_bytes=1024)
    r = small.post(SIMULATE, json={"code": code, "events": EVENTS})
    assert r.status_code == 422 and "STREAMSINK_JS_MAX_OUTPUT_BYTES=1024" in r.json()["detail"]
    r = make_client().post(SIMULATE, json={"code": code, "events": EVENTS})
    assert r.status_code == 200, r.text


def _deep(levels: int) -> str:
    return (
        "function handler() { var o = {}, c = o;"
        f" for (var i = 0; i < {levels}; i++) {{ c.a = {{}}; c = c.a; }}"
        " return {spans: [{name: 'n', attributes: o}]}; }"
    )


@pytest.mark.parametrize("levels", [198, 240, 260, 999])
def test_depth_past_the_rule_is_a_4xx_naming_the_span(
    make_client: Callable[..., TestClient], levels: int
) -> None:
    """260-999 levels gave 500 (pydantic's serialisation depth), 201-240 passed;
    now one rule: a value at most 200 levels below the result (197 under
    spans[0].attributes), else a 400 naming the span and field."""
    client = make_client()
    r = client.post(SIMULATE, json={"code": _deep(197), "events": EVENTS})
    assert r.status_code == 200, r.text[:300]
    r = client.post(SIMULATE, json={"code": _deep(levels), "events": EVENTS})
    assert r.status_code == 400, r.text[:300]
    assert r.json() == {
        "code": "output_error",
        "detail": "spans[0].attributes.a...: nested deeper than 200 levels",
    }


LOOP = "function handler() { for (;;) {} }"
ALLOC = "function handler() { var a = []; for (;;) a.push('x'.repeat(1e5) + a.length); }"


def test_runs_past_the_concurrency_cap_get_429_with_retry_after(
    make_client: Callable[..., TestClient],
) -> None:
    """Parallel simulate calls took an API to 3.1 GB: past
    STREAMSINK_SIMULATE_CONCURRENCY running handlers a call is refused at once
    (429 ``{code, detail}`` + Retry-After), and the slot frees when V8 is done."""
    client = make_client(simulate_concurrency=1, js_timeout_ms=3000)
    slots = api_slots(1)
    answers: list[Any] = []
    busy = threading.Thread(
        target=lambda: answers.append(client.post(SIMULATE, json={"code": LOOP, "events": EVENTS}))
    )
    busy.start()
    deadline = time.monotonic() + 10
    while slots.taken() == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert slots.taken() == 1
    r = client.post(
        SIMULATE, json={"code": "function handler() { return {spans: []}; }", "events": EVENTS}
    )
    assert r.status_code == 429, r.text
    assert r.headers["Retry-After"] == "3"
    assert r.json() == {
        "code": "rate_limited",
        "detail": "1 handler runs are already in progress in this process"
        " (STREAMSINK_SIMULATE_CONCURRENCY); try again shortly",
    }
    busy.join(30)
    assert answers[0].status_code == 400 and answers[0].json()["code"] == "handler_timeout"
    assert slots.taken() == 0
    r = client.post(SIMULATE, json={"code": None, "events": EVENTS})
    assert r.status_code == 200, r.text


def test_parallel_allocation_loops_meet_the_memory_limit(
    make_client: Callable[..., TestClient],
) -> None:
    """8 parallel allocation loops: those admitted end on the memory limit (not
    the time limit, as 16 unbounded ones did), the rest get 429."""
    client = make_client(simulate_concurrency=2, js_timeout_ms=20000, js_memory_mb=32)
    codes: list[tuple[int, str]] = []

    def call() -> None:
        r = client.post(SIMULATE, json={"code": ALLOC, "events": EVENTS})
        codes.append((r.status_code, r.json()["code"]))

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(codes) == 8
    assert set(codes) <= {(400, "handler_memory"), (429, "rate_limited")}, codes
    assert (400, "handler_memory") in codes and (429, "rate_limited") in codes
