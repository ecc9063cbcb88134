"""The local OTLP receiver's decoding: JSON and protobuf, gzip and deflate,
hand-written and snake_case JSON, and the errors. Trees, storage and routes:
``test_local_receiver.py``."""

from __future__ import annotations

import gzip
import zlib

import orjson
import pytest

from streamsink.errors import ApiError
from streamsink.receiver.decode import decode_spans
from tests.helpers.otlp_requests import (
    TRACE_A,
    TRACE_B,
    sample_request,
    span_id,
    to_json,
    to_protobuf,
)

PB = "application/x-protobuf"
JSON = "application/json"
AUTH = {"Authorization": "Bearer t"}


# --- decoding ------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["json", "protobuf", "json+gzip", "protobuf+gzip"])
def test_decode_json_protobuf_gzip(encoding: str) -> None:
    req = sample_request()
    body = to_json(req) if encoding.startswith("json") else to_protobuf(req)
    gz = encoding.endswith("gzip")
    spans = decode_spans(
        gzip.compress(body) if gz else body,
        JSON if encoding.startswith("json") else PB + "; charset=binary",
        "gzip" if gz else None,
    )
    assert [s["name"] for s in spans] == ["root", "child"]
    root, child = spans
    assert root["traceId"] == TRACE_A.hex() and root["spanId"] == span_id(0).hex()
    assert root["parentSpanId"] is None and child["parentSpanId"] == span_id(0).hex()
    assert root["kind"] == "SERVER" and child["kind"] == "INTERNAL"
    assert root["startTimeUnixNano"] == 1_700_000_000_000_000_000
    assert root["endTimeUnixNano"] - root["startTimeUnixNano"] == root["durationNs"] == 1_000_000
    assert root["attributes"] == {"http.status": 200}
    assert child["attributes"] == {"ok": True, "ratio": 0.5, "tags": ["a", "b"], "s": "x"}
    assert root["serviceName"] == "checkout"
    assert root["scope"] == {"name": "tests", "version": "1.0"}
    assert root["status"] == {"code": "UNSET", "message": ""}


def test_decode_hand_written_otlp_json() -> None:
    """The OTLP/HTTP JSON example shape: int64 strings, enum ints, nested values."""
    doc = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "api"}}]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "lib"},
                        "spans": [
                            {
                                "traceId": "5B8EFFF798038103D269B633813FC60C",
                                "spanId": "EEE19B7EC3C1B174",
                                "parentSpanId": "",
                                "name": "GET /",
                                "kind": 2,
                                "startTimeUnixNano": "1544712660000000000",
                                "endTimeUnixNano": 1544712661000000000,
                                "attributes": [
                                    {"key": "n", "value": {"intValue": "9007199254740993"}},
                                    {
                                        "key": "m",
                                        "value": {
                                            "kvlistValue": {
                                                "values": [
                                                    {"key": "k", "value": {"doubleValue": 1.5}}
                                                ]
                                            }
                                        },
                                    },
                                    {"key": "b", "value": {"bytesValue": "aGk="}},
                                    {"key": "e", "value": {}},
                                ],
                                "events": [{"name": "ev", "timeUnixNano": "5", "attributes": []}],
                                "links": [
                                    {
                                        "traceId": "5b8efff798038103d269b633813fc60c",
                                        "spanId": "eee19b7ec3c1b175",
                                    }
                                ],
                                "status": {"code": 2, "message": "boom"},
                                "somethingNew": {"ignored": True},
                            }
                        ],
                    }
                ],
            }
        ]
    }
    (span,) = decode_spans(orjson.dumps(doc), JSON)
    assert span["traceId"] == "5b8efff798038103d269b633813fc60c"
    assert span["kind"] == "SERVER" and span["parentSpanId"] is None
    assert span["startTimeUnixNano"] == 1544712660000000000
    assert span["attributes"] == {"n": 9007199254740993, "m": {"k": 1.5}, "b": "aGk=", "e": None}
    assert span["events"] == [{"name": "ev", "timeUnixNano": 5, "attributes": {}}]
    assert span["links"][0]["spanId"] == "eee19b7ec3c1b175"
    assert span["status"] == {"code": "ERROR", "message": "boom"}
    assert span["serviceName"] == "api" and span["scope"] == {"name": "lib", "version": ""}


def test_decode_snake_case_json_and_missing_service() -> None:
    doc = {
        "resource_spans": [
            {
                "scope_spans": [
                    {
                        "spans": [
                            {"trace_id": TRACE_B.hex(), "span_id": "00000000000000aa", "name": "x"}
                        ]
                    }
                ]
            }
        ]
    }
    (span,) = decode_spans(orjson.dumps(doc), JSON)
    assert span["traceId"] == TRACE_B.hex() and span["serviceName"] == "unknown_service"


@pytest.mark.parametrize(
    ("body", "ctype", "enc", "status", "needle"),
    [
        (b"{nope", JSON, None, 400, "invalid JSON"),
        (b"[]", JSON, None, 400, "expected an object"),
        (
            orjson.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}),
            JSON,
            None,
            400,
            "spans[0].traceId: invalid hex",
        ),
        (
            orjson.dumps(
                {
                    "resourceSpans": [
                        {
                            "scopeSpans": [
                                {"spans": [{"traceId": "ab", "spanId": "00000000000000aa"}]}
                            ]
                        }
                    ]
                }
            ),
            JSON,
            None,
            400,
            "traceId: must be 16 bytes",
        ),
        (
            orjson.dumps(
                {
                    "resourceSpans": [
                        {"scopeSpans": [{"spans": [{"traceId": TRACE_A.hex(), "spanId": "00"}]}]}
                    ]
                }
            ),
            JSON,
            None,
            400,
            "spanId: must be 8 bytes",
        ),
        (orjson.dumps({"resourceSpans": "x"}), JSON, None, 400, "invalid OTLP JSON"),
        (b"\xff\xff\xff\xff", PB, None, 400, "invalid OTLP protobuf"),
        (b"not gzip", JSON, "gzip", 400, "invalid gzip"),
        (gzip.compress(b"{}", mtime=0)[:-12], JSON, "gzip", 400, "truncated"),
        (gzip.compress(b" " * (33 * 1024 * 1024)), JSON, "gzip", 413, "decompressed"),
        (b"{}", "text/plain", None, 415, "unsupported Content-Type"),
        (b"{}", None, None, 415, "(none)"),
        (b"{}", JSON, "br", 415, "Content-Encoding"),
    ],
)
def test_decode_errors(
    body: bytes, ctype: str | None, enc: str | None, status: int, needle: str
) -> None:
    with pytest.raises(ApiError) as info:
        decode_spans(body, ctype, enc)
    assert info.value.status_code == status
    assert needle in info.value.detail


def test_decode_deflate_and_empty() -> None:
    assert decode_spans(zlib.compress(to_json(sample_request())), JSON, "deflate")
    assert decode_spans(b"{}", JSON) == []
    assert decode_spans(b"", PB) == []
