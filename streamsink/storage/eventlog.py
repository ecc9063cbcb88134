"""The per-stream event log: a Redis Stream at ``ss:log:{stream_id}``.

Each entry has fields ``t`` (event type) and ``p`` (payload text):
``keys.LOG_FIELDS``, in that order. Entry ids (``<ms>-<seq>``) are the log's
positions: a sink's cursor is the id of the last entry it has delivered ("0-0" =
before the first); an entry's ingest time is its id's milliseconds (Redis's clock
at the append; entries of earlier releases carry it in a ``ts`` field, still
read). Appends of one request go in a single MULTI so they are all-or-nothing.

The log is bounded (``trim_stream``, README "Retention and back-pressure"): an
entry is kept while an enabled or retrying sink has not passed it, and for the
replay window ``LogPolicy.retention_ms``; a disabled or paused sink's entries go
past the window, counted on the sink (``droppedEvents``, ``droppedSince``) and
in the ``events_dropped`` metric. Appends keep an estimate of the log's bytes
(``keys.log_meta``); past ``LogPolicy.max_bytes`` they are refused
(``StreamOverBudget``) until the sinks catch up. Trims happen by work: in the
append script when the stream's next trim is due, and from ``trim_stream``.

Reads of the delivery path send ``XRANGE`` with its name as bytes, so redis-py
applies no reply callback (no dict per entry); ``parse_entries`` decodes the
raw reply, and any other shape (a callback's, fields in another order) too.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import redis
from redis.client import Pipeline

from streamsink.errors import StoreFull, StreamOverBudget
from streamsink.storage import keys, scripts

START = "0-0"
_T, _P = keys.LOG_FIELDS
_TS = keys.LOG_TS
_USUAL = [name.encode() for name in keys.LOG_FIELDS]  # as a raw reply names them


log_key = keys.event_log  # the old name (callers outside storage/)


class LogEntry(NamedTuple):
    id: str
    event_type: str
    payload: str
    ts: int  # ingest time, epoch ms


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entry(entry_id: Any, fields: Any) -> LogEntry:
    eid = _s(entry_id)
    if not isinstance(fields, dict):  # a raw reply: [name, value, name, value, ...]
        fields = dict(zip(fields[::2], fields[1::2], strict=True))
    f = {_s(k): v for k, v in fields.items()}
    ts = f.get(_TS)
    return LogEntry(
        id=eid,
        event_type=_s(f.get(_T, b"")),
        payload=_s(f.get(_P, b"")),
        ts=int(_s(ts)) if ts is not None else entry_ms(eid),
    )


def entry_ms(entry_id: str) -> int:
    """The millisecond part of an entry id."""
    return int(entry_id.split("-", 1)[0])


_U64 = 2**64 - 1


def next_id(entry_id: str) -> str:
    """The smallest id strictly after ``entry_id`` (exclusive XRANGE start, any Redis)."""
    ms, _, seq = entry_id.partition("-")
    m, s = int(ms), int(seq or 0)
    return f"{m}-{s + 1}" if s < _U64 else f"{m + 1}-0"


def prev_id(entry_id: str) -> str | None:
    """The largest id strictly before ``entry_id``, or None before "0-0"."""
    ms, _, seq = entry_id.partition("-")
    m, s = int(ms), int(seq or 0)
    if s > 0:
        return f"{m}-{s - 1}"
    if m > 0:
        return f"{m - 1}-{_U64}"
    return None


def is_entry_id(value: str) -> bool:
    """True for a Redis Stream id ``<ms>-<seq>`` (both unsigned 64-bit)."""
    ms, sep, seq = value.partition("-")
    if not (sep and ms.isdigit() and seq.isdigit() and ms.isascii() and seq.isascii()):
        return False
    return int(ms) < _U64 and int(seq) <= _U64


def append(
    client: redis.Redis,
    stream_id: str,
    events: Sequence[tuple[str, str]],
    *,
    pipeline: Pipeline | None = None,
) -> list[str] | None:
    """Append (event_type, payload) pairs atomically; their entry ids, in order.

    With ``pipeline`` (already in MULTI) the XADDs are queued there and None is
    returned: the caller's EXEC makes them part of its transaction."""
    key = keys.event_log(stream_id)
    if pipeline is None and not events:
        return []
    pipe = pipeline if pipeline is not None else client.pipeline(transaction=True)
    for event_type, payload in events:
        pipe.xadd(key, {_T: event_type, _P: payload})
    if pipeline is not None:
        return None
    return [_s(eid) for eid in pipe.execute()]


