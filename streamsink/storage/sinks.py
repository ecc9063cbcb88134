"""Sinks in Redis: the record, reads, and the delivery engine's state updates
(the API's writes are in ``store_sink_edits``).

A sink is the hash ``ss:sink:{sink_id}`` with the fields::

    id streamId uid type url headers(json) encoding compression status batchSize
    maxWaitSecs eventTypes(json) channels(json) metadata(json) code createdAt
    updatedAt seq
    secret oldSecret oldSecretUntil  http sinks' signing secrets (``storage.sink_secrets``;
                   never in a wire view)
    cursor         Redis Stream entry id after which the sink has delivered
                   (= currentIterator; a new sink starts at the log's last id, "0-0")
    failureReason  last permanent failure (absent = none)
    nextRetryAt    epoch ms of the next retry (absent = none)
    negotiatedEncoding  json|protobuf: what ``encoding: auto`` found to work
                   (cleared when url or encoding change)
    droppedEvents  log entries trimmed while the sink (disabled or paused)
                   had not passed them (``eventlog.trim_stream``)
    droppedSince   epoch ms of the first such drop

The retry state of a failing sink is the hash ``ss:retries:{sink_id}``
(``n``: failures counted on the retry schedule, ``since``: epoch ms of the
first failure after the last success); a success, a force-retry and a
re-enable delete it.

indexed by ``ss:stream:{stream_id}:sinks`` (ZSET by creation seq) and, when it
has a uid, ``ss:stream:{stream_id}:sink-uid:{uid}``. The API writes only the
fields it changes, so it never clobbers the engine's cursor or status; the engine
uses ``update_sink_state`` (atomic, no-op on a deleted sink).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import redis
from redis.client import Pipeline

from streamsink.errors import NotFound
from streamsink.resource_ids import SINK_PREFIX
from streamsink.storage import eventlog as event_log
from streamsink.storage import keys, scripts
from streamsink.storage.base import (
    Page,
    Window,
    decode_hash,
    dumps,
    loads,
    scan_index,
    to_str,
)

STATUSES: Final = ("enabled", "disabled", "paused", "retrying")
#: Fields the API's create/replace sets (snake_case -> hash field).
CONFIG_FIELDS: Final = {
    "type": "type",
    "url": "url",
    "headers": "headers",
    "encoding": "encoding",
    "compression": "compression",
    "uid": "uid",
    "batch_size": "batchSize",
    "max_wait_secs": "maxWaitSecs",
    "event_types": "eventTypes",
    "channels": "channels",
    "metadata": "metadata",
    "secret": "secret",  # http sinks' signing secret (``storage.sink_secrets``)
}
HASH_NAMES: Final = {
    **CONFIG_FIELDS,
    "status": "status",
    "failure_reason": "failureReason",
    "next_retry_at": "nextRetryAt",
    "negotiated_encoding": "negotiatedEncoding",
    "updated_at": "updatedAt",
}
ENCODINGS: Final = ("auto", "json", "protobuf")
COMPRESSIONS: Final = ("none", "gzip")
_JSON_FIELDS: Final = {"headers", "eventTypes", "channels", "metadata"}
_LIST_FIELDS: Final = [
    "id",
    "streamId",
    "uid",
    "type",
    "url",
    "headers",
    "encoding",
    "compression",
    "negotiatedEncoding",
    "status",
    "batchSize",
    "maxWaitSecs",
    "eventTypes",
    "channels",
    "metadata",
    "cursor",
    "failureReason",
    "nextRetryAt",
    "droppedEvents",
    "droppedSince",
    "createdAt",
    "updatedAt",
    "seq",
]


@dataclass
class SinkRecord:
    id: str
    stream_id: str
    type: str
    url: str
    uid: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    encoding: str = "auto"  # auto | json | protobuf
    compression: str = "none"  # none | gzip
    negotiated_encoding: str | None = None  # what auto found to work
    status: str = "enabled"
    batch_size: int = 100
    max_wait_secs: int = 0
    event_types: list[str] = field(default_factory=list)
    channels: list[str] | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    secret: str | None = field(default=None, repr=False)  # http sinks; with_code only
    cursor: str = event_log.START
    failure_reason: str | None = None
    next_retry_at: int | None = None  # epoch ms
    code: str | None = None  # loaded by get_sink / with_code=True only
    dropped_events: int = 0  # trimmed before this sink passed them (disabled/paused)
    dropped_since: int | None = None  # epoch ms of the first drop
    created_at: int = 0
    updated_at: int = 0
    seq: int = 0

    @property
    def polled(self) -> bool:
        """A ``poller`` sink: no worker delivers it, the consumer pages the log
        through the API and the iterator it comes back with moves the cursor."""
        return self.type == keys.POLLER_SINK_TYPE

    def matches(self, event_type: str) -> bool:
        """True when this sink's event-type filter lets ``event_type`` through."""
        return not self.event_types or event_type in self.event_types

    def wire_encoding(self) -> str:
        """The encoding of the next request: the explicit one, or under ``auto``
        the negotiated one (JSON until a receiver refuses it)."""
        if self.encoding in ("json", "protobuf"):
            return self.encoding
        return self.negotiated_encoding if self.negotiated_encoding == "protobuf" else "json"

    @classmethod
    def from_hash(cls, h: dict[str, str]) -> SinkRecord:
        nra = h.get("nextRetryAt")
        return cls(
            id=h["id"],
            stream_id=h.get("streamId", ""),
            type=h.get("type", "otelTracing"),
            url=h.get("url", ""),
            uid=h.get("uid") or None,
            headers=loads(h.get("headers"), {}),
            encoding=h.get("encoding") or "auto",
            compression=h.get("compression") or "none",
            negotiated_encoding=h.get("negotiatedEncoding") or None,
            status=h.get("status") or "enabled",
            batch_size=int(h.get("batchSize") or 100),
            max_wait_secs=int(h.get("maxWaitSecs") or 0),
            event_types=loads(h.get("eventTypes"), []) or [],
            channels=loads(h.get("channels"), None),
            metadata=loads(h.get("metadata"), {}),
            secret=h.get("secret") or None,
            cursor=h.get("cursor") or event_log.START,
            failure_reason=h.get("failureReason") or None,
            next_retry_at=int(nra) if nra else None,
            code=h.get("code") or None,
            dropped_events=int(h.get("droppedEvents") or 0),
            dropped_since=int(h["droppedSince"]) if h.get("droppedSince") else None,
            created_at=int(h.get("createdAt") or 0),
            updated_at=int(h.get("updatedAt") or 0),
            seq=int(h.get("seq") or 0),
        )


