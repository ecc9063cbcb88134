"""Strict OTLP/JSON checker for tests: every encoded body must parse into the
official ``ExportTraceServiceRequest`` under the OTLP/JSON rules.

Beyond ``ParseDict(..., ignore_unknown_fields=False)`` it enforces what the
protobuf JSON parser would let through: hex (not base64) IDs of the right
length and not all zero, integer enums only, lowerCamelCase keys only, 64-bit
integers as decimal strings.
"""

from __future__ import annotations

import base64
import re
from typing import Any

import orjson
from google.protobuf.json_format import ParseDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

_CAMEL = re.compile(r"[a-z][a-zA-Z0-9]*")
_HEX = re.compile(r"[0-9a-f]+")
_ID_BYTES = {"traceId": 16, "spanId": 8, "parentSpanId": 8}
_INT64_FIELDS = {"startTimeUnixNano", "endTimeUnixNano", "timeUnixNano", "intValue"}
_ENUM_FIELDS = {"kind", "code"}


class OtlpJsonViolation(AssertionError):
    pass


def _convert(node: Any, path: str) -> Any:
    if isinstance(node, list):
        return [_convert(v, f"{path}[{i}]") for i, v in enumerate(node)]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        p = f"{path}.{key}"
        if not _CAMEL.fullmatch(key):
            raise OtlpJsonViolation(f"{p}: key is not lowerCamelCase")
        if key in _ID_BYTES:
            n = _ID_BYTES[key]
            if not isinstance(value, str) or not _HEX.fullmatch(value) or len(value) != 2 * n:
                raise OtlpJsonViolation(f"{p}: expected {2 * n} lowercase hex digits: {value!r}")
            raw = bytes.fromhex(value)
            if raw == bytes(n):
                raise OtlpJsonViolation(f"{p}: all-zero ID")
            out[key] = base64.b64encode(raw).decode()
            continue
        if key in _INT64_FIELDS and (
            not isinstance(value, str) or not re.fullmatch(r"-?\d+", value)
        ):
            raise OtlpJsonViolation(f"{p}: 64-bit integer must be a decimal string: {value!r}")
        if key in _ENUM_FIELDS and (type(value) is not int):
            raise OtlpJsonViolation(f"{p}: enum must be an integer: {value!r}")
        out[key] = _convert(value, p)
    return out


def parse_strict(body: bytes | str | dict[str, Any]) -> ExportTraceServiceRequest:
    """Parse an OTLP/JSON body strictly; raise ``OtlpJsonViolation`` or a
    ``ParseError`` on anything the spec does not allow."""
    data = body if isinstance(body, dict) else orjson.loads(body)
    converted = _convert(data, "$")
    return ParseDict(converted, ExportTraceServiceRequest(), ignore_unknown_fields=False)


def parse_proto(body: bytes) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    req.ParseFromString(body)
    return req
