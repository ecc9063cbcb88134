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
from streamsink.transform.timeparse import TimeParseError, format_ns, parse_time_ns, show_value

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


def js_type(v: object) -> str:
    """The JavaScript name of a JSON value's type, for messages."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return "undefined"


def _str(v: object, path: str, *, required: bool = False, default: str = "") -> str:
    if v is None:
        if required:
            raise OutputError(path, "required (a string)")
        return default
    if type(v) is not str:
        raise OutputError(path, f"expected a string, got {js_type(v)}")
    if required and not v:
        raise OutputError(path, "must not be empty")
    return v


def _obj(v: object, path: str) -> dict[str, Any] | None:
    if v is None:
        return None
    if type(v) is not dict:
        raise OutputError(path, f"expected an object, got {js_type(v)}")
    return v


def _attrs(v: object, path: str) -> Attributes:
    if v is None:
        return {}
    if type(v) is not dict:
        raise OutputError(path, f"expected an object, got {js_type(v)}")
    return flatten_attributes(v)


def _key(v: object, path: str) -> str | None:
    if v is None or v == "":
        return None
    t = type(v)
    if t is str:
        return v  # type: ignore[return-value]
    if t is int:
        return str(v)
    raise OutputError(path, f"expected a string key, got {js_type(v)}")


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
        k = _key(d.get(f), f"{path}.{f}")
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


def _kind(v: object, path: str) -> int:
    if v is None:
        return SPAN_KIND_INTERNAL
    if type(v) is not str:
        raise OutputError(path, f"expected a string, got {js_type(v)}")
    name = v.upper()
    if name.startswith("SPAN_KIND_"):
        name = name[10:]
    kind = SPAN_KINDS.get(name)
    if kind is None:
        raise OutputError(
            path, f"unknown kind {show_value(v)} (SERVER, CLIENT, PRODUCER, CONSUMER, INTERNAL)"
        )
    return kind


def _status(v: object, path: str) -> Status | None:
    d = _obj(v, path)
    if d is None:
        return None
    code = d.get("code")
    if code is None:
        c = 0
    elif type(code) is str:
        name = code.upper()
        if name.startswith("STATUS_CODE_"):
            name = name[12:]
        if name not in STATUS_CODES:
            raise OutputError(
                f"{path}.code", f"unknown status code {show_value(code)} (OK, ERROR, UNSET)"
            )
        c = STATUS_CODES[name]
    else:
        raise OutputError(f"{path}.code", f"expected a string, got {js_type(code)}")
    return Status(c, _str(d.get("message"), f"{path}.message"))


def _objects(v: object, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(path[j], object)`` for an optional array of objects (null items refused)."""
    if v is None:
        return
    if type(v) is not list:
        raise OutputError(path, f"expected an array, got {js_type(v)}")
    for j, e in enumerate(v):
        p = f"{path}[{j}]"
        d = _obj(e, p)
        if d is None:
            raise OutputError(p, "expected an object, got null")
        yield p, d


def _events(v: object, path: str, start: int) -> list[SpanEvent]:
    out = []
    for p, d in _objects(v, path):
        t = d.get("time")
        out.append(
            SpanEvent(
                _str(d.get("name"), f"{p}.name", required=True),
                start if t is None else _time(t, f"{p}.time"),
                _attrs(d.get("attributes"), f"{p}.attributes"),
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
        out.append(SpanLink(trace, span, _attrs(d.get("attributes"), f"{p}.attributes")))
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


def _span(s: object, i: int, ids: IdDeriver, now_ns: int, out: Validated) -> Span:
    # Hot path: path strings are only built when something is wrong.
    if type(s) is not dict:
        raise OutputError(f"spans[{i}]", f"expected an object, got {js_type(s)}")
    get = s.get
    if not s.keys() <= _SPAN_KEYS and len(out.warnings) < MAX_WARNINGS:
        for k in sorted(s.keys() - _SPAN_KEYS):
            out.warnings.append(f"spans[{i}].{k}: unknown field, ignored")
    st, et = get("startTime"), get("endTime")
    start = None if st is None else _time(st, "startTime", i)
    end = None if et is None else _time(et, "endTime", i)
    if start is None:
        start = now_ns if end is None else min(now_ns, end)
    if end is None:
        end = max(now_ns, start)
    elif end < start:
        raise OutputError(
            f"spans[{i}].endTime", f"before startTime ({format_ns(end)} < {format_ns(start)})"
        )
    key = _quick_key(s, "traceIdKey", "traceId")
    if key is _SLOW:
        trace, _ = _id(s, "traceId", ("traceIdKey",), TRACE_ID_BYTES, f"spans[{i}]", ids)
    else:
        trace = b"" if key is None else ids.trace_id(key)
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
        _str(name, f"spans[{i}].name", required=True)
    k = get("kind")
    kind = (
        SPAN_KIND_INTERNAL
        if k is None
        else (_KIND_FAST.get(k) if type(k) is str else None) or _kind(k, f"spans[{i}].kind")
    )
    a = get("attributes")
    if a is None:
        attrs: Attributes = {}
    elif type(a) is dict:
        attrs = flatten_attributes(a)
    else:
        attrs = _attrs(a, f"spans[{i}].attributes")
    events, links, status = get("events"), get("links"), get("status")
    return Span(
        trace,
        span,
        parent,
        name,  # type: ignore[arg-type]
        kind,
        start,
        end,
        attrs,
        [] if events is None else _events(events, f"spans[{i}].events", start),
        [] if links is None else _links(links, f"spans[{i}].links", ids),
        None if status is None else _status(status, f"spans[{i}].status"),
    )


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
    config = _obj(result.get("config"), "config")
    if config is not None:
        for k in config.keys() - _CONFIG_KEYS:
            out.warnings.append(f"config.{k}: unknown field, ignored")
        batch.service_name = _str(
            config.get("serviceName"), "config.serviceName", default=DEFAULT_SERVICE_NAME
        )
        scope = _obj(config.get("scope"), "config.scope")
        if scope is not None:
            batch.scope_name = _str(scope.get("name"), "config.scope.name")
            batch.scope_version = _str(scope.get("version"), "config.scope.version")
        batch.resource_attributes = _attrs(
            config.get("resourceAttributes"), "config.resourceAttributes"
        )
    spans = result.get("spans")
    if spans is None:
        raise OutputError("spans", "required (an array of spans)")
    if type(spans) is not list:
        raise OutputError("spans", f"expected an array, got {js_type(spans)}")
    batch.spans = [_span(s, i, ids, now_ns, out) for i, s in enumerate(spans)]
    return out
