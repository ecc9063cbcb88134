"""Build OTLP trace requests with opentelemetry-proto, independently of streamsink."""

from __future__ import annotations

import base64
import gzip
from typing import Any

import orjson
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

TRACE_A = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
TRACE_B = bytes.fromhex("4bf92f3577b34da6a3ce929d0e0e4736")


def span_id(n: int) -> bytes:
    return (n + 1).to_bytes(8, "big")


def any_value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, list):
        out = AnyValue()
        out.array_value.values.extend(any_value(v) for v in value)
        return out
    return AnyValue(string_value=str(value))


def kvs(attrs: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in attrs.items()]


def make_span(
    name: str,
    trace_id: bytes = TRACE_A,
    sid: bytes | int = 0,
    parent: bytes | int | None = None,
    *,
    start: int = 1_700_000_000_000_000_000,
    duration: int = 1_000_000,
    kind: int = Span.SPAN_KIND_INTERNAL,
    attributes: dict[str, Any] | None = None,
) -> Span:
    sid = span_id(sid) if isinstance(sid, int) else sid
    parent = span_id(parent) if isinstance(parent, int) else parent
    span = Span(
        trace_id=trace_id,
        span_id=sid,
        parent_span_id=parent or b"",
        name=name,
        kind=kind,
        start_time_unix_nano=start,
        end_time_unix_nano=start + duration,
    )
    span.attributes.extend(kvs(attributes or {}))
    return span


def make_request(
    spans: list[Span], service: str = "checkout", scope: str = "tests"
) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.extend(kvs({"service.name": service}))
    ss = rs.scope_spans.add()
    ss.scope.name = scope
    ss.scope.version = "1.0"
    ss.spans.extend(spans)
    return request


def sample_request() -> ExportTraceServiceRequest:
    """A root SERVER span and a child with attributes of each kind."""
    return make_request(
        [
            make_span("root", sid=0, kind=Span.SPAN_KIND_SERVER, attributes={"http.status": 200}),
            make_span(
                "child",
                sid=1,
                parent=0,
                start=1_700_000_000_000_000_100,
                attributes={"ok": True, "ratio": 0.5, "tags": ["a", "b"], "s": "x"},
            ),
        ]
    )


def to_json(request: ExportTraceServiceRequest) -> bytes:
    """OTLP/HTTP JSON: protobuf JSON mapping, with IDs as hex instead of base64."""
    doc = json_format.MessageToDict(request)
    for rs in doc.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return orjson.dumps(doc)


def to_protobuf(request: ExportTraceServiceRequest) -> bytes:
    return request.SerializeToString()


def gz(data: bytes) -> bytes:
    return gzip.compress(data)
