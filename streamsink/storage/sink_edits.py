"""The API's sink writes: create, upsert, patch, delete, headers, transformation.
Each runs in one WATCHed MULTI; only changed fields are written (see ``store_sinks``)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import redis
from redis.client import Pipeline

from streamsink.errors import BadRequest, NotFound
from streamsink.resource_ids import SINK_PREFIX, new_sink_id, validate_uid
from streamsink.sink_fields import REDACTED
from streamsink.sinkhttp.signing import new_secret
from streamsink.storage import eventlog as event_log
from streamsink.storage import keys, tokens
from streamsink.storage.base import (
    check_uid_free,
    now_ms,
    transaction,
)
from streamsink.storage.sinks import (
    CONFIG_FIELDS,
    HASH_NAMES,
    SinkRecord,
    get_stream_sink,
    require_stream_sink,
    resolve_sink_id,
    stage_fields,
)


def _locate(client: redis.Redis, stream_id: str, id_or_uid: str) -> list[str]:
    """Keys to WATCH so that resolving ``id_or_uid`` stays valid until EXEC."""
    sink_id = resolve_sink_id(client, stream_id, id_or_uid)
    watch = [keys.stream(stream_id), keys.stream_sinks(stream_id)]
    if not id_or_uid.startswith(SINK_PREFIX):
        watch.append(keys.sink_uid(stream_id, id_or_uid))
    watch.append(keys.sink(sink_id or id_or_uid))
    return watch


def _require_stream(pipe: Pipeline, stream_id: str) -> None:
    if not pipe.exists(keys.stream(stream_id)):
        raise NotFound(f"stream {stream_id!r} not found")


def _stage_create(pipe: Pipeline, stream_id: str, values: dict[str, Any]) -> SinkRecord:
    uid = values.get("uid")
    if uid:
        check_uid_free(pipe, keys.sink_uid(stream_id, uid), uid, None)
    seq = int(pipe.incr(keys.SEQ))
    cursor = event_log.last_id(pipe, stream_id)
    ts = now_ms()
    record = SinkRecord(
        id=new_sink_id(),
        stream_id=stream_id,
        type=values["type"],
        url=values["url"],
        uid=uid,
        headers=values.get("headers") or {},
        encoding=values.get("encoding") or "auto",
        compression=values.get("compression") or "none",
        status=values.get("status") or "enabled",
        batch_size=values.get("batch_size") or 100,
        max_wait_secs=values.get("max_wait_secs") or 0,
        event_types=values.get("event_types") or [],
        channels=values.get("channels"),
        metadata=values.get("metadata") or {},
        secret=values.get("secret") or (new_secret() if values["type"] == "http" else None),
        cursor=cursor,
        created_at=ts,
        updated_at=ts,
        seq=seq,
    )
    pipe.multi()
    hash_values = {"id": record.id, "streamId": stream_id, "status": record.status}
    hash_values |= {CONFIG_FIELDS[k]: getattr(record, k) for k in CONFIG_FIELDS}
    hash_values |= {"cursor": cursor, "createdAt": ts, "updatedAt": ts, "seq": seq}
    stage_fields(pipe, record.id, hash_values)
    pipe.hincrby(keys.SINK_STATUS_COUNTS, record.status, 1)
    pipe.zadd(keys.stream_sinks(stream_id), {record.id: seq})
    if uid:
        pipe.set(keys.sink_uid(stream_id, uid), record.id)
    return record


def create_sink(client: redis.Redis, stream_id: str, values: dict[str, Any]) -> SinkRecord:
    """Create a sink from ``values`` (snake_case: type, url, headers, encoding,
    compression, uid, status, batch_size, max_wait_secs, event_types, channels,
    metadata); its cursor is the log's last entry id. 409 when the uid is taken in this stream."""
    watch = [keys.stream(stream_id), keys.event_log(stream_id)]
    if values.get("uid"):
        watch.append(keys.sink_uid(stream_id, values["uid"]))

    def run(pipe: Pipeline) -> SinkRecord:
        _require_stream(pipe, stream_id)
        return _stage_create(pipe, stream_id, values)

    return transaction(client, run, *watch)


