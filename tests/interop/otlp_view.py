"""Typed, comparable views of OTLP trace requests as they crossed the wire.

A request body (JSON parsed strictly, or protobuf; gzip undone) becomes one
dict per span keyed by span ID, holding every field of the span plus its
resource and scope. Attribute values keep their OTLP type (``{"intValue": "12"}``
is not ``{"doubleValue": 12.0}``), so two views are equal only when the spans
are equal field by field and type by type.
"""

from __future__ import annotations

import base64
import gzip
from collections.abc import Iterable
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.core.otlp_strict import parse_proto, parse_strict
from tests.helpers.receiver_server import Recorded

_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


def parse_recorded(recorded: Recorded) -> ExportTraceServiceRequest:
    """The request a receiver got, decoded strictly by its Content-Type."""
    body = recorded.body
    if recorded.headers.get("content-encoding", "").lower() == "gzip":
        body = gzip.decompress(body)
    media = recorded.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "application/json":
        return parse_strict(body)
    if media == "application/x-protobuf":
        return parse_proto(body)
    raise AssertionError(f"unexpected Content-Type {media!r} at {recorded.path}")


def _attrs(kvs: list[dict[str, Any]]) -> dict[str, Any]:
    return {kv["key"]: kv.get("value", {}) for kv in kvs}


def _hex_ids(node: dict[str, Any]) -> None:
    for key in _ID_FIELDS:
        if key in node:
            node[key] = base64.b64decode(node[key]).hex()


def _normalise(node: dict[str, Any]) -> dict[str, Any]:
    """Ids as hex, attribute lists as {key: typed value} (order carries no meaning)."""
    _hex_ids(node)
    if "attributes" in node:
        node["attributes"] = _attrs(node["attributes"])
    for child in ("events", "links"):
        for item in node.get(child, []):
            _normalise(item)
    return node


def span_views(requests: Iterable[ExportTraceServiceRequest]) -> dict[str, dict[str, Any]]:
    """span ID (hex) -> the span with its resource and scope; duplicates fail."""
    views: dict[str, dict[str, Any]] = {}
    for request in requests:
        for rs in request.resource_spans:
            resource = _normalise(MessageToDict(rs.resource))
            for ss in rs.scope_spans:
                scope = _normalise(MessageToDict(ss.scope))
                for span in ss.spans:
                    view = _normalise(MessageToDict(span))
                    view["resource"] = resource
                    view["scope"] = scope
                    sid = view["spanId"]
                    assert sid not in views, f"span {sid} arrived twice"
                    views[sid] = view
    return views