def last_id(client: redis.Redis | Pipeline, stream_id: str) -> str:
    """Id of the newest entry, "0-0" when the log is empty or missing."""
    newest = client.xrevrange(keys.event_log(stream_id), "+", "-", count=1)
    return _s(newest[0][0]) if newest else START


def stage_last_id(pipe: Pipeline, stream_id: str) -> None:
    """``last_id`` queued on a pipeline; ``last_id_from`` reads its reply."""
    pipe.xrevrange(keys.event_log(stream_id), "+", "-", count=1)


def last_id_from(reply: Any) -> str:
    return _s(reply[0][0]) if reply else START


def read_after(
    client: redis.Redis, stream_id: str, cursor: str, count: int
) -> list[tuple[str, str, str]]:
    """Up to ``count`` (entry id, event type, payload) strictly after ``cursor``."""
    return [
        (e.id, e.event_type, e.payload) for e in entries_after(client, stream_id, cursor, count)
    ]


def entries_after(
    client: redis.Redis | Pipeline, stream_id: str, cursor: str, count: int
) -> list[LogEntry]:
    """Like ``read_after`` with full entries (ingest time included)."""
    return parse_entries(_xrange(client, stream_id, cursor, count))


def stage_entries_after(pipe: Pipeline, stream_id: str, cursor: str, count: int) -> None:
    """``entries_after`` queued on a pipeline; ``parse_entries`` reads its reply
    (a read, so not folded into ``entries_after``: its reply comes from EXEC)."""
    _xrange(pipe, stream_id, cursor, count)


def _xrange(client: redis.Redis | Pipeline, stream_id: str, cursor: str, count: int) -> Any:
    # b"XRANGE": redis-py has callbacks for str command names only.
    return client.execute_command(
        b"XRANGE", keys.event_log(stream_id), next_id(cursor), "+", b"COUNT", count
    )


def parse_entries(raw: Any) -> list[LogEntry]:
    """Entries from an XRANGE reply (raw, or as redis-py's callback shapes it)."""
    out: list[LogEntry] = []
    append, make = out.append, LogEntry._make
    for eid, fields in raw or ():
        # The usual raw entry: XADD wrote t, p in this order.
        if type(fields) is list and len(fields) == 4 and fields[0::2] == _USUAL:
            eid = eid.decode()
            ms = eid[: eid.index("-")]
            append(make((eid, fields[1].decode(), fields[3].decode(), int(ms))))
        else:
            append(_entry(eid, fields))
    return out


def latest(
    client: redis.Redis,
    stream_id: str,
    limit: int,
    *,
    before: str | None = None,
    after_ms: int | None = None,
) -> list[LogEntry]:
    """The newest ``limit`` entries, newest first; strictly before the id ``before``
    when given, and only those ingested at or after ``after_ms`` when given."""
    hi = "+"
    if before is not None:
        prev = prev_id(before)
        if prev is None:
            return []
        hi = prev
    lo = f"{after_ms}-0" if after_ms is not None else "-"
    raw = client.xrevrange(keys.event_log(stream_id), hi, lo, count=limit)
    return [_entry(eid, fields) for eid, fields in raw]


def length(client: redis.Redis, stream_id: str) -> int:
    return int(client.xlen(keys.event_log(stream_id)))


# --- bounds: retention, budget, trim -----------------------------------------------

#: Seconds a client is asked to wait (``Retry-After``) when a stream is over its
#: budget or Redis is out of memory.
RETRY_AFTER_S = 2
#: A stream's log is trimmed at most this often by its appends (ms).
TRIM_EVERY_MS = 1000
#: Entries one approximate trim may remove (``XTRIM ... LIMIT``): bounds its cost.
TRIM_LIMIT = 20_000


