"""Stream event types in Redis (``ss:event-type:{name}`` + the ``ss:event-types``
name index). DELETE archives unless expunged; archived types are hidden from lists
unless asked for. Key layout: ``streamsink.storage.base``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
from redis.client import Pipeline

from streamsink.errors import Conflict, NotFound
from streamsink.storage import keys
from streamsink.storage.base import (
    Page,
    Window,
    decode_hash,
    dumps,
    loads,
    now_ms,
    scan_index,
    transaction,
)


@dataclass
class EventTypeRecord:
    name: str
    description: str | None = None
    feature_flags: list[str] | None = None
    deprecated: bool = False
    archived: bool = False
    created_at: int = 0
    updated_at: int = 0

    def to_hash(self) -> dict[str, str]:
        return {
            "name": self.name,
            "description": self.description or "",
            "featureFlags": dumps(self.feature_flags),
            "deprecated": "1" if self.deprecated else "0",
            "archived": "1" if self.archived else "0",
            "createdAt": str(self.created_at),
            "updatedAt": str(self.updated_at),
        }

    @classmethod
    def from_hash(cls, raw: dict[Any, Any]) -> EventTypeRecord:
        h = decode_hash(raw)
        return cls(
            name=h["name"],
            description=h.get("description") or None,
            feature_flags=loads(h.get("featureFlags"), None),
            deprecated=h.get("deprecated") == "1",
            archived=h.get("archived") == "1",
            created_at=int(h.get("createdAt") or 0),
            updated_at=int(h.get("updatedAt") or 0),
        )


FIELDS = ("description", "feature_flags", "deprecated", "archived")


def get_event_type(client: redis.Redis | Pipeline, name: str) -> EventTypeRecord | None:
    raw = client.hgetall(keys.event_type(name))
    return EventTypeRecord.from_hash(raw) if raw else None


def require_event_type(client: redis.Redis | Pipeline, name: str) -> EventTypeRecord:
    record = get_event_type(client, name)
    if record is None:
        raise NotFound(f"event type {name!r} not found")
    return record


def list_event_types(client: redis.Redis, window: Window, include_archived: bool) -> Page:
    """Event types in name order (``window.after`` is a name)."""

    def load(names: Sequence[str]) -> list[EventTypeRecord | None]:
        pipe = client.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(keys.event_type(name))
        out: list[EventTypeRecord | None] = []
        for raw in pipe.execute():
            rec = EventTypeRecord.from_hash(raw) if raw else None
            out.append(rec if rec is not None and (include_archived or not rec.archived) else None)
        return out

    return scan_index(client, keys.EVENT_TYPES, window, load, lex=True)


def _stage_write(pipe: Pipeline, record: EventTypeRecord) -> None:
    pipe.multi()
    pipe.hset(keys.event_type(record.name), mapping=record.to_hash())
    pipe.zadd(keys.EVENT_TYPES, {record.name: 0})


def create_event_type(client: redis.Redis, name: str, values: dict[str, Any]) -> EventTypeRecord:
    """Create; 409 Conflict when the name exists (archived or not)."""

    def run(pipe: Pipeline) -> EventTypeRecord:
        if pipe.exists(keys.event_type(name)):
            raise Conflict(f"event type {name!r} already exists")
        ts = now_ms()
        record = EventTypeRecord(name=name, created_at=ts, updated_at=ts, **_pick(values))
        _stage_write(pipe, record)
        return record

    return transaction(client, run, keys.event_type(name))


def upsert_event_type(
    client: redis.Redis, name: str, values: dict[str, Any]
) -> tuple[EventTypeRecord, bool]:
    """PUT: replace the fields of ``name`` or create it. Returns (record, created)."""

    def run(pipe: Pipeline) -> tuple[EventTypeRecord, bool]:
        current = get_event_type(pipe, name)
        ts = now_ms()
        record = EventTypeRecord(
            name=name,
            created_at=current.created_at if current else ts,
            updated_at=ts,
            **_pick(values),
        )
        _stage_write(pipe, record)
        return record, current is None

    return transaction(client, run, keys.event_type(name))


def patch_event_type(client: redis.Redis, name: str, changes: dict[str, Any]) -> EventTypeRecord:
    """Change only the given fields (None values are ignored)."""

    def run(pipe: Pipeline) -> EventTypeRecord:
        record = require_event_type(pipe, name)
        for key, value in _pick(changes).items():
            if value is not None:
                setattr(record, key, value)
        record.updated_at = now_ms()
        _stage_write(pipe, record)
        return record

    return transaction(client, run, keys.event_type(name))


def delete_event_type(client: redis.Redis, name: str, expunge: bool = False) -> None:
    """Archive ``name``, or remove it entirely when ``expunge``."""

    def run(pipe: Pipeline) -> None:
        record = require_event_type(pipe, name)
        if expunge:
            pipe.multi()
            pipe.delete(keys.event_type(name))
            pipe.zrem(keys.EVENT_TYPES, name)
            return
        record.archived = True
        record.updated_at = now_ms()
        _stage_write(pipe, record)

    transaction(client, run, keys.event_type(name))


def _pick(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k in FIELDS}
