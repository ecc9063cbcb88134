"""transforms/http-server.js: the exact spans it yields for its sample events
(SERVER spans per request, CLIENT children for downstream calls, IDs from
keys, nanosecond times, attributes with their OTLP types, ERROR rules)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from streamsink.otlp.spans import SPAN_KIND_CLIENT, SPAN_KIND_SERVER
from streamsink.transform.runtime import JsRuntime
from tests.core.test_transforms import run_file, same, sid, tid, view

T0 = 1755617090 * 10**9  # 2025-08-19T15:24:50Z
MS = 1_000_000


@pytest.fixture(scope="module")
def rt() -> Iterator[JsRuntime]:
    runtime = JsRuntime(timeout_ms=1000, memory_mb=64, cache_size=8)
    yield runtime
    runtime.close()


HTTP = "strm_http"


def test_http_server(rt: JsRuntime) -> None:
    b = run_file(rt, "http-server.js", "http-server.events.json", HTTP).batch
    assert (b.service_name, b.scope_name, b.scope_version) == (
        "my-web-app",
        "streamsink.http-server",
        "1.0.0",
    )
    req1, call1, req2, call2, req3 = (view(s) for s in b.spans)
    same(
        req1,
        {
            "name": "GET /api/orders/:id",
            "kind": SPAN_KIND_SERVER,
            "traceId": tid(HTTP, "req_1"),
            "spanId": sid(HTTP, "req_1"),
            "parentSpanId": "",
            "start": T0 + 1,
            "end": T0 + 42 * MS + 1,
            "attributes": {
                "http.request.method": "GET",
                "http.method": "GET",
                "http.route": "/api/orders/:id",
                "url.path": "/api/orders/42",
                "url.query": "expand=items",
                "http.target": "/api/orders/42?expand=items",
                "url.scheme": "https",
                "server.address": "shop.example.com",
                "http.response.status_code": 200,
                "http.status_code": 200,
                "user_agent.original": "curl/8.5.0",
                "client.address": "203.0.113.7",
            },
            "status": None,
        },
    )
    same(
        call1,
        {
            "name": "GET",
            "kind": SPAN_KIND_CLIENT,
            "traceId": tid(HTTP, "req_1"),
            "spanId": sid(HTTP, "req_1/c1"),
            "parentSpanId": sid(HTTP, "req_1"),
            "start": T0 + 5 * MS,
            "end": T0 + 30 * MS,
            "attributes": {
                "http.request.method": "GET",
                "http.method": "GET",
                "url.full": "http://inventory.internal:8080/items?order=42",
                "http.url": "http://inventory.internal:8080/items?order=42",
                "server.address": "inventory.internal",
                "server.port": 8080,
                "http.response.status_code": 200,
                "http.status_code": 200,
                "peer.service": "inventory",
            },
            "status": None,
        },
    )
    same(
        req2,
        {
            "name": "POST /api/checkout",
            "kind": SPAN_KIND_SERVER,
            "traceId": tid(HTTP, "req_2"),
            "spanId": sid(HTTP, "req_2"),
            "parentSpanId": "",
            "start": T0 + 1000 * MS,
            "end": T0 + 3500 * MS,
            "attributes": {
                "http.request.method": "POST",
                "http.method": "POST",
                "http.route": "/api/checkout",
                "url.path": "/api/checkout",
                "http.target": "/api/checkout",
                "url.scheme": "https",
                "server.address": "shop.example.com",
                "http.response.status_code": 503,
                "http.status_code": 503,
                "error.type": "PaymentsUnavailable",
            },
            "status": (2, "payments timed out"),  # 5xx: ERROR
        },
    )
    same(
        call2,
        {
            "name": "POST /v1/charges",
            "kind": SPAN_KIND_CLIENT,
            "traceId": tid(HTTP, "req_2"),
            "spanId": sid(HTTP, "req_2/c1"),
            "parentSpanId": sid(HTTP, "req_2"),
            "start": T0 + 1100 * MS,
            "end": T0 + 3400 * MS,
            "attributes": {
                "http.request.method": "POST",
                "http.method": "POST",
                "url.full": "https://payments.example.net/v1/charges",
                "http.url": "https://payments.example.net/v1/charges",
                "url.template": "/v1/charges",
                "server.address": "payments.example.net",
                "server.port": 443,
                "http.response.status_code": 504,
                "http.status_code": 504,
                "peer.service": "payments",
                "error.type": "504",
            },
            "status": (2, ""),
        },
    )
    same(
        req3,
        {
            "name": "GET",  # no route: not the raw path
            "kind": SPAN_KIND_SERVER,
            "traceId": tid(HTTP, "req_3"),
            "spanId": sid(HTTP, "req_3"),
            "parentSpanId": "",
            "start": T0 + 5000 * MS,
            "end": T0 + 5003 * MS,
            "attributes": {
                "http.request.method": "GET",
                "http.method": "GET",
                "url.path": "/api/orders/999",
                "http.target": "/api/orders/999",
                "url.scheme": "https",
                "server.address": "shop.example.com",
                "http.response.status_code": 404,
                "http.status_code": 404,
            },
            "status": None,  # a 4xx answer is not a server error
        },
    )
