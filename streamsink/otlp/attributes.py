"""Handler attribute objects -> flat OTLP attributes.

Rules (OTLP ``AnyValue``):

- string -> ``stringValue``, bool -> ``boolValue``, float -> ``doubleValue``;
- integer within int64 -> ``intValue`` (a decimal string in JSON); beyond int64
  -> ``doubleValue`` (it was a JS double anyway). JS has one number type, so an
  integral number such as ``3.0`` arrives as ``3`` and becomes ``intValue``;
- nested objects flatten to dotted keys: ``{"http": {"method": "GET"}}`` ->
  ``http.method``; an empty object adds nothing;
- ``null`` (and ``undefined``, which JSON drops) removes the key;
- an array of primitives -> ``arrayValue`` (``null`` elements stay as empty
  values, which OTLP reads as null); an array holding objects or arrays -> its
  compact JSON text as ``stringValue`` (OTLP attribute arrays must be flat).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

Primitive = str | bool | int | float
AttrValue = Primitive | list[Primitive | None]

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_PRIMITIVES = (str, bool, int, float)


def _num(v: int) -> int | float:
    return v if _INT64_MIN <= v <= _INT64_MAX else float(v)


def _array(values: list[Any]) -> AttrValue:
    out: list[Primitive | None] = []
    for v in values:
        t = type(v)
        if t is int:
            out.append(_num(v))
        elif t is str or t is bool or t is float or v is None:
            out.append(v)
        else:
            try:
                return orjson.dumps(values).decode()
            except TypeError:  # integers beyond 64 bits
                return json.dumps(values, separators=(",", ":"), ensure_ascii=False)
    return out


def flatten_attributes(
    obj: dict[str, Any], out: dict[str, AttrValue] | None = None, prefix: str = ""
) -> dict[str, AttrValue]:
    """Flatten one JSON object into ``{dotted.key: value}`` (see module doc)."""
    if out is None:
        out = {}
    for k, v in obj.items():
        key = f"{prefix}.{k}" if prefix else k
        t = type(v)
        if t is str or t is bool or t is float:
            out[key] = v
        elif t is int:
            out[key] = _num(v)
        elif t is dict:
            flatten_attributes(v, out, key)
        elif t is list:
            out[key] = _array(v)
        elif v is None:
            out.pop(key, None)
        else:  # not reachable from JSON; be safe for Python callers
            out[key] = str(v)
    return out


def any_value_json(v: AttrValue | None) -> dict[str, Any]:
    """One attribute value as OTLP/JSON ``AnyValue``."""
    t = type(v)
    if t is str:
        return {"stringValue": v}
    if t is bool:
        return {"boolValue": v}
    if t is int:
        return {"intValue": str(v)}
    if t is float:
        return {"doubleValue": v}
    if t is list:
        return {"arrayValue": {"values": [any_value_json(x) for x in v]}}  # type: ignore[union-attr]
    return {}


def attributes_json(attrs: dict[str, AttrValue]) -> list[dict[str, Any]]:
    """Flat attributes as an OTLP/JSON ``KeyValue`` list (strings, the usual case, inline)."""
    return [
        {"key": k, "value": {"stringValue": v} if type(v) is str else any_value_json(v)}
        for k, v in attrs.items()
    ]
