"""Handler output -> typed spans, with errors naming the path.

Accepted shape (Svix's fields plus streamsink's additions)::

    {config?: {serviceName?, scope?: {name?, version?}, resourceAttributes?},
     spans: [{name, kind?, startTime?, endTime?, attributes?,
              traceIdKey? | traceId?, spanIdKey? | spanId?,
              parentSpanIdKey? | parentIdKey? | parentSpanId?,
              status?: {code?: OK|ERROR|UNSET, message?},
              events?: [{name, time?, attributes?}],
              links?: [{traceIdKey? | traceId?, spanIdKey? | spanId?, attributes?}]}]}

- ``serviceName`` defaults to ``unknown_service`` (the OpenTelemetry default).
- ``kind`` is case-insensitive (``SPAN_KIND_`` prefix allowed), default INTERNAL.
- Keys are strings (integers are turned into their decimal text); ``null``
  or ``""`` means no key. Giving both a key and an explicit hex ID is an error.
- Times: see ``timeparse``. A missing time is "now", but never crosses the
  other given time: missing start = min(now, end), missing end = max(now,
  start). ``endTime`` before ``startTime`` is an error. An event without
  ``time`` happens at the span start. A time that is NaN, Infinity or an
  invalid ``Date`` in JavaScript is an error naming the span and field
  (checked in V8, where JSON would make it null, i.e. "now").
- The result nests at most ``depth.MAX_DEPTH`` (200) levels: every value lies
  at most 200 keys or indexes below the result (checked in V8, so the worker,
  simulate and the CLI apply the same rule).
- Unknown fields are ignored, as Svix does, but reported as warnings.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from streamsink.errors import OutputError
from streamsink.otlp.attributes import flatten_attributes
from streamsink.otlp.ids import (
    SPAN_ID_BYTES,
    TRACE_ID_BYTES,
    IdDeriver,
    parse_hex_id,
    random_id,
)
from streamsink.otlp.spans import (
    SPAN_KIND_INTERNAL,
    SPAN_KINDS,
    STATUS_CODES,
    Attributes,
    Span,
    SpanBatch,
    SpanEvent,
    SpanLink,
    Status,
)
from streamsink.transform.depth import MAX_DEPTH, too_deep
from streamsink.transform.fields import (
    attrs_field,
    js_type,
    key_text,
    kind_field,
    obj_field,
    status_field,
    str_field,
)
from streamsink.transform.timeparse import (
    TimeParseError,
    format_ns,
    parse_iso8601_ns,
    parse_time_ns,
)

DEFAULT_SERVICE_NAME = "unknown_service"
MAX_WARNINGS = 20

_TOP_KEYS = frozenset({"config", "spans"})
_CONFIG_KEYS = frozenset({"serviceName", "scope", "resourceAttributes"})
_SPAN_KEYS = frozenset(
    {
        "name", "kind", "startTime", "endTime", "attributes", "traceIdKey", "traceId",
        "spanIdKey", "spanId", "parentSpanIdKey", "parentIdKey", "parentSpanId",
        "status", "events", "links",
    }
)  # fmt: skip


@dataclass(slots=True)
class Validated:
    """A validated batch. ``addressable`` lists the spans whose ID came from a
    key or an explicit ``spanId`` (later batches can name them as parents);
    spans whose trace is still to be resolved have ``trace_id == b""``."""

    batch: SpanBatch
    addressable: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _time(v: object, path: str, i: int | None = None) -> int:
    """Parse a time; the error path is ``path``, or ``spans[i].path`` when ``i`` is given."""
    try:
        return parse_time_ns(v)
    except TimeParseError as exc:
        raise OutputError(path if i is None else f"spans[{i}].{path}", str(exc)) from None


def _id(
    d: dict[str, Any], id_field: str, key_fields: tuple[str, ...], n: int, path: str,
    ids: IdDeriver,
) -> tuple[bytes, bool]:  # fmt: skip
    """(id, addressable) from an explicit hex field or key field(s); ``b""`` if none."""
    key: str | None = None
    key_field = key_fields[0]
    for f in key_fields:
        k = key_text(d.get(f), f"{path}.{f}")
        if k is not None:
            if key is not None and k != key:
                raise OutputError(f"{path}.{f}", f"conflicts with {key_field}")
            key, key_field = k, f
    explicit = d.get(id_field)
    if explicit is not None:
        if key is not None:
            raise OutputError(f"{path}.{id_field}", f"give {id_field} or {key_field}, not both")
        try:
            return parse_hex_id(explicit, n), True
        except ValueError as exc:
            raise OutputError(f"{path}.{id_field}", str(exc)) from None
    if key is None:
        return b"", False
    return (ids.trace_id(key) if n == TRACE_ID_BYTES else ids.span_id(key)), True


def _objects(v: object, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(path[j], object)`` for an optional array of objects (null items refused)."""
    if v is None:
        return
    if type(v) is not list:
        raise OutputError(path, f"expected an array, got {js_type(v)}")
    for j, e in enumerate(v):
        p = f"{path}[{j}]"
        d = obj_field(e, p)
        if d is None:
            raise OutputError(p, "expected an object, got null")
        yield p, d


