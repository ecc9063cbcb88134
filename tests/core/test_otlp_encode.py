"""OTLP encoding: every body passes the strict OTLP/JSON checker, JSON and
protobuf carry the same spans, splitting keeps every span within the limit."""

from __future__ import annotations

import gzip

import orjson
import pytest
from google.protobuf.json_format import ParseError
from opentelemetry.proto.trace.v1 import trace_pb2

from streamsink.otlp.encode_json import encode_json
from streamsink.otlp.encode_proto import encode_proto
from streamsink.otlp.ids import IdDeriver, assign_traces
from streamsink.otlp.spans import SpanBatch
from streamsink.otlp.split import encode_bodies
from streamsink.transform.validate import validate_output
from tests.core.otlp_strict import OtlpJsonViolation, parse_proto, parse_strict

T0 = "2025-08-19T15:24:53.123456789Z"
T1 = "2025-08-19T15:24:54.000000001Z"


def rich_output(n: int = 3) -> dict:
    spans = [
        {
            "name": "root",
            "kind": "server",
            "startTime": T0,
            "endTime": T1,
            "traceIdKey": "trace-1",
            "spanIdKey": "root",
            "attributes": {
                "s": "text",
                "b": True,
                "i": 42,
                "neg": -7,
                "f": 1.5,
                "big": 2**70,
                "nested": {"a": {"b": "deep"}, "gone": None},
                "arr": [1, 2, 3],
                "mixed": ["x", 1, None, False, 2.5],
                "objs": [{"k": 1}],
                "empty": [],
                "null": None,
                "unicode": "héllo ✓ \U0001f600",
            },
            "status": {"code": "error", "message": "boom"},
            "events": [
                {"name": "exception", "time": T1, "attributes": {"exception.type": "E"}},
                {"name": "bare"},
            ],
            "links": [
                {"traceIdKey": "other", "spanIdKey": "x", "attributes": {"why": "retry"}},
                {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331"},
            ],
        }
    ]
    for i in range(n):
        spans.append(
            {
                "name": f"child-{i}",
                "kind": "CLIENT",
                "startTime": T0,
                "endTime": T1,
                "parentSpanIdKey": "root",
                "spanIdKey": f"c{i}",
                "attributes": {"n": i, "pad": "p" * 50},
                "status": {"code": "OK"},
            }
        )
    return {
        "config": {
            "serviceName": "svc",
            "scope": {"name": "scope", "version": "1.2"},
            "resourceAttributes": {"deployment": {"environment": "test"}},
        },
        "spans": spans,
    }


def make_batch(n: int = 3) -> SpanBatch:
    v = validate_output(rich_output(n), IdDeriver("strm_test"), now_ns=1_000)
    assign_traces(v.batch.spans)
    return v.batch


def test_json_body_is_strict_otlp_and_matches_protobuf() -> None:
    batch = make_batch()
    from_json = parse_strict(encode_json(batch))
    from_proto = parse_proto(encode_proto(batch))
    assert from_json == from_proto
    rs = from_json.resource_spans
    assert len(rs) == 1 and len(rs[0].scope_spans) == 1
    res = {kv.key: kv.value.string_value for kv in rs[0].resource.attributes}
    assert res == {"deployment.environment": "test", "service.name": "svc"}
    ss = rs[0].scope_spans[0]
    assert (ss.scope.name, ss.scope.version) == ("scope", "1.2")
    assert [s.name for s in ss.spans] == ["root", "child-0", "child-1", "child-2"]


def test_round_trip_keeps_every_span_field() -> None:
    batch = make_batch()
    for req in (parse_strict(encode_json(batch)), parse_proto(encode_proto(batch))):
        pspans = req.resource_spans[0].scope_spans[0].spans
        for span, p in zip(batch.spans, pspans, strict=True):
            assert p.trace_id == span.trace_id and p.span_id == span.span_id
            assert p.parent_span_id == span.parent_span_id
            assert p.kind == span.kind
            assert p.start_time_unix_nano == span.start_time_unix_nano == 1755617093123456789
            assert p.end_time_unix_nano == span.end_time_unix_nano == 1755617094000000001
        root = pspans[0]
        assert root.kind == trace_pb2.Span.SPAN_KIND_SERVER
        assert pspans[1].kind == trace_pb2.Span.SPAN_KIND_CLIENT
        assert root.status.code == trace_pb2.Status.STATUS_CODE_ERROR
        assert root.status.message == "boom"
        assert pspans[1].status.code == trace_pb2.Status.STATUS_CODE_OK
        attrs = {kv.key: kv.value for kv in root.attributes}
        assert attrs["s"].string_value == "text"
        assert attrs["b"].bool_value is True
        assert attrs["i"].int_value == 42 and attrs["neg"].int_value == -7
        assert attrs["f"].double_value == 1.5
        assert attrs["big"].double_value == float(2**70)
        assert attrs["nested.a.b"].string_value == "deep"
        assert [v.int_value for v in attrs["arr"].array_value.values] == [1, 2, 3]
        mixed = attrs["mixed"].array_value.values
        assert [v.WhichOneof("value") for v in mixed] == [
            "string_value", "int_value", None, "bool_value", "double_value",
        ]  # fmt: skip
        assert attrs["objs"].string_value == '[{"k":1}]'
        assert attrs["empty"].WhichOneof("value") == "array_value"
        assert attrs["unicode"].string_value == "héllo ✓ \U0001f600"
        assert "null" not in attrs and "nested.gone" not in attrs
        assert [e.name for e in root.events] == ["exception", "bare"]
        assert root.events[1].time_unix_nano == root.start_time_unix_nano
        assert root.events[0].attributes[0].key == "exception.type"
        assert root.links[0].trace_id == IdDeriver("strm_test").trace_id("other")
        assert root.links[1].span_id.hex() == "b7ad6b7169203331"
        assert root.links[0].attributes[0].value.string_value == "retry"


def test_json_uses_otlp_json_conventions() -> None:
    body = orjson.loads(encode_json(make_batch(1)))
    span = body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert span["kind"] == 2 and span["status"] == {"code": 2, "message": "boom"}
    assert span["startTimeUnixNano"] == "1755617093123456789"
    assert len(span["traceId"]) == 32 and len(span["spanId"]) == 16
    ints = {a["key"]: a["value"] for a in span["attributes"]}
    assert ints["i"] == {"intValue": "42"}
    assert ints["f"] == {"doubleValue": 1.5}
    assert "parentSpanId" not in span  # root: omitted, not ""


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: s.update(traceId="00000000000000000000000000000000"),
        lambda s: s.update(spanId="ABCDEF0123456789"),
        lambda s: s.update(spanId="abc"),
        lambda s: s.update(kind="SPAN_KIND_SERVER"),
        lambda s: s.update(startTimeUnixNano=1),
        lambda s: s.update(start_time_unix_nano="1"),
        lambda s: s.update(bogusField=1),
    ],
)
def test_strict_checker_rejects_violations(mutate) -> None:
    body = orjson.loads(encode_json(make_batch(1)))
    mutate(body["resourceSpans"][0]["scopeSpans"][0]["spans"][0])
    with pytest.raises((OtlpJsonViolation, ParseError)):
        parse_strict(body)


