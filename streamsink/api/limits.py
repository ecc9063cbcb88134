"""The configurable API limits (``Settings.max_*``) as clear 422 answers in
FastAPI's shape ``{detail: [{loc, msg, type}]}``, naming the setting.

Body size (413) and events per request are checked in ``app`` and ``events``.
Counts that depend on stored state (sinks per stream, headers after a merge)
are checked just before the write, not inside its transaction: concurrent
creates may overshoot a limit by the number of racing requests.
"""

from __future__ import annotations

from typing import Any

import redis

from streamsink.api.errors import validation_error
from streamsink.settings import Settings
from streamsink.storage import sinks as store_sinks
from streamsink.storage.base import stream_sinks_key


def check_code_size(settings: Settings, code: str | None) -> None:
    if code is None:
        return
    size = len(code.encode("utf-8", "surrogatepass"))
    if size > settings.max_code_bytes:
        raise validation_error(
            ("body", "code"),
            f"code is {size} bytes; at most {settings.max_code_bytes} (STREAMSINK_MAX_CODE_BYTES)",
            "too_long",
        )


def check_header_count(settings: Settings, headers: dict[str, Any] | None, loc: tuple) -> None:
    limit = settings.max_headers_per_sink
    if headers is not None and len(headers) > limit:
        raise validation_error(
            loc,
            f"{len(headers)} headers; a sink has at most {limit} (STREAMSINK_MAX_HEADERS_PER_SINK)",
            "too_long",
        )


def check_room_for_sink(
    settings: Settings, client: redis.Redis, stream_id: str, sink_id: str | None = None
) -> None:
    """422 when the stream already has ``max_sinks_per_stream`` sinks (and
    ``sink_id``, for an upsert, names none of them)."""
    if sink_id is not None and store_sinks.resolve_sink_id(client, stream_id, sink_id):
        return
    limit = settings.max_sinks_per_stream
    if int(client.zcard(stream_sinks_key(stream_id))) >= limit:
        raise validation_error(
            ("path", "stream_id"),
            f"the stream already has {limit} sinks (STREAMSINK_MAX_SINKS_PER_STREAM)",
            "too_many",
        )