def _events(v: object, path: str, start: int) -> list[SpanEvent]:
    out = []
    for p, d in _objects(v, path):
        t = d.get("time")
        out.append(
            SpanEvent(
                str_field(d.get("name"), f"{p}.name", required=True),
                start if t is None else _time(t, f"{p}.time"),
                attrs_field(d.get("attributes"), f"{p}.attributes"),
            )
        )
    return out


def _links(v: object, path: str, ids: IdDeriver) -> list[SpanLink]:
    out = []
    for p, d in _objects(v, path):
        trace, _ = _id(d, "traceId", ("traceIdKey",), TRACE_ID_BYTES, p, ids)
        span, _ = _id(d, "spanId", ("spanIdKey",), SPAN_ID_BYTES, p, ids)
        if not trace:
            raise OutputError(f"{p}.traceId", "a link needs traceId or traceIdKey")
        if not span:
            raise OutputError(f"{p}.spanId", "a link needs spanId or spanIdKey")
        out.append(SpanLink(trace, span, attrs_field(d.get("attributes"), f"{p}.attributes")))
    return out


_SLOW: Any = object()
_KIND_FAST = {
    **SPAN_KINDS,
    **{k.lower(): v for k, v in SPAN_KINDS.items()},
    **{k.capitalize(): v for k, v in SPAN_KINDS.items()},
}


def _quick_key(s: dict[str, Any], key_field: str, id_field: str) -> Any:
    """The span's string key (or None) when only ``key_field`` is used, else ``_SLOW``."""
    if s.get(id_field) is not None:
        return _SLOW
    k = s.get(key_field)
    if k is None:
        return None
    if type(k) is str:
        return k or None
    return _SLOW


_STATUS_FAST = {
    **STATUS_CODES,
    **{k.lower(): v for k, v in STATUS_CODES.items()},
    **{k.capitalize(): v for k, v in STATUS_CODES.items()},
}


def _span_time(v: object, field: str, i: int) -> int:
    """A span time; ISO strings go straight to the parser (the common case)."""
    if type(v) is str:
        try:
            return parse_iso8601_ns(v)  # type: ignore[arg-type]
        except TimeParseError as exc:
            raise OutputError(f"spans[{i}].{field}", str(exc)) from None
    return _time(v, field, i)


