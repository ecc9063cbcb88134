"""streamsink -> rotel (a real OpenTelemetry collector, PyPI ``rotel``) -> rotel's
OTLP/HTTP exporter -> a receiver on 127.0.0.1, for each wire encoding.

A recording pass-through in front of rotel keeps the exact bytes streamsink
sent; the spans rotel exported must equal them field by field and type by
type (IDs, parent, name, kind, nanosecond times, typed attributes, status,
events, links, resource, scope). Independent anchors computed here from the
sample events (IDs by the SHA-256 rule, times parsed from the ISO strings)
make sure what was sent is right in the first place.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.engine.conftest import Api, Receiver, Workers, wait_until
from tests.helpers.receiver_server import ReceiverServer
from tests.interop.otlp_view import parse_recorded, span_views
from tests.interop.rotel_agent import RotelAgent

TRANSFORMS = Path(__file__).resolve().parents[2] / "transforms"
View = dict[str, dict[str, Any]]


def tid(stream: str, key: str) -> str:
    return hashlib.sha256(f"{stream}\x00{key}".encode()).digest()[:16].hex()


def sid(stream: str, key: str) -> str:
    return hashlib.sha256(f"{stream}\x00{key}".encode()).digest()[:8].hex()


def iso_ns(text: str) -> str:
    """An ISO 8601 time as Unix nanoseconds (OTLP's decimal string), exactly."""
    m = re.fullmatch(r"(.+T\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)", text)
    assert m, text
    base = datetime.fromisoformat(m[1] + m[3].replace("Z", "+00:00"))
    return str(int(base.timestamp()) * 10**9 + int((m[2] or "0").ljust(9, "0")))


def s(value: str) -> dict[str, Any]:
    return {"stringValue": value}


def i(value: int) -> dict[str, Any]:
    return {"intValue": str(value)}


def d(value: float) -> dict[str, Any]:
    return {"doubleValue": value}


def b(value: bool) -> dict[str, Any]:
    return {"boolValue": value}


def load(name: str) -> list[dict[str, Any]]:
    return json.loads((TRANSFORMS / "samples" / name).read_text())


def payload(event: dict[str, Any]) -> dict[str, Any]:
    p = event["payload"]
    return json.loads(p) if isinstance(p, str) else p


# --- the flows: a handler, its events, and what the spans must show ------------------


@dataclass
class Flow:
    uid: str
    code: str
    events: list[dict[str, Any]]
    check: Callable[[str, list[dict[str, Any]], View], None]


def check_webhook(stream: str, events: list[dict[str, Any]], views: View) -> None:
    for event in events:
        p = payload(event)
        http = event["eventType"] == "http.attempt"
        v = views[sid(stream, p["attemptId"] + ("/http" if http else ""))]
        assert v["name"] == event["eventType"]
        assert v["kind"] == ("SPAN_KIND_CLIENT" if http else "SPAN_KIND_INTERNAL")
        assert v["traceId"] == tid(stream, p["msgId"])
        assert v.get("parentSpanId") == (sid(stream, p["attemptId"]) if http else None)
        assert (v["startTimeUnixNano"], v["endTimeUnixNano"]) == (
            iso_ns(p["startTime"]),
            iso_ns(p["endTime"]),
        )
        assert v["attributes"]["msgId"] == s(p["msgId"])
        assert v["attributes"]["attemptId"] == s(p["attemptId"])
        code = p.get("responseStatusCode")
        if code is not None:
            assert v["attributes"]["http.response.status_code"] == i(code)
            ok = 200 <= code < 300
            assert v["status"] == (
                {"code": "STATUS_CODE_OK"}
                if ok
                else {"code": "STATUS_CODE_ERROR", "message": f"HTTP {code}"}
            )
        assert v["resource"]["attributes"]["service.name"] == s("my.webhook.service")
        assert v["scope"] == {"name": "my.webhook.scope", "version": "2.0"}


def check_llm(stream: str, events: list[dict[str, Any]], views: View) -> None:
    for event in events:
        p = payload(event)
        if event["eventType"] == "agent.run":
            v = views[sid(stream, p["runId"])]
            assert v["name"] == f"invoke_agent {p['agentName']}"
            assert v["kind"] == "SPAN_KIND_INTERNAL"
            assert "parentSpanId" not in v
            assert v["attributes"]["gen_ai.agent.name"] == s(p["agentName"])
        else:
            v = views[sid(stream, p["callId"])]
            assert v["name"] == f"{p.get('operation', 'chat')} {p['requestModel']}"
            assert v["kind"] == "SPAN_KIND_CLIENT"
            assert v["parentSpanId"] == sid(stream, p["runId"])
            attrs = v["attributes"]
            assert attrs["gen_ai.request.model"] == s(p["requestModel"])
            assert attrs["gen_ai.provider.name"] == s(p["provider"])
            assert attrs["gen_ai.usage.input_tokens"] == i(p["usage"]["inputTokens"])
            assert attrs["gen_ai.usage.output_tokens"] == i(p["usage"]["outputTokens"])
            if "temperature" in p:
                assert attrs["gen_ai.request.temperature"] == d(p["temperature"])
                assert attrs["gen_ai.request.max_tokens"] == i(p["maxTokens"])
            if "costUsd" in p:
                assert attrs["gen_ai.usage.cost"] == d(p["costUsd"])
            if "error" in p:
                assert v["status"] == {
                    "code": "STATUS_CODE_ERROR",
                    "message": p["error"]["message"],
                }
        # every span of a run is in the run's trace (llm.calls inherit it)
        assert v["traceId"] == tid(stream, p["runId"])
        assert (v["startTimeUnixNano"], v["endTimeUnixNano"]) == (
            iso_ns(p["startTime"]),
            iso_ns(p["endTime"]),
        )
        assert v["resource"]["attributes"]["service.name"] == s("llm.gateway")
        assert v["scope"]["name"] == "streamsink.gen-ai"


#: Every attribute type, span kinds, status, span events and links.
TYPED_HANDLER = """
function handler(input) {
  return {
    config: { serviceName: "typed.service", scope: { name: "typed.scope", version: "0.1" },
              resourceAttributes: { "deployment.environment": "test", "host.cpus": 2 } },
    spans: input.events.map(function (e) {
      var p = e.payload;
      return {
        name: "job " + p.id, kind: p.kind, traceIdKey: "job-trace", spanIdKey: "job-" + p.id,
        parentSpanIdKey: p.parent ? "job-" + p.parent : undefined,
        startTime: p.start, endTime: p.end,
        attributes: { "i": p.n, "neg": -7, "d": 2.5, "tiny": 1e-9, "yes": true, "no": false,
                      "str": "tëxt", "arr": ["a", "b"], "nested": { "k": 1 } },
        status: p.fail ? { code: "ERROR", message: "boom" } : { code: "OK" },
        events: [{ name: "retry", time: p.start, attributes: { "attempt": 2 } }],
        links: p.parent ? [{ traceIdKey: "other", spanIdKey: "other-span",
                             attributes: { "why": "caused-by" } }] : []
      };
    })
  };
}
"""

TYPED_EVENTS = [
    {
        "eventType": "job",
        "payload": {
            "id": 1,
            "kind": "SERVER",
            "n": 42,
            "start": "2025-01-02T03:04:05.123456789Z",
            "end": "2025-01-02T03:04:06.000000001Z",
        },
    },
    {
        "eventType": "job",
        "payload": {
            "id": 2,
            "parent": 1,
            "kind": "producer",
            "n": 9007199254740991,
            "fail": True,
            "start": "2025-01-02T04:04:05.5+01:00",
            "end": "2025-01-02T03:04:05.999999999Z",
        },
    },
]


def check_typed(stream: str, events: list[dict[str, Any]], views: View) -> None:
    for event in events:
        p = payload(event)
        v = views[sid(stream, f"job-{p['id']}")]
        assert v["name"] == f"job {p['id']}"
        assert v["kind"] == f"SPAN_KIND_{p['kind'].upper()}"
        assert v["traceId"] == tid(stream, "job-trace")
        assert (v["startTimeUnixNano"], v["endTimeUnixNano"]) == (
            iso_ns(p["start"]),
            iso_ns(p["end"]),
        )
        assert v["attributes"] == {
            "i": i(p["n"]),
            "neg": i(-7),
            "d": d(2.5),
            "tiny": d(1e-9),
            "yes": b(True),
            "no": b(False),
            "str": s("tëxt"),
            "arr": {"arrayValue": {"values": [s("a"), s("b")]}},
            "nested.k": i(1),
        }
        assert v["events"] == [
            {"name": "retry", "timeUnixNano": iso_ns(p["start"]), "attributes": {"attempt": i(2)}}
        ]
        if "parent" in p:
            assert v["parentSpanId"] == sid(stream, f"job-{p['parent']}")
            assert v["status"] == {"code": "STATUS_CODE_ERROR", "message": "boom"}
            assert [(x["traceId"], x["spanId"], x["attributes"]) for x in v["links"]] == [
                (tid(stream, "other"), sid(stream, "other-span"), {"why": s("caused-by")})
            ]
        else:
            assert v["status"] == {"code": "STATUS_CODE_OK"}
            assert "links" not in v
        assert v["resource"]["attributes"] == {
            "service.name": s("typed.service"),
            "deployment.environment": s("test"),
            "host.cpus": i(2),
        }
        assert v["scope"] == {"name": "typed.scope", "version": "0.1"}


def flows() -> list[Flow]:
    # The docs' webhook events, plus a message retried after a 503 (int status
    # attribute, ERROR then OK status, nanosecond times).
    retried = [
        ("message.attempt", "atmpt_3", None, "2025-08-19T15:25:00.100000001Z", "01.2Z"),
        ("http.attempt", "atmpt_3", 503, "2025-08-19T15:25:00.200000002Z", "00.9Z"),
        ("message.attempt", "atmpt_4", None, "2025-08-19T15:25:02.000000003Z", "03.000000009Z"),
        ("http.attempt", "atmpt_4", 200, "2025-08-19T15:25:02.123456789Z", "02.987654321Z"),
    ]
    webhook = load("svix-webhook-attempts.events.json") + [
        {
            "eventType": kind,
            "payload": json.dumps(
                {
                    "appId": "app_379",
                    "msgId": "msg_9000",
                    "attemptId": attempt,
                    "url": "https://hooks.invalid/in",
                    "startTime": start,
                    "endTime": start[:17] + end,
                }
                | ({"responseStatusCode": code} if code else {})
            ),
        }
        for kind, attempt, code, start, end in retried
    ]
    return [
        Flow(
            "webhooks",
            (TRANSFORMS / "svix-webhook-attempts.js").read_text(),
            webhook,
            check_webhook,
        ),
        Flow(
            "llm", (TRANSFORMS / "gen-ai.js").read_text(), load("llm-calls.events.json"), check_llm
        ),
        Flow("typed", TYPED_HANDLER, TYPED_EVENTS, check_typed),
    ]


# --- the round trip ----------------------------------------------------------------

CASES = [
    # (sink config beyond the url, expected Content-Type, expected Content-Encoding)
    pytest.param({}, "application/json", None, id="json-default"),
    pytest.param({"encoding": "json", "compression": "gzip"}, "application/json", "gzip",
                 id="json-gzip"),
    pytest.param({"encoding": "protobuf"}, "application/x-protobuf", None,
                 id="protobuf"),
    pytest.param({"encoding": "protobuf", "compression": "gzip"}, "application/x-protobuf",
                 "gzip", id="protobuf-gzip"),
]  # fmt: skip


def views_of(server: ReceiverServer) -> View:
    with server._lock:
        requests = [r for r in server.requests if r.path.startswith("/v1/traces")]
    return span_views(parse_recorded(r) for r in requests)


@pytest.mark.parametrize(("extra", "media", "content_encoding"), CASES)
def test_round_trip_through_rotel(
    extra: dict[str, str],
    media: str,
    content_encoding: str | None,
    api: Api,
    workers: Workers,
    receiver: Receiver,
    collector: tuple[RotelAgent, ReceiverServer],
) -> None:
    agent, proxy = collector
    # Both of rotel's receivers (OTLP/gRPC and OTLP/HTTP) on 127.0.0.1 and nothing else.
    assert agent.listening() == {("127.0.0.1", agent.grpc_port), ("127.0.0.1", agent.http_port)}
    workers.start()
    streams: list[tuple[Flow, str]] = []
    for flow in flows():
        stream = api.stream(flow.uid)
        body = {"type": "otelTracing", "config": {"url": proxy.traces_url, **extra}}
        sink = api.call("POST", f"/stream/{stream}/sink", 201, json=body)
        config = sink["config"]
        assert (config["encoding"], config["compression"]) == (
            extra.get("encoding", "auto"),
            extra.get("compression", "none"),
        )
        api.transformation(stream, sink["id"], flow.code)
        events = [
            {"eventType": e["eventType"], "payload": e["payload"]}
            if isinstance(e["payload"], str)
            else {"eventType": e["eventType"], "payload": json.dumps(e["payload"])}
            for e in flow.events
        ]
        api.call("POST", f"/stream/{stream}/events", 202, json={"events": events})
        streams.append((flow, stream))
    total = sum(len(flow.events) for flow, _ in streams)

    got = wait_until(
        lambda: len(v := views_of(receiver)) >= total and v,
        30,
        f"{total} spans exported by rotel (its log is printed below)",
    )
    sent = views_of(proxy)
    # What the receiver got came out of rotel's exporter (protobuf, gzip by default).
    for recorded in receiver.requests:
        assert recorded.headers.get("user-agent", "").startswith("Rotel"), recorded.headers
        assert recorded.headers["content-type"] == "application/x-protobuf"
    for recorded in proxy.requests:
        assert recorded.headers["content-type"].split(";")[0] == media
        assert recorded.headers.get("content-encoding") == content_encoding
    assert len(sent) == total
    for flow, stream in streams:
        flow.check(stream, flow.events, sent)
    # What came out of rotel is what streamsink sent, field by field.
    assert got.keys() == sent.keys()
    for span_id, view in sent.items():
        assert got[span_id] == view, f"span {view['name']} ({span_id}) changed in transit"
    # And every sink is still healthy.
    for _, stream in streams:
        for sink in api.call("GET", f"/stream/{stream}/sink", 200)["data"]:
            assert sink["status"] == "enabled", sink
