"""Pydantic wire models of the REST API (camelCase on the wire, snake_case in Python).

Shapes follow the official svix SDK (``svix.models.stream_*``, ``sink_*``,
``otel_tracing_config_*``...). Input models ignore unknown fields, as Svix does,
except a sink's ``config``: an unknown key there is a 422 naming it (a
misspelt ``encoding`` must not be dropped silently).
"""

from __future__ import annotations

import difflib
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from streamsink.api.sink_config import PollerConfigIn, PollerConfigOut, config_of_type
from streamsink.api.text import surrogate_error
from streamsink.resource_ids import (
    NEW_UID_MAX_LEN,
    SINK_PREFIX,
    STREAM_PREFIX,
    validate_name,
    validate_stream_uid,
    validate_uid,
)
from streamsink.sink_fields import (
    MAX_CODE_LEN,
    REDACTED,
    check_header_patch,
    check_headers,
    check_url,
    is_sensitive_header,
)
from streamsink.sinkhttp.signing import check_secret


class WireModel(BaseModel):
    """Base of every wire model. Any text in a field (strings, object keys, at
    any depth) must be valid Unicode: a lone UTF-16 surrogate, which JSON's
    ``\\ud800``-style escapes can carry, is a 422 naming the field."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    @field_validator("*", mode="after")
    @classmethod
    def _valid_unicode(cls, value: Any) -> Any:
        error = surrogate_error(value)
        if error is not None:
            raise ValueError(error)
        return value


# --- field types ---------------------------------------------------------------


def _uid_schema(prefix: str, what: str) -> WithJsonSchema:
    """Svix's documented uid rule (checked by ``resource_ids``)."""
    return WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": NEW_UID_MAX_LEN,
            "pattern": f"^(?!{prefix})[a-zA-Z0-9_-]+$",
            "description": f"An optional unique identifier for the {what}.",
        }
    )


Uid = Annotated[str, AfterValidator(validate_uid), _uid_schema(SINK_PREFIX, "sink")]
StreamUid = Annotated[
    str, AfterValidator(validate_stream_uid), _uid_schema(STREAM_PREFIX, "stream")
]
EventTypeName = Annotated[str, AfterValidator(validate_name)]
Metadata = dict[str, str]
SinkStatusIn = Literal["enabled", "disabled"]
SinkStatus = Literal["enabled", "disabled", "paused", "retrying"]
SinkType = Literal["otelTracing", "http", "poller"]


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


SinkUrl = Annotated[str, AfterValidator(check_url)]
Headers = Annotated[dict[str, str] | None, AfterValidator(check_headers)]


# --- streams -------------------------------------------------------------------


class StreamIn(WireModel):
    name: str = Field(max_length=256)
    uid: StreamUid | None = None
    metadata: Metadata | None = None


class StreamPatch(WireModel):
    """``name`` or (as the SDK's ``StreamPatch`` calls it) ``description`` renames."""

    name: str | None = Field(default=None, max_length=256)
    description: str | None = Field(default=None, max_length=256)
    uid: StreamUid | None = None
    metadata: Metadata | None = None


class StreamOut(WireModel):
    id: str
    uid: str | None = None
    name: str | None = None
    created_at: datetime
    updated_at: datetime
    metadata: Metadata


# --- event types ---------------------------------------------------------------


class StreamEventTypeIn(WireModel):
    name: EventTypeName
    description: str | None = None
    feature_flags: list[EventTypeName] | None = None
    deprecated: bool = False
    archived: bool = False


class StreamEventTypePatch(WireModel):
    description: str | None = None
    feature_flags: list[EventTypeName] | None = None
    deprecated: bool | None = None
    archived: bool | None = None


class StreamEventTypeOut(WireModel):
    name: str
    description: str | None = None
    created_at: datetime
    updated_at: datetime
    deprecated: bool
    archived: bool
    feature_flags: list[str] | None = None


# --- sinks ---------------------------------------------------------------------


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