def _stage_update(pipe: Pipeline, current: SinkRecord, changes: dict[str, Any]) -> SinkRecord:
    """Queue the changes (snake_case keys of CONFIG_FIELDS, plus ``status``): only
    the fields given are written. Setting ``enabled`` revives a disabled or paused
    sink (clearing failureReason/nextRetryAt and its retry state: the schedule
    and ``STREAMSINK_RETRY_MAX_ELAPSED`` start afresh); a retrying sink stays
    retrying. Setting ``disabled`` on a sink that is not clears the same failure
    state: a sink disabled by a user has no failureReason, which is how
    force-retry tells it from one disabled by a failure. A sink turned
    ``poller`` (by PUT) stops retrying: it is enabled; a sink turned from
    ``poller`` to another type loses its poller tokens at once. A new url or
    encoding forgets the negotiated encoding."""
    updates = {k: v for k, v in changes.items() if k in CONFIG_FIELDS and k != "uid"}
    if any(k in updates and updates[k] != getattr(current, k) for k in ("url", "encoding")):
        updates["negotiated_encoding"] = None
    if "uid" in changes and (changes["uid"] or None) != current.uid:
        new_uid = changes["uid"] or None
        if new_uid:
            check_uid_free(pipe, keys.sink_uid(current.stream_id, new_uid), new_uid, current.id)
        updates["uid"] = new_uid
    status = changes.get("status")
    revive = status == "enabled" and current.status in ("disabled", "paused")
    polled = updates.get("type") == keys.POLLER_SINK_TYPE
    if polled and current.status == "retrying" and status != "disabled":
        status, revive = "enabled", True  # a sink turned poller is never retried
    if revive:
        updates |= {"status": "enabled", "failure_reason": None, "next_retry_at": None}
    user_disable = status == "disabled" and current.status != "disabled"
    if user_disable:
        updates |= {"status": "disabled", "failure_reason": None, "next_retry_at": None}
    updates["updated_at"] = now_ms()
    unpolled = current.polled and updates.get("type", current.type) != current.type
    token_keys: list[str] = []
    if unpolled:  # read under WATCH, as delete_sink does
        pipe.watch(keys.poller_token(current.id))
        token_keys = tokens.poller_token_keys(pipe, current.id)
    pipe.multi()
    stage_fields(pipe, current.id, {HASH_NAMES[k]: v for k, v in updates.items()})
    if unpolled:
        tokens.stage_revoke_poller_tokens(pipe, current.id, token_keys)
    if updates.get("status", current.status) != current.status:
        pipe.hincrby(keys.SINK_STATUS_COUNTS, current.status, -1)
        pipe.hincrby(keys.SINK_STATUS_COUNTS, updates["status"], 1)
    if revive or user_disable:
        pipe.delete(keys.retries(current.id))
    if "uid" in updates:
        if current.uid:
            pipe.delete(keys.sink_uid(current.stream_id, current.uid))
        if updates["uid"]:
            pipe.set(keys.sink_uid(current.stream_id, updates["uid"]), current.id)
    record = replace(current, **updates)
    record.headers = record.headers or {}
    record.event_types = record.event_types or []
    record.metadata = record.metadata or {}
    return record


def patch_sink(
    client: redis.Redis, stream_id: str, id_or_uid: str, changes: dict[str, Any]
) -> SinkRecord:
    """Change only the given fields (see ``_stage_update``)."""
    watch = _locate(client, stream_id, id_or_uid)
    if changes.get("uid"):
        watch.append(keys.sink_uid(stream_id, changes["uid"]))

    def run(pipe: Pipeline) -> SinkRecord:
        current = require_stream_sink(pipe, stream_id, id_or_uid)
        if "headers" in changes:
            headers = keep_redacted(current.headers, changes["headers"] or {})
            return _stage_update(pipe, current, {**changes, "headers": headers})
        return _stage_update(pipe, current, changes)

    return transaction(client, run, *watch)


