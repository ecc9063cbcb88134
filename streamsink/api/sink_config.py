"""A sink's ``config`` by its ``type``: the models pick the config model from
the body's ``type`` (``config_of_type``), so errors are located under
``config`` and name the keys of that type. The ``poller`` type has no config
keys (``{}``, as Svix defines it); the others refuse an unknown key with a 422
naming it (a misspelt ``encoding`` must not be dropped silently)."""

from __future__ import annotations

import difflib
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    model_validator,
)
from pydantic.alias_generators import to_camel

from streamsink.api.wire import Headers, SinkUrl, WireModel
from streamsink.sink_fields import REDACTED, is_sensitive_header
from streamsink.sinkhttp.signing import check_secret


class PollerConfigIn(BaseModel):
    """A ``poller`` sink's config: none. Its consumer reads the sink with
    ``GET .../sink/{sink_id}/events``."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and data:
            name, more = next(iter(data)), len(data) - 1
            also = f" and {more} more" if more else ""
            raise ValueError(
                f"unknown key {name!r}{also} in config: a poller sink's config has no keys:"
                " send {}"
            )
        return data


class PollerConfigOut(BaseModel):
    pass


def config_of_type(
    models: dict[str, type[BaseModel]], default: str | None, value: Any, info: ValidationInfo
) -> Any:
    """``value`` validated as the config of the body's ``type`` (or ``default``);
    without a valid ``type``, left as is (that field's 422 says why)."""
    kind = info.data.get("type") or default
    model = models.get(kind) if kind else None
    return value if model is None else model.model_validate(value)


OtlpEncoding = Literal["auto", "json", "protobuf"]
OtlpCompression = Literal["none", "gzip"]
_ENCODING_DOC = (
    "OTLP/HTTP body encoding: `json`, `protobuf`, or `auto` (JSON; when the receiver"
    " answers 415 the batch is sent again at once as protobuf, and the other way"
    " round, and the encoding that works is remembered: `negotiatedEncoding`)"
)
_COMPRESSION_DOC = "request body compression: `none` or `gzip` (Content-Encoding: gzip)"


class SinkConfigModel(WireModel):
    """A sink's ``config``: unknown keys are refused with a 422 that names them."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            known = [f.alias or name for name, f in cls.model_fields.items()]
            allowed = set(known) | set(cls.model_fields)
            unknown = [k for k in data if k not in allowed]
            if unknown:
                raise ValueError(unknown_key_message(unknown, known))
        return data


def unknown_key_message(unknown: list[Any], known: list[str]) -> str:
    name = str(unknown[0])
    close = difflib.get_close_matches(name, known, n=1)
    guess = f" (did you mean {close[0]!r}?)" if close else ""
    more = f" and {len(unknown) - 1} more" if len(unknown) > 1 else ""
    return f"unknown key {name!r}{more} in config{guess}: the keys are {', '.join(known)}"


class OtelTracingConfigIn(SinkConfigModel):
    url: SinkUrl
    headers: Headers = None
    encoding: OtlpEncoding | None = Field(default="auto", description=_ENCODING_DOC)
    compression: OtlpCompression | None = Field(default="none", description=_COMPRESSION_DOC)


class OtelTracingConfigPatch(SinkConfigModel):
    url: SinkUrl | None = None
    headers: Headers = None
    encoding: OtlpEncoding | None = Field(default=None, description=_ENCODING_DOC)
    compression: OtlpCompression | None = Field(default=None, description=_COMPRESSION_DOC)


class EndpointHeadersOut(WireModel):
    headers: dict[str, str]
    sensitive: list[str]


class OtelTracingConfigOut(WireModel):
    url: str
    headers: EndpointHeadersOut
    encoding: OtlpEncoding = Field(default="auto", description=_ENCODING_DOC)
    compression: OtlpCompression = Field(default="none", description=_COMPRESSION_DOC)


KEY_DOC = (
    "the signing secret: `whsec_` + base64 of 24 to 64 bytes (default: a random one);"
    " never shown again but by `GET .../secret`"
)
SinkKey = Annotated[str, AfterValidator(check_secret)]


class SinkHttpConfigIn(SinkConfigModel):
    url: SinkUrl
    headers: Headers = None
    key: SinkKey | None = Field(default=None, description=KEY_DOC)


class SinkHttpConfigOut(WireModel):
    url: str
    headers: EndpointHeadersOut


#: The config model of each sink type (``sink_config.config_of_type``).
CONFIG_IN: dict[str, type[BaseModel]] = {
    "otelTracing": OtelTracingConfigIn,
    "http": SinkHttpConfigIn,
    "poller": PollerConfigIn,
}
#: A PATCH of an http sink is read as an otelTracing one; the route refuses
#: ``encoding`` and ``compression`` for it (``sinks._otel_only``).
CONFIG_PATCH: dict[str, type[BaseModel]] = {
    "otelTracing": OtelTracingConfigPatch,
    "http": OtelTracingConfigPatch,
    "poller": PollerConfigIn,
}


def redact_headers(headers: dict[str, str]) -> EndpointHeadersOut:
    """Svix-style view of stored headers: sensitive values replaced and listed."""
    shown: dict[str, str] = {}
    sensitive: list[str] = []
    for name, value in headers.items():
        if is_sensitive_header(name):
            shown[name] = REDACTED
            sensitive.append(name)
        else:
            shown[name] = value
    return EndpointHeadersOut(headers=shown, sensitive=sensitive)
