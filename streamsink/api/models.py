"""Pydantic wire models of the REST API (camelCase on the wire, snake_case in Python).

Shapes follow the official svix SDK (``svix.models.stream_*``, ``sink_*``,
``otel_tracing_config_*``...). Input models ignore unknown fields, as Svix does,
except a sink's ``config``: an unknown key there is a 422 naming it (the config
models are in ``api.sink_config``; the base ``WireModel`` in ``api.wire``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    Field,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from streamsink.api.sink_config import (
    CONFIG_IN,
    CONFIG_PATCH,
    OtelTracingConfigIn,
    OtelTracingConfigOut,
    OtelTracingConfigPatch,
    PollerConfigIn,
    PollerConfigOut,
    SinkHttpConfigIn,
    SinkHttpConfigOut,
    config_of_type,
)
from streamsink.api.wire import WireModel
from streamsink.resource_ids import (
    NEW_UID_MAX_LEN,
    SINK_PREFIX,
    STREAM_PREFIX,
    validate_name,
    validate_stream_uid,
    validate_uid,
)
from streamsink.sink_fields import MAX_CODE_LEN, check_header_patch

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