class StreamSinkIn(WireModel):
    type: SinkType = Field(description="sink type: `otelTracing`, `http` or `poller`")
    config: OtelTracingConfigIn | SinkHttpConfigIn | PollerConfigIn

    @model_validator(mode="before")
    @classmethod
    def _poller_config_default(cls, data: Any) -> Any:
        """A ``poller`` body may leave ``config`` out (it has no keys)."""
        if isinstance(data, dict) and data.get("type") == "poller" and "config" not in data:
            return {**data, "config": {}}
        return data

    @field_validator("config", mode="wrap")
    @classmethod
    def _config_of_type(
        cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> Any:
        return config_of_type(CONFIG_IN, None, value, info)

    uid: Uid | None = None
    status: SinkStatusIn | None = None
    batch_size: int = Field(default=100, ge=1, le=1000)
    max_wait_secs: int = Field(default=0, ge=0, le=300)
    event_types: list[EventTypeName] | None = None
    channels: list[str] | None = None
    metadata: Metadata | None = None


class StreamSinkPatch(WireModel):
    """Only the fields present are changed; ``uid``/``eventTypes``/``channels`` null clear."""

    type: SinkType | None = None
    config: OtelTracingConfigPatch | PollerConfigIn | None = None
    uid: Uid | None = None
    status: SinkStatusIn | None = None
    batch_size: int | None = Field(default=None, ge=1, le=1000)
    max_wait_secs: int | None = Field(default=None, ge=0, le=300)
    event_types: list[EventTypeName] | None = None
    channels: list[str] | None = None
    metadata: Metadata | None = None

    @field_validator("config", mode="wrap")
    @classmethod
    def _config_of_type(
        cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> Any:
        """Without ``type``: as an ``otelTracing`` one (the route checks the sink's)."""
        if value is None:
            return None
        return config_of_type(CONFIG_PATCH, "otelTracing", value, info)


class StreamSinkOut(WireModel):
    id: str
    uid: str | None = None
    type: str
    config: OtelTracingConfigOut | SinkHttpConfigOut | PollerConfigOut
    status: SinkStatus
    batch_size: int
    max_wait_secs: int
    event_types: list[str] | None = None
    channels: list[str] | None = None
    metadata: Metadata
    current_iterator: str
    failure_reason: str | None = None
    next_retry_at: datetime | None = None
    negotiated_encoding: Literal["json", "protobuf"] | None = Field(
        default=None,
        description="with `config.encoding: auto`, the encoding the receiver took"
        " (null before the first delivery, and for an explicit encoding)",
    )
    dropped_events: int = Field(
        default=0,
        description="events trimmed from the log (past STREAMSINK_LOG_RETENTION_SECS or the"
        " stream's budget) while this sink, disabled or paused, had not received them",
    )
    dropped_since: datetime | None = Field(
        default=None, description="when the first of `droppedEvents` was dropped"
    )
    created_at: datetime
    updated_at: datetime


class HttpSinkHeadersPatchIn(WireModel):
    """Header name -> value; a null value deletes the header."""

    headers: Annotated[dict[str, str | None], AfterValidator(check_header_patch)]


def check_code_len(code: str) -> str:
    if len(code) > MAX_CODE_LEN:
        raise ValueError(
            f"code is {len(code)} characters; at most {MAX_CODE_LEN}"
            " (STREAMSINK_MAX_CODE_BYTES, which is at most that)"
        )
    return code


class SinkTransformIn(WireModel):
    """``code: null`` removes the transformation (the default handler runs)."""

    code: Annotated[str, Field(min_length=10), AfterValidator(check_code_len)] | None = None


class SinkTransformationOut(WireModel):
    code: str | None = None
    enabled: bool


class EmptyResponse(WireModel):
    pass


# --- events --------------------------------------------------------------------


class EventIn(WireModel):
    event_type: EventTypeName
    payload: str | dict[str, Any] | list[Any] = Field(
        description="a string (as in Svix); a JSON object or array is stored as its JSON text"
    )


class CreateStreamEventsIn(WireModel):
    events: list[EventIn] = Field(min_length=1)
    stream: StreamIn | None = None


class EventOut(WireModel):
    event_type: str
    payload: str
    timestamp: datetime


class EventStreamOut(WireModel):
    data: list[EventOut]
    iterator: str
    done: bool


# --- lists ---------------------------------------------------------------------

T = TypeVar("T")


class ListResponse(WireModel, Generic[T]):
    data: list[T]
    iterator: str | None
    prev_iterator: str | None = None
    done: bool


class ListResponseStreamOut(ListResponse[StreamOut]):
    pass


class ListResponseStreamEventTypeOut(ListResponse[StreamEventTypeOut]):
    pass


class ListResponseStreamSinkOut(ListResponse[StreamSinkOut]):
    pass


class HttpErrorOut(WireModel):
    code: str
    detail: str