@pytest.mark.parametrize("encoding", ["json", "protobuf"])
@pytest.mark.parametrize("gzip_body", [False, True])
def test_split_keeps_order_and_limit(encoding: str, gzip_body: bool) -> None:
    batch = make_batch(40)
    whole = encode_bodies(batch, encoding=encoding)  # type: ignore[arg-type]
    assert len(whole) == 1 and whole[0].span_count == 41
    limit = 1500
    bodies = encode_bodies(batch, encoding=encoding, gzip_body=gzip_body, max_bytes=limit)  # type: ignore[arg-type]
    assert len(bodies) > 2
    names = []
    for b in bodies:
        data = gzip.decompress(b.data) if gzip_body else b.data
        assert b.content_encoding == ("gzip" if gzip_body else None)
        req = parse_strict(data) if encoding == "json" else parse_proto(data)
        spans = req.resource_spans[0].scope_spans[0].spans
        assert len(spans) == b.span_count
        names += [s.name for s in spans]
        if b.span_count > 1:
            assert len(data) <= limit
        assert req.resource_spans[0].scope_spans[0].scope.name == "scope"
    assert names == [s.name for s in batch.spans]
    expected_type = "application/json" if encoding == "json" else "application/x-protobuf"
    assert {b.content_type for b in bodies} == {expected_type}


@pytest.mark.parametrize("encoding", ["json", "protobuf"])
def test_split_sizes_are_exact_and_big_span_goes_alone(encoding: str) -> None:
    batch = make_batch(6)
    batch.spans[3].attributes["huge"] = "x" * 5000
    bodies = encode_bodies(batch, encoding=encoding, max_bytes=2000)  # type: ignore[arg-type]
    alone = [b for b in bodies if len(b.data) > 2000]
    assert len(alone) == 1 and alone[0].span_count == 1
    assert sum(b.span_count for b in bodies) == 7
    # sizes are computed exactly: a limit of exactly the whole body fits in one
    whole = encode_bodies(batch, encoding=encoding)[0]  # type: ignore[arg-type]
    assert len(encode_bodies(batch, encoding=encoding, max_bytes=len(whole.data))) == 1  # type: ignore[arg-type]
    assert len(encode_bodies(batch, encoding=encoding, max_bytes=len(whole.data) - 1)) == 2  # type: ignore[arg-type]


def test_empty_batch_has_no_body() -> None:
    assert encode_bodies(SpanBatch("svc")) == []
