"""The atomic append of events to an existing stream (the ``APPEND`` and
``APPEND_AND_KICK`` scripts), on a sync or an asyncio client: all or none,
counted, within the stream's budget; the ingest fast lane also claims the
kick flags of the sinks that take the events, in the same round trip."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import redis
import redis.asyncio

from streamsink.resource_ids import STREAM_PREFIX
from streamsink.storage import eventlog, keys, scripts
from streamsink.storage.base import now_ms, to_str
from streamsink.storage.pipelined import PipelinedRedis

AsyncClient = redis.asyncio.Redis | PipelinedRedis


def append_call(
    id_or_uid: str,
    events: Sequence[tuple[str, str]],
    ts: int | None = None,
    *,
    kick_ttl: int | None = None,
    policy: eventlog.LogPolicy = eventlog.DEFAULT_POLICY,
) -> tuple[list[str], list[Any]]:
    """The keys and arguments of ``scripts.APPEND`` for (event type, payload)
    pairs, or of ``scripts.APPEND_AND_KICK`` with ``kick_ttl`` (the kick flags'
    TTL in s), so sync and asyncio clients run the same call (``policy``: the log's)."""
    is_stream_id = id_or_uid.startswith(STREAM_PREFIX)
    ts = ts if ts is not None else now_ms()
    args: list[Any] = [
        id_or_uid,
        "id" if is_stream_id else "uid",
        keys.LOG_KEY_PREFIX,
        str(ts),
        "events_ingested",
        len(events),
        keys.STREAM_KEY_PREFIX,
        keys.STREAM_SINKS_SUFFIX,
        keys.SINK_KEY_PREFIX,
        *policy.args(),
    ]
    if kick_ttl is not None:
        args += (keys.KICK_KEY_PREFIX, kick_ttl)
    args += eventlog.batch_args(events)
    if kick_ttl is not None:
        args += {event_type: None for event_type, _ in events}  # distinct, in order
    located = keys.stream(id_or_uid) if is_stream_id else keys.stream_uid(id_or_uid)
    return [located, keys.METRICS_COUNTERS, keys.metrics_minute(ts // 60_000)], args


@contextlib.contextmanager
def refusals(policy: eventlog.LogPolicy) -> Iterator[None]:
    """A refused append (budget, OOM) raised as its API error."""
    try:
        yield
    except redis.ResponseError as exc:
        raise (eventlog.refused(exc, policy.max_bytes) or exc) from None


def append_existing(
    client: redis.Redis,
    id_or_uid: str,
    events: Sequence[tuple[str, str]],
    ts: int | None = None,
    *,
    policy: eventlog.LogPolicy = eventlog.DEFAULT_POLICY,
) -> str | None:
    """Append (event type, payload) pairs to an existing stream, all or none, in one
    atomic step (a Lua script), counted in ``events_ingested``. The stream's id,
    None when it does not exist; ``StreamOverBudget`` or ``StoreFull`` if refused."""
    call_keys, args = append_call(id_or_uid, events, ts, policy=policy)
    with refusals(policy):
        return to_str(scripts.APPEND(client, call_keys, args))


async def append_existing_async(
    client: AsyncClient,
    id_or_uid: str,
    events: Sequence[tuple[str, str]],
    *,
    policy: eventlog.LogPolicy = eventlog.DEFAULT_POLICY,
) -> str | None:
    """``append_existing`` on an asyncio client."""
    call_keys, args = append_call(id_or_uid, events, policy=policy)
    with refusals(policy):
        return to_str(await scripts.APPEND.run_async(client, call_keys, args))


Claimed = tuple[str, list[str]]  # (stream id, the sink ids whose kick flag was claimed)


def _claimed(raw: Any) -> Claimed | None:
    if not raw:
        return None
    return str(to_str(raw[0])), [to_str(c) or "" for c in raw[1] or ()]


def append_and_kick(
    client: redis.Redis,
    id_or_uid: str,
    events: Sequence[tuple[str, str]],
    kick_ttl: int,
    *,
    policy: eventlog.LogPolicy = eventlog.DEFAULT_POLICY,
) -> Claimed | None:
    """``append_existing``, then claim (SET NX, ``kick_ttl`` s) the kick flag of
    every idle enabled sink of the stream whose filter takes one of the events'
    types, in the same script: one round trip. The caller enqueues a delivery
    job per claimed sink. None when the stream does not exist."""
    call_keys, args = append_call(id_or_uid, events, kick_ttl=kick_ttl, policy=policy)
    with refusals(policy):
        return _claimed(scripts.APPEND_AND_KICK(client, call_keys, args))


async def append_and_kick_async(
    client: AsyncClient,
    id_or_uid: str,
    events: Sequence[tuple[str, str]],
    kick_ttl: int,
    *,
    policy: eventlog.LogPolicy = eventlog.DEFAULT_POLICY,
) -> Claimed | None:
    """``append_and_kick`` on an asyncio client."""
    call_keys, args = append_call(id_or_uid, events, kick_ttl=kick_ttl, policy=policy)
    with refusals(policy):
        return _claimed(await scripts.APPEND_AND_KICK.run_async(client, call_keys, args))