def _span(s: object, i: int, ids: IdDeriver, now_ns: int, out: Validated) -> Span:
    # Hot path: path strings are only built when something is wrong, and the
    # usual shapes (string keys, ISO times, a status code name) skip the helpers.
    if type(s) is not dict:
        raise OutputError(f"spans[{i}]", f"expected an object, got {js_type(s)}")
    get = s.get
    if not s.keys() <= _SPAN_KEYS and len(out.warnings) < MAX_WARNINGS:
        for k in sorted(s.keys() - _SPAN_KEYS):
            out.warnings.append(f"spans[{i}].{k}: unknown field, ignored")
    st, et = get("startTime"), get("endTime")
    start = None if st is None else _span_time(st, "startTime", i)
    end = None if et is None else _span_time(et, "endTime", i)
    if start is None:
        start = now_ns if end is None else min(now_ns, end)
    if end is None:
        end = max(now_ns, start)
    elif end < start:
        raise OutputError(
            f"spans[{i}].endTime", f"before startTime ({format_ns(end)} < {format_ns(start)})"
        )
    key = get("traceIdKey")
    if type(key) is str and key and get("traceId") is None:
        trace = ids.trace_id(key)
    else:
        key = _quick_key(s, "traceIdKey", "traceId")
        if key is _SLOW:
            trace, _ = _id(s, "traceId", ("traceIdKey",), TRACE_ID_BYTES, f"spans[{i}]", ids)
        else:
            trace = b"" if key is None else ids.trace_id(key)
    key = get("spanIdKey")
    if type(key) is str and key and get("spanId") is None:
        span, addressable = ids.span_id(key), True
    else:
        key = _quick_key(s, "spanIdKey", "spanId")
        if key is _SLOW:
            span, addressable = _id(s, "spanId", ("spanIdKey",), SPAN_ID_BYTES, f"spans[{i}]", ids)
        else:
            span, addressable = (b"", False) if key is None else (ids.span_id(key), True)
    if addressable:
        out.addressable.append(i)
    else:
        span = random_id(SPAN_ID_BYTES)
    key = _quick_key(s, "parentSpanIdKey", "parentSpanId")
    if key is _SLOW or get("parentIdKey") is not None:
        parent, _ = _id(
            s, "parentSpanId", ("parentSpanIdKey", "parentIdKey"), SPAN_ID_BYTES, f"spans[{i}]", ids
        )
    else:
        parent = b"" if key is None else ids.span_id(key)
    name = get("name")
    if type(name) is not str or not name:
        str_field(name, f"spans[{i}].name", required=True)
    k = get("kind")
    kind = (
        SPAN_KIND_INTERNAL
        if k is None
        else (_KIND_FAST.get(k) if type(k) is str else None) or kind_field(k, f"spans[{i}].kind")
    )
    a = get("attributes")
    if a is None:
        attrs: Attributes = {}
    elif type(a) is dict:
        attrs = flatten_attributes(a)
    else:
        attrs = attrs_field(a, f"spans[{i}].attributes")
    events, links, st = get("events"), get("links"), get("status")
    # Errors in the order of the fields: events, links, then status.
    evs = [] if events is None else _events(events, f"spans[{i}].events", start)
    lns = [] if links is None else _links(links, f"spans[{i}].links", ids)
    status = _span_status(st, i)
    return Span(trace, span, parent, name, kind, start, end, attrs, evs, lns, status)  # type: ignore[arg-type]


def _span_status(st: object, i: int) -> Status | None:
    if st is None:
        return None
    code = st.get("code") if type(st) is dict else None
    c = _STATUS_FAST.get(code) if type(code) is str else None
    if c is not None:
        message = st.get("message")  # type: ignore[union-attr]
        if message is None or type(message) is str:
            return Status(c, message or "")
    return status_field(st, f"spans[{i}].status")


def validate_output(result: object, ids: IdDeriver, now_ns: int) -> Validated:
    """Check a handler result and build typed spans (trace inheritance is left
    to ``otlp.ids.assign_traces``). Raises ``OutputError`` naming the path."""
    try:
        return _validate_output(result, ids, now_ns)
    except RecursionError:  # attributes nested ~1000 levels deep
        path = too_deep(result) or ""
        raise OutputError(path, f"nested deeper than {MAX_DEPTH} levels") from None


def _validate_output(result: object, ids: IdDeriver, now_ns: int) -> Validated:
    if type(result) is not dict:
        raise OutputError(
            "", f"the handler must return an object {{config, spans}}, got {js_type(result)}"
        )
    out = Validated(SpanBatch(DEFAULT_SERVICE_NAME))
    batch = out.batch
    for k in result.keys() - _TOP_KEYS:
        out.warnings.append(f"{k}: unknown field, ignored")
    config = obj_field(result.get("config"), "config")
    if config is not None:
        for k in config.keys() - _CONFIG_KEYS:
            out.warnings.append(f"config.{k}: unknown field, ignored")
        batch.service_name = str_field(
            config.get("serviceName"), "config.serviceName", default=DEFAULT_SERVICE_NAME
        )
        scope = obj_field(config.get("scope"), "config.scope")
        if scope is not None:
            batch.scope_name = str_field(scope.get("name"), "config.scope.name")
            batch.scope_version = str_field(scope.get("version"), "config.scope.version")
        batch.resource_attributes = attrs_field(
            config.get("resourceAttributes"), "config.resourceAttributes"
        )
    spans = result.get("spans")
    if spans is None:
        raise OutputError("spans", "required (an array of spans)")
    if type(spans) is not list:
        raise OutputError("spans", f"expected an array, got {js_type(spans)}")
    batch.spans = [_span(s, i, ids, now_ns, out) for i, s in enumerate(spans)]
    return out