def upsert_sink(
    client: redis.Redis, stream_id: str, id_or_uid: str, values: dict[str, Any]
) -> tuple[SinkRecord, bool]:
    """PUT: replace the configuration of the sink (its cursor, code and, unless
    given, status and uid are kept), or create it with ``id_or_uid`` as its uid."""
    watch = _locate(client, stream_id, id_or_uid) + [keys.event_log(stream_id)]
    if values.get("uid"):
        watch.append(keys.sink_uid(stream_id, values["uid"]))

    def run(pipe: Pipeline) -> tuple[SinkRecord, bool]:
        _require_stream(pipe, stream_id)
        current = get_stream_sink(pipe, stream_id, id_or_uid)
        if current is None:
            if id_or_uid.startswith(SINK_PREFIX):
                raise NotFound(f"sink {id_or_uid!r} not found in stream {stream_id!r}")
            if values.get("uid") and values["uid"] != id_or_uid:
                raise BadRequest(
                    f"uid {values['uid']!r} in the body differs from {id_or_uid!r} in the path"
                )
            try:
                validate_uid(id_or_uid)
            except ValueError as exc:
                raise BadRequest(f"cannot create sink {id_or_uid!r}: {exc}") from None
            return _stage_create(pipe, stream_id, {**values, "uid": id_or_uid}), True
        changes = dict(values)
        if not changes.get("uid"):
            changes.pop("uid", None)
        changes["headers"] = keep_redacted(current.headers, values.get("headers") or {})
        return _stage_update(pipe, current, changes), False

    return transaction(client, run, *watch)


def delete_sink(client: redis.Redis, stream_id: str, id_or_uid: str) -> None:
    watch = _locate(client, stream_id, id_or_uid)

    def run(pipe: Pipeline) -> None:
        current = require_stream_sink(pipe, stream_id, id_or_uid)
        pipe.watch(keys.poller_token(current.id))
        token_keys = tokens.poller_token_keys(pipe, current.id)
        pipe.multi()
        stage_delete_sink_state(pipe, current.id, current.status)
        pipe.delete(*token_keys)
        pipe.zrem(keys.stream_sinks(stream_id), current.id)
        if current.uid:
            pipe.delete(keys.sink_uid(stream_id, current.uid))

    transaction(client, run, *watch)


def stage_delete_sink_state(pipe: Pipeline, sink_id: str, status: str) -> None:
    """Queue the deletion of a sink's hash and of everything kept for it: its
    retry state, attempts, due entry, kick and wake-up keys (a lease expires by
    itself), and its count in the sinks-by-status gauge (``pipe`` in MULTI)."""
    pipe.delete(keys.sink(sink_id), keys.retries(sink_id), keys.attempts(sink_id))
    pipe.delete(keys.kick(sink_id), keys.wait(sink_id))
    pipe.zrem(keys.DUE, sink_id)
    pipe.hincrby(keys.SINK_STATUS_COUNTS, status or "enabled", -1)


def keep_redacted(current: dict[str, str], new: dict[str, str]) -> dict[str, str]:
    """``new`` where a value equal to the redaction mask keeps the stored value
    (a client sending back what GET showed does not overwrite the secret)."""
    by_lower = {k.lower(): v for k, v in current.items()}
    return {
        name: by_lower.get(name.lower(), value) if value == REDACTED else value
        for name, value in new.items()
    }


def merge_headers(current: dict[str, str], changes: dict[str, str | None]) -> dict[str, str]:
    """Apply a header patch: names match case-insensitively, None deletes, the
    redaction mask keeps the stored value."""
    out = dict(current)
    for name, value in changes.items():
        existing = next((k for k in out if k.lower() == name.lower()), None)
        if value == REDACTED and existing is not None:
            continue
        if existing is not None:
            del out[existing]
        if value is not None:
            out[name] = value
    return out


def patch_sink_headers(
    client: redis.Redis, stream_id: str, id_or_uid: str, changes: dict[str, str | None]
) -> SinkRecord:
    watch = _locate(client, stream_id, id_or_uid)

    def run(pipe: Pipeline) -> SinkRecord:
        current = require_stream_sink(pipe, stream_id, id_or_uid)
        headers = merge_headers(current.headers, changes)
        return _stage_update(pipe, current, {"headers": headers})

    return transaction(client, run, *watch)


def set_sink_code(
    client: redis.Redis, stream_id: str, id_or_uid: str, code: str | None
) -> SinkRecord:
    """Set (or with None remove) the sink's transformation code."""
    watch = _locate(client, stream_id, id_or_uid)

    def run(pipe: Pipeline) -> SinkRecord:
        current = require_stream_sink(pipe, stream_id, id_or_uid)
        pipe.multi()
        stage_fields(pipe, current.id, {"code": code, "updatedAt": now_ms()})
        current.code = code
        return current

    return transaction(client, run, *watch)