def _encode(name: str, value: Any) -> str | None:
    """Hash text for a field; None means "delete the field"."""
    if value is None:
        return None
    if name in _JSON_FIELDS:
        return dumps(value)
    return str(value)


def stage_fields(pipe: Pipeline, sink_id: str, values: dict[str, Any]) -> None:
    """Queue HSET/HDEL of hash ``values`` (already in MULTI)."""
    sets = {k: t for k, v in values.items() if (t := _encode(k, v)) is not None}
    dels = [k for k, v in values.items() if v is None]
    if sets:
        pipe.hset(keys.sink(sink_id), mapping=sets)
    if dels:
        pipe.hdel(keys.sink(sink_id), *dels)


# --- reads ------------------------------------------------------------------------


def get_sink(
    client: redis.Redis | Pipeline, sink_id: str, *, with_code: bool = True
) -> SinkRecord | None:
    """The sink by id (any stream), or None. Engine entry point."""
    if with_code:
        raw = client.hgetall(keys.sink(sink_id))
        return SinkRecord.from_hash(decode_hash(raw)) if raw else None
    return _load(client, [sink_id])[0]


def stage_get_sink(pipe: Pipeline, sink_id: str) -> None:
    """``get_sink(with_code=False)`` queued on a pipeline; ``sink_from_row``
    reads its reply."""
    pipe.hmget(keys.sink(sink_id), _LIST_FIELDS)


def sink_from_row(row: Sequence[Any]) -> SinkRecord | None:
    """The sink from a ``stage_get_sink`` reply (None when it is gone)."""
    h = {k: to_str(v) or "" for k, v in zip(_LIST_FIELDS, row, strict=True) if v is not None}
    return SinkRecord.from_hash(h) if h.get("id") else None


def _load(client: redis.Redis | Pipeline, sink_ids: Sequence[str]) -> list[SinkRecord | None]:
    if not sink_ids:
        return []
    if isinstance(client, Pipeline):  # inside a WATCH block: immediate-mode reads
        rows = [client.hmget(keys.sink(s), _LIST_FIELDS) for s in sink_ids]
    else:
        pipe = client.pipeline(transaction=False)
        for sink_id in sink_ids:
            pipe.hmget(keys.sink(sink_id), _LIST_FIELDS)
        rows = pipe.execute()
    return [sink_from_row(row) for row in rows]


def list_stream_sinks(client: redis.Redis, stream_id: str) -> list[SinkRecord]:
    """Every sink of a stream, in creation order (without ``code``). Engine entry point."""
    ids = [to_str(s) or "" for s in client.zrange(keys.stream_sinks(stream_id), 0, -1)]
    return [s for s in _load(client, ids) if s is not None]


def list_sinks(client: redis.Redis, stream_id: str, window: Window) -> Page:
    return scan_index(client, keys.stream_sinks(stream_id), window, lambda ids: _load(client, ids))


