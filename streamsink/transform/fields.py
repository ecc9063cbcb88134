"""Scalar fields of a handler result (strings, objects, keys, kind, status):
checked one by one, with errors naming the path (see ``validate``)."""

from __future__ import annotations

from typing import Any

from streamsink.errors import OutputError
from streamsink.otlp.attributes import flatten_attributes
from streamsink.otlp.spans import SPAN_KIND_INTERNAL, SPAN_KINDS, STATUS_CODES, Attributes, Status
from streamsink.transform.timeparse import show_value


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


def str_field(v: object, path: str, *, required: bool = False, default: str = "") -> str:
    if v is None:
        if required:
            raise OutputError(path, "required (a string)")
        return default
    if type(v) is not str:
        raise OutputError(path, f"expected a string, got {js_type(v)}")
    if required and not v:
        raise OutputError(path, "must not be empty")
    return v


def obj_field(v: object, path: str) -> dict[str, Any] | None:
    if v is None:
        return None
    if type(v) is not dict:
        raise OutputError(path, f"expected an object, got {js_type(v)}")
    return v


def attrs_field(v: object, path: str) -> Attributes:
    if v is None:
        return {}
    if type(v) is not dict:
        raise OutputError(path, f"expected an object, got {js_type(v)}")
    return flatten_attributes(v)


def key_text(v: object, path: str) -> str | None:
    if v is None or v == "":
        return None
    t = type(v)
    if t is str:
        return v  # type: ignore[return-value]
    if t is int:
        return str(v)
    raise OutputError(path, f"expected a string key, got {js_type(v)}")


def kind_field(v: object, path: str) -> int:
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


def status_field(v: object, path: str) -> Status | None:
    d = obj_field(v, path)
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
    return Status(c, str_field(d.get("message"), f"{path}.message"))
