"""Streams in Redis: create, get by id or uid, list, upsert, patch, delete (with
their sinks and log). Keys: ``streamsink.storage.keys``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
from redis.client import Pipeline

from streamsink.errors import BadRequest, NotFound
from streamsink.resource_ids import STREAM_PREFIX, is_id, new_stream_id, validate_stream_uid
from streamsink.storage import keys, tokens
from streamsink.storage.base import (
    Page,
    Window,
    check_uid_free,
    decode_hash,
    dumps,
    loads,
    now_ms,
    scan_index,
    to_str,
    transaction,
)
from streamsink.storage.sink_edits import stage_delete_sink_state
from streamsink.storage.trace_memory import forget_stream

# --- streams --------------------------------------------------------------------


@dataclass
class StreamRecord:
    id: str
    name: str | None
    uid: str | None
    metadata: dict[str, str]
    created_at: int
    updated_at: int
    seq: int

    def to_hash(self) -> dict[str, str]:
        return {
            "id": self.id,
            "name": self.name or "",
            "uid": self.uid or "",
            "metadata": dumps(self.metadata),
            "createdAt": str(self.created_at),
            "updatedAt": str(self.updated_at),
            "seq": str(self.seq),
        }

    @classmethod
    def from_hash(cls, raw: dict[Any, Any]) -> StreamRecord:
        h = decode_hash(raw)
        return cls(
            id=h["id"],
            name=h.get("name") or None,
            uid=h.get("uid") or None,
            metadata=loads(h.get("metadata"), {}),
            created_at=int(h.get("createdAt") or 0),
            updated_at=int(h.get("updatedAt") or 0),
            seq=int(h.get("seq") or 0),
        )


def resolve_stream_id(client: redis.Redis | Pipeline, id_or_uid: str) -> str | None:
    """The id of the stream named by an id or a uid, or None when it does not exist."""
    if id_or_uid.startswith(STREAM_PREFIX):
        return id_or_uid if client.exists(keys.stream(id_or_uid)) else None
    return to_str(client.get(keys.stream_uid(id_or_uid)))


def get_stream(client: redis.Redis | Pipeline, id_or_uid: str) -> StreamRecord | None:
    stream_id = resolve_stream_id(client, id_or_uid)
    if stream_id is None:
        return None
    raw = client.hgetall(keys.stream(stream_id))
    return StreamRecord.from_hash(raw) if raw else None


def require_stream(client: redis.Redis | Pipeline, id_or_uid: str) -> StreamRecord:
    record = get_stream(client, id_or_uid)
    if record is None:
        raise NotFound(f"stream {id_or_uid!r} not found")
    return record


def list_streams(client: redis.Redis, window: Window) -> Page:
    def load(ids: Sequence[str]) -> list[StreamRecord | None]:
        pipe = client.pipeline(transaction=False)
        for stream_id in ids:
            pipe.hgetall(keys.stream(stream_id))
        return [StreamRecord.from_hash(raw) if raw else None for raw in pipe.execute()]

    return scan_index(client, keys.STREAMS, window, load)


def stage_new_stream(
    pipe: Pipeline,
    *,
    name: str | None,
    uid: str | None,
    metadata: dict[str, str] | None,
    stream_id: str | None = None,
) -> StreamRecord:
    """Checks in immediate mode, then queues the writes (the caller is in MULTI after)."""
    if uid:
        check_uid_free(pipe, keys.stream_uid(uid), uid, None)
    seq = int(pipe.incr(keys.SEQ))
    ts = now_ms()
    record = StreamRecord(
        id=stream_id or new_stream_id(),
        name=name,
        uid=uid,
        metadata=metadata or {},
        created_at=ts,
        updated_at=ts,
        seq=seq,
    )
    pipe.multi()
    pipe.hset(keys.stream(record.id), mapping=record.to_hash())
    pipe.zadd(keys.STREAMS, {record.id: seq})
    if uid:
        pipe.set(keys.stream_uid(uid), record.id)
    return record


def create_stream(
    client: redis.Redis,
    *,
    name: str | None,
    uid: str | None,
    metadata: dict[str, str] | None,
) -> StreamRecord:
    """Create a stream; 409 Conflict when ``uid`` is taken."""

    stream_id = new_stream_id()

    def run(pipe: Pipeline) -> StreamRecord:
        return stage_new_stream(pipe, name=name, uid=uid, metadata=metadata, stream_id=stream_id)

    watch = [keys.stream(stream_id)] + ([keys.stream_uid(uid)] if uid else [])
    return transaction(client, run, *watch)


def _locate(client: redis.Redis, id_or_uid: str) -> tuple[str | None, list[str]]:
    """The stream id (or None) and the keys to WATCH so that the lookup stays valid."""
    stream_id = resolve_stream_id(client, id_or_uid)
    watch = [] if id_or_uid.startswith(STREAM_PREFIX) else [keys.stream_uid(id_or_uid)]
    watch.append(keys.stream(stream_id or id_or_uid))
    return stream_id, watch


def _check_new_uid(value: str) -> str:
    try:
        return validate_stream_uid(value)
    except ValueError as exc:
        raise BadRequest(f"cannot create stream {value!r}: {exc}") from None


def upsert_stream(
    client: redis.Redis,
    id_or_uid: str,
    *,
    name: str | None,
    uid: str | None,
    metadata: dict[str, str] | None,
) -> tuple[StreamRecord, bool]:
    """PUT: replace name/metadata (and uid when given) of the stream, or create it
    with ``id_or_uid`` as its uid. Returns (record, created)."""
    _, watch = _locate(client, id_or_uid)
    if uid:
        watch.append(keys.stream_uid(uid))

    def run(pipe: Pipeline) -> tuple[StreamRecord, bool]:
        current = get_stream(pipe, id_or_uid)
        if current is None:
            if id_or_uid.startswith(STREAM_PREFIX):
                raise NotFound(f"stream {id_or_uid!r} not found")
            if uid and uid != id_or_uid:
                raise BadRequest(f"uid {uid!r} in the body differs from {id_or_uid!r} in the path")
            new_uid = _check_new_uid(id_or_uid)
            return stage_new_stream(pipe, name=name, uid=new_uid, metadata=metadata), True
        changes: dict[str, Any] = {"name": name, "metadata": metadata or {}}
        if uid is not None:
            changes["uid"] = uid
        return _stage_stream_update(pipe, current, changes), False

    return transaction(client, run, *watch)


def patch_stream(client: redis.Redis, id_or_uid: str, changes: dict[str, Any]) -> StreamRecord:
    """Apply ``changes`` (keys among name, uid, metadata; uid None removes it)."""
    _, watch = _locate(client, id_or_uid)
    if changes.get("uid"):
        watch.append(keys.stream_uid(changes["uid"]))

    def run(pipe: Pipeline) -> StreamRecord:
        return _stage_stream_update(pipe, require_stream(pipe, id_or_uid), changes)

    return transaction(client, run, *watch)


def _stage_stream_update(
    pipe: Pipeline, current: StreamRecord, changes: dict[str, Any]
) -> StreamRecord:
    new_uid = changes.get("uid", current.uid) or None
    if new_uid and new_uid != current.uid:
        check_uid_free(pipe, keys.stream_uid(new_uid), new_uid, current.id)
    metadata = changes.get("metadata")
    record = StreamRecord(
        id=current.id,
        name=changes.get("name", current.name),
        uid=new_uid,
        metadata=current.metadata if metadata is None else metadata,
        created_at=current.created_at,
        updated_at=now_ms(),
        seq=current.seq,
    )
    pipe.multi()
    pipe.hset(keys.stream(record.id), mapping=record.to_hash())
    if new_uid != current.uid:
        if current.uid:
            pipe.delete(keys.stream_uid(current.uid))
        if new_uid:
            pipe.set(keys.stream_uid(new_uid), record.id)
    return record


def delete_stream(client: redis.Redis, id_or_uid: str) -> None:
    """Delete a stream with its sinks (and their uids and poller tokens), its
    event log and its portal tokens."""
    stream_id = resolve_stream_id(client, id_or_uid)
    if stream_id is None:
        raise NotFound(f"stream {id_or_uid!r} not found")

    def run(pipe: Pipeline) -> None:
        raw = pipe.hgetall(keys.stream(stream_id))
        if not raw:
            raise NotFound(f"stream {id_or_uid!r} not found")
        record = StreamRecord.from_hash(raw)
        sink_ids = [to_str(s) or "" for s in pipe.zrange(keys.stream_sinks(stream_id), 0, -1)]
        rows = [pipe.hmget(keys.sink(s), "uid", "status") for s in sink_ids]
        if sink_ids:
            pipe.watch(*(keys.poller_token(s) for s in sink_ids))
        doomed = tokens.portal_token_keys(pipe, stream_id)  # and the sinks' poller tokens:
        doomed += [k for s in sink_ids for k in tokens.poller_token_keys(pipe, s)]
        pipe.multi()
        pipe.delete(*doomed)
        pipe.delete(keys.stream(stream_id), keys.stream_sinks(stream_id))
        pipe.delete(keys.event_log(stream_id), keys.log_meta(stream_id))
        pipe.zrem(keys.STREAMS, stream_id)
        pipe.zrem(keys.TRIM_DUE, stream_id)
        forget_stream(pipe, stream_id)  # its trace memory
        if record.uid:
            pipe.delete(keys.stream_uid(record.uid))
        for sink_id, (raw_uid, raw_status) in zip(sink_ids, rows, strict=True):
            sink_uid = to_str(raw_uid)
            stage_delete_sink_state(pipe, sink_id, to_str(raw_status) or "enabled")
            if sink_uid:
                pipe.delete(keys.sink_uid(stream_id, sink_uid))

    watch = (keys.stream(stream_id), keys.stream_sinks(stream_id), keys.portal_tokens(stream_id))
    transaction(client, run, *watch)


def ensure_stream(
    pipe: Pipeline, id_or_uid: str, create: dict[str, Any] | None
) -> tuple[str, StreamRecord | None]:
    """Inside a WATCH block (see ``stream_watch_keys``): the stream's id, creating it
    from ``create`` (StreamIn fields) when missing, with ``id_or_uid`` as its id when
    it is id-shaped, else as its uid; the new record is returned second, its writes
    queued (the pipeline is then in MULTI). NotFound when missing and no ``create``."""
    stream_id = resolve_stream_id(pipe, id_or_uid)
    if stream_id is not None:
        return stream_id, None
    if create is None:
        raise NotFound(f"stream {id_or_uid!r} not found")
    fields = {"name": create.get("name"), "metadata": create.get("metadata")}
    if id_or_uid.startswith(STREAM_PREFIX):
        if not is_id(id_or_uid, STREAM_PREFIX):
            raise BadRequest(f"{id_or_uid!r} is not a valid stream id")
        record = stage_new_stream(pipe, uid=create.get("uid"), stream_id=id_or_uid, **fields)
    else:
        record = stage_new_stream(pipe, uid=_check_new_uid(id_or_uid), **fields)
    return record.id, record


def stream_watch_keys(
    client: redis.Redis, id_or_uid: str, create: dict[str, Any] | None
) -> list[str]:
    """Keys to WATCH around ``ensure_stream``."""
    _, watch = _locate(client, id_or_uid)
    if create and create.get("uid") and id_or_uid.startswith(STREAM_PREFIX):
        watch.append(keys.stream_uid(create["uid"]))
    return watch