def resolve_sink_id(client: redis.Redis | Pipeline, stream_id: str, id_or_uid: str) -> str | None:
    if id_or_uid.startswith(SINK_PREFIX):
        owner = to_str(client.hget(keys.sink(id_or_uid), "streamId"))
        return id_or_uid if owner == stream_id else None
    return to_str(client.get(keys.sink_uid(stream_id, id_or_uid)))


def get_stream_sink(
    client: redis.Redis | Pipeline, stream_id: str, id_or_uid: str, *, with_code: bool = False
) -> SinkRecord | None:
    """The sink ``id_or_uid`` of ``stream_id`` (None if missing or in another stream)."""
    sink_id = resolve_sink_id(client, stream_id, id_or_uid)
    return get_sink(client, sink_id, with_code=with_code) if sink_id else None


def require_stream_sink(
    client: redis.Redis | Pipeline, stream_id: str, id_or_uid: str, *, with_code: bool = False
) -> SinkRecord:
    record = get_stream_sink(client, stream_id, id_or_uid, with_code=with_code)
    if record is None:
        raise NotFound(f"sink {id_or_uid!r} not found in stream {stream_id!r}")
    return record


# --- engine writes ----------------------------------------------------------------

_UNSET: Any = object()


def _state_args(
    status: str,
    failure_reason: str | None,
    next_retry_at: int | None,
    cursor: str,
    negotiated_encoding: str | None = _UNSET,
) -> list[str]:
    args: list[str] = []
    if negotiated_encoding is not _UNSET:
        if negotiated_encoding not in (None, "json", "protobuf"):
            raise ValueError("negotiated_encoding must be json, protobuf or None")
        args += ["negotiatedEncoding", negotiated_encoding or ""]
    if status is not _UNSET:
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}")
        args += ["status", status]
    if failure_reason is not _UNSET:
        args += ["failureReason", failure_reason or ""]
    if next_retry_at is not _UNSET:
        args += ["nextRetryAt", str(int(next_retry_at)) if next_retry_at is not None else ""]
    if cursor is not _UNSET:
        if not event_log.is_entry_id(cursor):
            raise ValueError(f"cursor {cursor!r} is not a stream entry id")
        args += ["cursor", cursor]
    return args


def update_sink_state(
    client: redis.Redis,
    sink_id: str,
    *,
    status: str = _UNSET,
    failure_reason: str | None = _UNSET,
    next_retry_at: int | None = _UNSET,
    cursor: str = _UNSET,
    negotiated_encoding: str | None = _UNSET,
    if_cursor: str | None = None,
    pipeline: Pipeline | None = None,
) -> bool | None:
    """Atomically set the given delivery fields of a sink (None clears
    ``failure_reason``/``next_retry_at``, epoch ms). With ``if_cursor`` the update
    applies only while the stored cursor equals it (compare-and-set).
    ``negotiated_encoding``: what ``encoding: auto`` found to work. False when
    the sink no longer exists or the cursor did not match.

    With ``pipeline`` the update is queued there (None is returned) and
    ``state_updated`` reads its reply after ``execute``."""
    args = _state_args(status, failure_reason, next_retry_at, cursor, negotiated_encoding)
    call = [if_cursor or "", *args]
    if pipeline is not None:
        scripts.UPDATE_SINK_STATE(pipeline, _state_keys(sink_id), call)
        return None
    return state_updated(scripts.UPDATE_SINK_STATE(client, _state_keys(sink_id), call))


def _state_keys(sink_id: str) -> list[str]:
    return [keys.sink(sink_id), keys.SINK_STATUS_COUNTS]


def state_updated(reply: Any) -> bool:
    """The reply of an ``update_sink_state`` as True (applied) or False."""
    return int(reply) == 1


def sink_from_raw(raw: dict[Any, Any]) -> SinkRecord | None:
    """A sink from its raw HGETALL reply (None when the hash is missing)."""
    return SinkRecord.from_hash(decode_hash(raw)) if raw else None


# --- retry state --------------------------------------------------------------------


retry_state_key = keys.retries  # the old name (callers outside storage/)


def reset_retry_state(client: redis.Redis | Pipeline, sink_id: str) -> None:
    """Forget a sink's failures (count and first-failure time): its retry
    schedule starts over. ``client`` may be a pipeline (staged, not sent)."""
    client.delete(keys.retries(sink_id))


def note_failure(client: redis.Redis, sink_id: str, *, count: bool, now_ms: int) -> tuple[int, int]:
    """Record a retryable failure: ``(failures counted on the schedule, epoch ms
    of the first failure since the last success)``. ``count=False`` for a
    throttled answer (its ``Retry-After`` sets the wait, the schedule stays put).
    Atomic, so it holds across workers and restarts."""
    args = ["1" if count else "0", str(int(now_ms))]
    n, since = scripts.NOTE_FAILURE(client, [keys.retries(sink_id)], args)
    return int(n), int(since)
