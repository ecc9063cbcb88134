"""An ``http`` sink's handler result -> the request to send (pure: no I/O).

Accepted shape (Svix's)::

    {config?: {format?: "json" | "raw", method?: "POST" | "PUT" | "PATCH",
               url?: string, headers?: {name: value}},
     data}

- ``format`` (default ``json``): ``json`` sends ``data`` (any JSON value) as a
  JSON body (``application/json``); ``raw`` sends ``data``, which must be a
  string, as is (``text/plain; charset=utf-8`` unless the handler's headers
  give a ``Content-Type``).
- ``method``: POST (default), PUT or PATCH, in any case.
- ``url``: replaces the sink's URL for this batch; the same destination policy
  as a sink's URL applies (the caller passes it as ``policy``).
- ``headers``: merged over the sink's headers for this batch (names match
  case-insensitively); the delivery client's own headers (Host,
  Content-Length...) cannot be set, ``Content-Type`` can.
- A missing ``data`` (``undefined``) is an error; unknown fields are ignored
  but reported as warnings.

Only a ``json`` body whose ``data`` is an array can be split (in halves of the
array) when it is too large.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Final

import orjson

from streamsink.errors import OutputError
from streamsink.sink_fields import check_header, check_url
from streamsink.sinkhttp.netguard import DestinationPolicy, DestinationRefused
from streamsink.transform.handler_input import build_input_json
from streamsink.transform.validate import js_type

FORMATS: Final = ("json", "raw")
METHODS: Final = ("POST", "PUT", "PATCH")
JSON_TYPE: Final = "application/json"
RAW_TYPE: Final = "text/plain; charset=utf-8"
#: The bundled default transformation of ``http`` sinks (``transforms/http-default.js``).
DEFAULT_CODE: Final = (
    resources.files("streamsink.transform").joinpath("http-default.js").read_text("utf-8")
)
_TOP_KEYS = frozenset({"config", "data"})
_CONFIG_KEYS = frozenset({"format", "method", "url", "headers"})


def http_default_code() -> str:
    """The bundled default transformation of ``http`` sinks."""
    return DEFAULT_CODE


def http_input_json(events: Sequence[Mapping[str, Any]], url: str) -> str:
    """The handler input of an ``http`` sink, ``{events, url}``, as JSON text."""
    text = build_input_json(events)  # '{"events":[...]}'
    return text[:-1] + ',"url":' + orjson.dumps(url).decode() + "}"


@dataclass(slots=True)
class HttpRequestSpec:
    """What the handler asked for: a body, and how and where to send it."""

    format: str
    method: str
    url: str
    headers: dict[str, str]  # the sink's, with the handler's merged over them
    content_type: str
    data: Any
    warnings: list[str] = field(default_factory=list)

    @property
    def splittable(self) -> bool:
        return self.format == "json" and isinstance(self.data, list)

    @property
    def items(self) -> int:
        """Items a split can share out (1 for a body that cannot be split)."""
        return len(self.data) if self.splittable else 1

    def render(self, part: range | None = None) -> bytes:
        """The body of the whole request, or of ``part`` of a splittable ``data``."""
        if self.format == "raw":
            return str(self.data).encode("utf-8", "surrogatepass")
        value = self.data if part is None else self.data[part.start : part.stop]
        return json_bytes(value)


def json_bytes(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:  # integers beyond 64 bits: the stdlib writes them
        import json

        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def validate_http_output(
    output: Any,
    *,
    sink_url: str,
    sink_headers: dict[str, str] | None = None,
    policy: DestinationPolicy | None = None,
) -> HttpRequestSpec:
    """The request ``output`` asks for; ``OutputError`` naming the field otherwise."""
    if type(output) is not dict:
        raise OutputError("", f"expected an object {{config, data}}, got {js_type(output)}")
    warnings = [f"unknown field {k!r} ignored" for k in output if k not in _TOP_KEYS]
    config = output.get("config")
    if config is None:
        config = {}
    elif type(config) is not dict:
        raise OutputError("config", f"expected an object, got {js_type(config)}")
    warnings += [f"unknown field 'config.{k}' ignored" for k in config if k not in _CONFIG_KEYS]
    if "data" not in output:
        raise OutputError("data", "required (the body: any JSON value, a string with raw)")
    data = output["data"]
    fmt = _choice(config.get("format"), "config.format", FORMATS, "json", upper=False)
    method = _choice(config.get("method"), "config.method", METHODS, "POST", upper=True)
    if fmt == "raw" and type(data) is not str:
        raise OutputError("data", f'format "raw" sends a string as is; got {js_type(data)}')
    url = sink_url
    if config.get("url") is not None:
        url = _url(config["url"], policy)
    headers, content_type = _headers(config.get("headers"), sink_headers or {})
    if content_type is None:
        content_type = JSON_TYPE if fmt == "json" else RAW_TYPE
    return HttpRequestSpec(fmt, method, url, headers, content_type, data, warnings)


def _choice(value: Any, path: str, allowed: tuple[str, ...], default: str, *, upper: bool) -> str:
    if value is None:
        return default
    if type(value) is not str:
        raise OutputError(path, f"expected a string, got {js_type(value)}")
    got = value.upper() if upper else value
    if got not in allowed:
        shown = " or ".join(repr(a) for a in allowed)
        raise OutputError(path, f"{value!r} is not supported; use {shown}")
    return got


def _url(value: Any, policy: DestinationPolicy | None) -> str:
    if type(value) is not str:
        raise OutputError("config.url", f"expected a string, got {js_type(value)}")
    try:
        check_url(value)
        if policy is not None:
            policy.check_url(value)
    except (ValueError, DestinationRefused) as exc:
        raise OutputError("config.url", str(exc)) from None
    return value


def _headers(value: Any, sink_headers: dict[str, str]) -> tuple[dict[str, str], str | None]:
    """The sink's headers with the handler's merged over them, and the handler's
    Content-Type (None: the format's)."""
    merged = dict(sink_headers)
    if value is None:
        return merged, None
    if type(value) is not dict:
        raise OutputError("config.headers", f"expected an object, got {js_type(value)}")
    content_type = None
    for name, v in value.items():
        if type(v) is not str:
            raise OutputError(f"config.headers[{name!r}]", f"expected a string, got {js_type(v)}")
        is_type = name.lower() == "content-type"
        try:  # Content-Type: the value rules only (the client sets the header)
            check_header("X-Content-Type" if is_type else name, v)
        except ValueError as exc:
            raise OutputError("config.headers", str(exc).replace("X-Content-Type", name)) from None
        if is_type:
            content_type = v
            continue
        for existing in [k for k in merged if k.lower() == name.lower()]:
            del merged[existing]
        merged[name] = v
    return merged, content_type
