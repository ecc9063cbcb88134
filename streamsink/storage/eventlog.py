"""The per-stream event log: a Redis Stream at ``ss:log:{stream_id}``.

An append writes one entry holding all its events (``keys.LOG_BATCH_FIELDS``:
count, running count, types, payload lengths, payloads), at the id of its last
event; its events have the ids before it at the same millisecond, so every
event has an id ``<ms>-<seq>`` of its own, in log order. Event ids are the
log's positions: a sink's cursor is the id of the last event it has delivered
("0-0" = before the first), and may point inside an entry; an event's ingest
time is its id's milliseconds (Redis's clock at the append). Entries of older
releases (one event each, ``keys.LOG_FIELDS``, maybe a ``ts`` field) still read.
One entry per append, not per event, is what makes an append cheap for Redis
(docs/capacity.md: one XADD and one AOF record instead of a hundred).

The log is bounded (``trim_stream``, README "Retention and back-pressure"): an
event is kept while an enabled or retrying sink has not passed it, and for the
replay window ``LogPolicy.retention_ms``; a disabled or paused sink's events go
past the window, counted on the sink (``droppedEvents``, ``droppedSince``) and
in the ``events_dropped`` metric. An entry goes whole, once every sink that
holds the log has passed its last event. Appends keep an estimate of the log's
bytes (``keys.log_meta``); past ``LogPolicy.max_bytes`` they are refused
(``StreamOverBudget``) until the sinks catch up. Trims happen by work: in the
append script when the stream's next trim is due, and from ``trim_stream``.

Reads run ``scripts.READ_AFTER`` (entries until they hold the events wanted).
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
_N = keys.LOG_COUNT.encode()  # a batch entry's first field name, as a raw reply has it
_BATCH = keys.LOG_BATCH_FIELDS


class LogEntry(NamedTuple):
    """One event of the log."""

    id: str
    event_type: str
    payload: str
    ts: int  # ingest time, epoch ms


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def batch_args(events: Sequence[tuple[str, str]]) -> list[Any]:
    """The events of one append as the append script takes them: count, types
    joined by "\n", payload lengths (UTF-8 bytes) joined by ",", payloads."""
    return [
        len(events),
        "\n".join([t for t, _ in events]),
        ",".join([str(len(p) if p.isascii() else len(p.encode())) for _, p in events]),
        "".join([p for _, p in events]),
    ]


def _expand(entry_id: Any, fields: Any) -> list[LogEntry]:
    """The events of one entry (raw reply or redis-py's dict shape; any release's)."""
    eid = _s(entry_id)
    if isinstance(fields, dict):
        named = {_s(k): v for k, v in fields.items()}
        if keys.LOG_COUNT in named:
            fields = [x for name in _BATCH for x in (name, named.get(name, b""))]
        else:
            fields = [x for kv in named.items() for x in kv]
    if fields and _s(fields[0]) == keys.LOG_COUNT:  # a batch entry
        n = int(fields[1])
        types = _s(fields[5]).split("\n")
        lengths = _s(fields[7]).split(",")
        raw = fields[9] if isinstance(fields[9], bytes) else str(fields[9]).encode()
        ms_text, _, seq = eid.partition("-")
        ms, first = int(ms_text), int(seq) - n + 1
        out, at = [], 0
        for i in range(n):
            end = at + int(lengths[i])
            out.append(LogEntry(f"{ms_text}-{first + i}", types[i], raw[at:end].decode(), ms))
            at = end
        return out
    f = {_s(k): v for k, v in zip(fields[::2], fields[1::2], strict=True)}
    ts = f.get(_TS)
    return [
        LogEntry(
            id=eid,
            event_type=_s(f.get(_T, b"")),
            payload=_s(f.get(_P, b"")),
            ts=int(_s(ts)) if ts is not None else entry_ms(eid),
        )
    ]


def entry_ms(entry_id: str) -> int:
    """The millisecond part of an entry id."""
    return int(entry_id.split("-", 1)[0])


def _pos(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


_U64 = 2**64 - 1


def next_id(entry_id: str) -> str:
    """The smallest id strictly after ``entry_id`` (exclusive XRANGE start, any Redis)."""
    m, s = _pos(entry_id)
    return f"{m}-{s + 1}" if s < _U64 else f"{m + 1}-0"


def prev_id(entry_id: str) -> str | None:
    """The largest id strictly before ``entry_id``, or None before "0-0"."""
    m, s = _pos(entry_id)
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
    """Append (event_type, payload) pairs to the log as one entry, atomically;
    their event ids, in order. Only the log: no stream record is needed and no
    budget, count or trim applies (the API appends with ``storage.appends``).
    With ``pipeline`` the script is queued there and None is returned."""
    call = ([keys.event_log(stream_id), keys.log_meta(stream_id)], batch_args(events))
    if pipeline is not None:
        scripts.LOG_ADD(pipeline, *call)
        return None
    if not events:
        return []
    m, s = _pos(_s(scripts.LOG_ADD(client, *call)))
    return [f"{m}-{s - len(events) + 1 + i}" for i in range(len(events))]


def last_id(client: redis.Redis | Pipeline, stream_id: str) -> str:
    """Id of the newest event, "0-0" when the log is empty or missing (on a
    client, or a pipeline still in immediate mode under WATCH)."""
    return last_id_from(stage_last_id(client, stream_id))


def stage_last_id(client: redis.Redis | Pipeline, stream_id: str) -> Any:
    """``last_id`` queued on a pipeline (``last_id_from`` reads its reply), or
    its raw reply on a client."""
    return scripts.LAST_ID(client, [keys.event_log(stream_id), keys.log_meta(stream_id)])


def wait_after(client: redis.Redis | Pipeline, stream_id: str, cursor: str, ms: int) -> Any:
    """Entries after ``cursor`` (truthy) once one came, within ``ms`` (XREAD BLOCK)."""
    return client.xread({keys.event_log(stream_id): cursor}, count=1, block=ms)


def last_id_from(reply: Any) -> str:
    return _s(reply) if reply else START


def read_after(client: redis.Redis, stream_id: str, cursor: str, count: int) -> list[tuple]:
    """Up to ``count`` (event id, event type, payload) strictly after ``cursor``."""
    return [e[:3] for e in entries_after(client, stream_id, cursor, count)]


def entries_after(client: redis.Redis, stream_id: str, cursor: str, count: int) -> list[LogEntry]:
    """Like ``read_after`` with full entries (ingest time included)."""
    return entries_from(stage_entries_after(client, stream_id, cursor, count), cursor, count)


def stage_entries_after(
    client: redis.Redis | Pipeline, stream_id: str, cursor: str, count: int
) -> Any:
    """``entries_after`` queued on a pipeline (``entries_from`` reads its reply
    with the same cursor and count), or its raw reply on a client."""
    return scripts.READ_AFTER(client, [keys.event_log(stream_id)], [next_id(cursor), count])


def entries_from(raw: Any, cursor: str, count: int) -> list[LogEntry]:
    """The first ``count`` events strictly after ``cursor`` in a ``READ_AFTER``
    (or XRANGE) reply."""
    out = parse_entries(raw)
    if out and _pos(out[0].id) <= _pos(cursor):
        after = _pos(cursor)
        out = [e for e in out if _pos(e.id) > after]
    return out[:count]


def parse_entries(raw: Any) -> list[LogEntry]:
    """The events of the entries of an XRANGE-like reply, in order."""
    out: list[LogEntry] = []
    for eid, fields in raw or ():
        out += _expand(eid, fields)
    return out


def latest(
    client: redis.Redis,
    stream_id: str,
    limit: int,
    *,
    before: str | None = None,
    after_ms: int | None = None,
) -> list[LogEntry]:
    """The newest ``limit`` events, newest first; strictly before the id ``before``
    when given, and only those ingested at or after ``after_ms`` when given."""
    key = keys.event_log(stream_id)
    hi, out = "+", []
    lo = f"{after_ms}-0" if after_ms is not None else "-"
    if before is not None:
        prev = prev_id(before)
        if prev is None or limit <= 0:
            return []
        # The entry holding ``before`` may hold events before it too.
        held = client.xrange(key, before, "+", count=1)
        if held and _pos(_s(held[0][0])) >= _pos(lo if lo != "-" else START):
            out = [e for e in reversed(parse_entries(held)) if _pos(e.id) <= _pos(prev)]
        hi = prev
    ask, entries = 1, 0
    while len(out) < limit:
        raw = client.xrevrange(key, hi, lo, count=ask)
        for eid, fields in raw:
            out += reversed(_expand(eid, fields))
        entries += len(raw)
        below = prev_id(_s(raw[-1][0])) if len(raw) == ask else None
        if below is None:
            break
        hi = below
        # as many entries as the events still wanted take, at the mean so far
        ask = max(1, -(-(limit - len(out)) * entries // max(1, len(out))))
    return out[:limit]


def length(client: redis.Redis, stream_id: str) -> int:
    """Events the log holds."""
    first = client.xrange(keys.event_log(stream_id), "-", "+", count=1)
    if not first:
        return 0
    fields = first[0][1]
    if keys.LOG_COUNT not in {_s(k) for k in fields}:  # an older release's entries
        return int(client.xlen(keys.event_log(stream_id)))
    named = {_s(k): v for k, v in fields.items()}
    total = client.hget(keys.log_meta(stream_id), "total") or named[keys.LOG_TOTAL]
    return max(int(total) - int(named[keys.LOG_TOTAL]) + int(named[keys.LOG_COUNT]), 0)


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
    removed: int  # events removed
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
