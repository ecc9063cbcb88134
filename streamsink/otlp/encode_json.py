"""Typed spans -> OTLP/HTTP JSON (``application/json``).

Per the OTLP/JSON rules: lowerCamelCase keys, trace/span IDs as lowercase hex
(not base64), 64-bit integers as decimal strings, enums as integers. One
``resourceSpans`` entry (``service.name`` + resource attributes) holding one
``scopeSpans`` entry. Empty optional fields are omitted.
"""

from __future__ import annotations

from typing import Any

import orjson

from streamsink.otlp.attributes import attributes_json
from streamsink.otlp.spans import Span, SpanBatch

CONTENT_TYPE_JSON = "application/json"


def span_json(s: Span) -> dict[str, Any]:
    """One span as an OTLP/JSON ``Span`` object."""
    d: dict[str, Any] = {"traceId": s.trace_id.hex(), "spanId": s.span_id.hex()}
    if s.parent_span_id:
        d["parentSpanId"] = s.parent_span_id.hex()
    d["name"] = s.name
    d["kind"] = s.kind
    d["startTimeUnixNano"] = str(s.start_time_unix_nano)
    d["endTimeUnixNano"] = str(s.end_time_unix_nano)
    if s.attributes:
        d["attributes"] = attributes_json(s.attributes)
    if s.events:
        d["events"] = [
            {
                "timeUnixNano": str(e.time_unix_nano),
                "name": e.name,
                "attributes": attributes_json(e.attributes),
            }
            if e.attributes
            else {"timeUnixNano": str(e.time_unix_nano), "name": e.name}
            for e in s.events
        ]
    if s.links:
        d["links"] = [
            {
                "traceId": ln.trace_id.hex(),
                "spanId": ln.span_id.hex(),
                "attributes": attributes_json(ln.attributes),
            }
            if ln.attributes
            else {"traceId": ln.trace_id.hex(), "spanId": ln.span_id.hex()}
            for ln in s.links
        ]
    if s.status is not None:
        st: dict[str, Any] = {"code": s.status.code}
        if s.status.message:
            st["message"] = s.status.message
        d["status"] = st
    return d


def _scope_json(batch: SpanBatch) -> dict[str, str]:
    scope = {}
    if batch.scope_name:
        scope["name"] = batch.scope_name
    if batch.scope_version:
        scope["version"] = batch.scope_version
    return scope


def batch_json(batch: SpanBatch, spans: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The whole request body as a dict (``spans``: pre-rendered span objects)."""
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": attributes_json(batch.resource_attrs())},
                "scopeSpans": [
                    {
                        "scope": _scope_json(batch),
                        "spans": [span_json(s) for s in batch.spans] if spans is None else spans,
                    }
                ],
            }
        ]
    }


def encode_json(batch: SpanBatch) -> bytes:
    """The whole batch as one OTLP/JSON body."""
    return orjson.dumps(batch_json(batch))


def json_frame(batch: SpanBatch) -> tuple[bytes, bytes]:
    """(prefix, suffix) around the comma-joined span objects of a body."""
    marker = {"__spans__": 1}
    text = orjson.dumps(batch_json(batch, [marker]))  # type: ignore[list-item]
    cut = orjson.dumps(marker)
    i = text.index(cut)
    return text[:i], text[i + len(cut) :]


def encode_span_json(s: Span) -> bytes:
    return orjson.dumps(span_json(s))