class LogPolicy(NamedTuple):
    """How a stream's log is bounded (from ``Settings``: ``for_settings``)."""

    retention_ms: int = 3600 * 1000
    max_bytes: int = 256 * 1024 * 1024  # 0: no budget
    trim_every_ms: int = TRIM_EVERY_MS
    trim_limit: int = TRIM_LIMIT

    @classmethod
    def for_settings(cls, settings: Any) -> LogPolicy:
        """The policy of ``STREAMSINK_LOG_RETENTION_SECS`` and
        ``STREAMSINK_STREAM_MAX_BYTES`` (defaults for a settings-less caller)."""
        if settings is None:
            return DEFAULT_POLICY
        return cls(
            retention_ms=int(settings.log_retention_secs) * 1000,
            max_bytes=int(settings.stream_max_bytes),
        )

    def args(self) -> list[Any]:
        """ARGV[10..14] of ``scripts.APPEND`` (after the key prefixes)."""
        return [
            keys.LOG_META_KEY_PREFIX,
            self.retention_ms,
            self.max_bytes,
            self.trim_every_ms,
            self.trim_limit,
        ]


DEFAULT_POLICY = LogPolicy()


class Trimmed(NamedTuple):
    removed: int  # entries removed
    bytes: int  # the log's estimated size after


def trim_stream(
    client: redis.Redis,
    stream_id: str,
    policy: LogPolicy = DEFAULT_POLICY,
    *,
    now_ms: int | None = None,
    force: bool = False,
) -> Trimmed:
    """Trim ``stream_id``'s log now: one script, O(the stream's sinks) + O(entries
    removed, at most ``policy.trim_limit`` beyond exact drops). ``force``: over
    the budget, the replay window is not kept (undelivered events still are)."""
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    removed, size = scripts.TRIM_LOG(
        client,
        [
            keys.event_log(stream_id),
            keys.stream_sinks(stream_id),
            keys.log_meta(stream_id),
            keys.METRICS_COUNTERS,
        ],
        [
            keys.SINK_KEY_PREFIX,
            now,
            policy.retention_ms,
            "1" if force else "0",
            policy.trim_limit,
            policy.trim_every_ms,
        ],
    )
    return Trimmed(int(removed), int(size))


def estimated_bytes(client: redis.Redis, stream_id: str) -> int:
    """The log's size as its appends and trims estimate it (0 when unknown)."""
    return int(client.hget(keys.log_meta(stream_id), "bytes") or 0)


def entry_bytes(events: Sequence[tuple[str, str]]) -> int:
    """What ``events`` add to a log's estimate (as the append script counts:
    characters of type and payload, plus ``scripts.ENTRY_OVERHEAD`` each)."""
    return sum(len(t.encode()) + len(p.encode()) for t, p in events) + (
        scripts.ENTRY_OVERHEAD * len(events)
    )


def check_budget(
    client: redis.Redis, stream_id: str, events: Sequence[tuple[str, str]], policy: LogPolicy
) -> None:
    """Raise ``StreamOverBudget`` when ``events`` would take the log past its
    budget even after a forced trim (the route's create-the-stream path; the
    append script checks the same, atomically)."""
    if policy.max_bytes <= 0:
        return
    asked = entry_bytes(events)
    if estimated_bytes(client, stream_id) + asked <= policy.max_bytes:
        return
    held = trim_stream(client, stream_id, policy, force=True).bytes
    if held + asked > policy.max_bytes:
        raise StreamOverBudget(stream_id, held, asked, policy.max_bytes, RETRY_AFTER_S)


def stage_accounting(pipe: Pipeline, stream_id: str, events: Sequence[tuple[str, str]]) -> None:
    """Queue the estimate's growth for ``events`` appended on ``pipe`` (``append``)."""
    pipe.hincrby(keys.log_meta(stream_id), "bytes", entry_bytes(events))


_OVER_BUDGET = "STREAM_OVER_BUDGET "


def refused(exc: redis.ResponseError, max_bytes: int) -> Exception | None:
    """The API error for an append the store refused (over the stream's budget,
    or Redis out of memory), or None for any other error."""
    text = str(exc)
    at = text.find(_OVER_BUDGET)
    if at >= 0:
        sid, held, asked = (text[at + len(_OVER_BUDGET) :].split() + ["?", "0", "0"])[:3]
        return StreamOverBudget(sid, int(held), int(asked), max_bytes, RETRY_AFTER_S)
    if is_oom(exc):
        return StoreFull(RETRY_AFTER_S)
    return None


def is_oom(exc: BaseException) -> bool:
    """True for Redis refusing a write under ``maxmemory`` (also inside a script)."""
    return isinstance(exc, redis.OutOfMemoryError) or (
        isinstance(exc, redis.ResponseError) and "OOM command not allowed" in str(exc)
    )
