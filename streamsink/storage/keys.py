"""Every Redis key streamsink uses, defined here and nowhere else.

All keys start with ``PREFIX`` (``ss:``). RQ's own keys (``rq:queue:*``,
``rq:job:*``, its registries, workers and scheduler locks) belong to RQ and are
not listed; streamsink only names its two queues (``delivery.scheduling``).
Writers: API (the API processes, ``receiver`` = its local OTLP receiver),
worker (delivery workers, their reaper included).
Lua scripts (``storage.scripts``) receive keys as KEYS, or a key prefix from
here as an ARGV when the key depends on a value read inside the script.

====================================  ======  ======================================  ============
key                                   type    holds                                   written by
====================================  ======  ======================================  ============
ss:seq                                STRING  INCR counter: creation order of         API
                                              streams and sinks
ss:streams                            ZSET    stream ids, score = seq (list order)    API
ss:stream:{stream_id}                 HASH    id uid name metadata(json) createdAt    API
                                              updatedAt seq
ss:stream-uid:{uid}                   STRING  -> stream id                            API
ss:stream:{stream_id}:sinks           ZSET    the stream's sink ids, score = seq      API
ss:stream:{stream_id}:sink-uid:{uid}  STRING  -> sink id (sink uids are per stream)   API
ss:sink:{sink_id}                     HASH    config, status, cursor, code,           API, worker
                                              droppedEvents, droppedSince...
                                              (``storage.sinks``); http sinks'
                                              signing secrets
                                              (``storage.sink_secrets``)
ss:retries:{sink_id}                  HASH    n: failures on the retry schedule,      worker
                                              since: ms of the first failure
ss:attempts:{sink_id}                 LIST    the newest delivery attempts, JSON      worker
ss:event-types                        ZSET    event-type names, score 0               API
                                              (lexicographic order)
ss:event-type:{name}                  HASH    name description featureFlags(json)     API
                                              deprecated archived createdAt
                                              updatedAt
ss:log:{stream_id}                    STREAM  the event log: an entry per append,     API, worker
                                              fields ``LOG_BATCH_FIELDS`` (an older   (trims)
                                              release's: ``LOG_FIELDS``, one event)
ss:log-meta:{stream_id}               HASH    bytes: the log's estimated size, next:  API, worker
                                              ms of its next trim, last: the newest
                                              event id, total: events ever appended
                                              (``eventlog``)
ss:traces:{stream_id}:{n}             HASH    span id (8 bytes) -> trace id (hex)     worker
                                              (``trace_memory``): generation n = 0..3,
                                              newest first, capped, expires
ss:traces:{stream_id}                 HASH    the newest generation's start and       worker
                                              count, each one's last write (expires)
ss:metrics:c                          HASH    counters, field ``name{labels}``        API, worker
ss:metrics:h:{name}                   HASH    histogram: per-bucket counts, sum       worker
ss:metrics:m:{minute}                 HASH    per-minute totals of some counters      API, worker
                                              (``metrics.SERIES``), minute = epoch
                                              s // 60, expires after 2 h
ss:kick:{sink_id}                     STRING  set while a delivery job is queued or   API, worker
                                              running (TTL)
ss:lease:{sink_id}                    STRING  token of the one process delivering     worker
                                              (TTL)
ss:wait:{sink_id}                     STRING  epoch ms of a scheduled wake-up (TTL)   worker
ss:due                                ZSET    sink ids the reaper must look at,       API, worker
                                              score = when (ms)
ss:trim-due                           ZSET    stream ids whose log may need a trim,   API, worker
                                              score = oldest untrimmed append (ms)
ss:sinks:by-status                    HASH    status -> number of sinks (gauge)       API, worker
ss:housekeeping                       STRING  set once the due sets and counts were   worker
                                              built from a walk (an older data dir)
ss:reaper                             STRING  lock: one reaper round at a time (TTL)  worker
ss:trimmer                            STRING  lock: one log-trim round a minute       worker
                                              (TTL)
ss:idem:{sha256}                      STRING  an Idempotency-Key's claim or stored    API
                                              answer
ss:token:{sha256}                     HASH    a scoped token, by the SHA-256 of its   API
                                              text: kind (portal|poller) streamId
                                              sinkId gen readOnly sessionId
                                              featureFlags createdAt expiresAt
                                              (TTL when it expires)
ss:portal-tokens:{stream_id}          ZSET    the stream's portal tokens: SHA-256 ->  API
                                              expiresAt (TTL: the last expiry)
ss:poller:{sink_id}                   HASH    the sink's poller token: gen id hash    API
                                              createdAt expiresAt (the text is
                                              derived, never stored)
ss:local:traces                       ZSET    local receiver: trace id, score = last  receiver
                                              seen ms
ss:local:span_count                   STRING  local receiver: spans stored            receiver
ss:local:bytes                        STRING  local receiver: span JSON bytes stored  receiver
ss:local:trace_bytes                  HASH    local receiver: trace id -> bytes       receiver
ss:local:trace:{trace_id}             HASH    local receiver: span id -> span JSON    receiver
====================================  ======  ======================================  ============

Times are epoch milliseconds unless said otherwise.
"""

from __future__ import annotations

from typing import NamedTuple

PREFIX = "ss:"

# --- streams and sinks (``storage.streams``, ``storage.sinks``) ----------------------

SEQ = PREFIX + "seq"
STREAMS = PREFIX + "streams"
STREAM_KEY_PREFIX = PREFIX + "stream:"
STREAM_SINKS_SUFFIX = ":sinks"
SINK_KEY_PREFIX = PREFIX + "sink:"
#: The ``type`` of a sink hash that no worker delivers: the consumer polls it
#: (``GET .../events``); the kick script skips it.
POLLER_SINK_TYPE = "poller"


def stream(stream_id: str) -> str:
    return STREAM_KEY_PREFIX + stream_id


def stream_uid(uid: str) -> str:
    return f"{PREFIX}stream-uid:{uid}"


def stream_sinks(stream_id: str) -> str:
    return STREAM_KEY_PREFIX + stream_id + STREAM_SINKS_SUFFIX


def sink_uid(stream_id: str, uid: str) -> str:
    return f"{STREAM_KEY_PREFIX}{stream_id}:sink-uid:{uid}"


def sink(sink_id: str) -> str:
    return SINK_KEY_PREFIX + sink_id


def retries(sink_id: str) -> str:
    return f"{PREFIX}retries:{sink_id}"


def attempts(sink_id: str) -> str:
    return f"{PREFIX}attempts:{sink_id}"


# --- event types (``storage.event_types``) -----------------------------------------

EVENT_TYPES = PREFIX + "event-types"


def event_type(name: str) -> str:
    return f"{PREFIX}event-type:{name}"


# --- the event log (``storage.eventlog``) ------------------------------------------

LOG_KEY_PREFIX = PREFIX + "log:"
#: A log entry holds the events of one append, in the order of these fields:
#: their count, the log's running count of events up to and including them,
#: their types joined by "\n" (names never hold one), their payloads' lengths in
#: UTF-8 bytes joined by ",", and the payloads end to end. The entry's id is the
#: id of its last event; its events have the ids before it at the same
#: millisecond: ``<ms>-<seq - count + 1>`` .. ``<ms>-<seq>``.
LOG_COUNT = "n"
LOG_TOTAL = "c"
LOG_TYPES = "t"
LOG_LENGTHS = "l"
LOG_PAYLOADS = "p"
LOG_BATCH_FIELDS = (LOG_COUNT, LOG_TOTAL, LOG_TYPES, LOG_LENGTHS, LOG_PAYLOADS)
#: The entry of an older release: one event, its type and payload (and, older
#: still, its ingest ms in ``ts``). Still read; an entry's ingest time is its
#: id's millisecond part (Redis's clock at the append).
LOG_TYPE = "t"
LOG_PAYLOAD = "p"
LOG_TS = "ts"
LOG_FIELDS = (LOG_TYPE, LOG_PAYLOAD)


def event_log(stream_id: str) -> str:
    return LOG_KEY_PREFIX + stream_id


LOG_META_KEY_PREFIX = PREFIX + "log-meta:"


def log_meta(stream_id: str) -> str:
    """The log's size estimate, trim schedule, newest id and running event count
    (``eventlog``)."""
    return LOG_META_KEY_PREFIX + stream_id


TRACES_KEY_PREFIX = PREFIX + "traces:"


def traces(stream_id: str, generation: int) -> str:
    """One generation of the span id -> trace id memory (``trace_memory``)."""
    return f"{TRACES_KEY_PREFIX}{stream_id}:{generation}"


def traces_head(stream_id: str) -> str:
    """The trace memory's current generation, its start and size (``trace_memory``)."""
    return TRACES_KEY_PREFIX + stream_id


# --- metrics (``storage.metrics``) -------------------------------------------------

METRICS_COUNTERS = PREFIX + "metrics:c"


def metrics_histogram(name: str) -> str:
    return f"{PREFIX}metrics:h:{name}"


METRICS_MINUTE_TTL_SECS = 2 * 3600  # a minute's totals outlive the hour the console shows


def metrics_minute(minute: int) -> str:
    """One minute's totals (``metrics.SERIES``); ``minute`` = epoch seconds // 60."""
    return f"{PREFIX}metrics:m:{minute}"


# --- delivery coordination (``delivery.scheduling``, ``delivery.reaper``) ---------

KICK_KEY_PREFIX = PREFIX + "kick:"
REAPER_LOCK = PREFIX + "reaper"
TRIMMER_LOCK = PREFIX + "trimmer"
#: Sinks the reaper must look at, score = epoch ms from when (``delivery.reaper``).
DUE = PREFIX + "due"
#: Streams whose log may need a trim, score = the oldest untrimmed append (ms).
TRIM_DUE = PREFIX + "trim-due"
#: Sinks by status (the ``streamsink_sinks`` gauge), kept on every status change.
SINK_STATUS_COUNTS = PREFIX + "sinks:by-status"
#: Set once the sets above were built by a walk (a data dir from before them).
HOUSEKEEPING_BUILT = PREFIX + "housekeeping"


def kick(sink_id: str) -> str:
    return KICK_KEY_PREFIX + sink_id


def lease(sink_id: str) -> str:
    return f"{PREFIX}lease:{sink_id}"


def wait(sink_id: str) -> str:
    """``wait("*")`` is the pattern of every wake-up key."""
    return f"{PREFIX}wait:{sink_id}"


# --- the API's Idempotency-Key (``api.middleware.idempotency``) --------------------

IDEMPOTENCY_KEY_PREFIX = PREFIX + "idem:"


def idempotency(digest: str) -> str:
    return IDEMPOTENCY_KEY_PREFIX + digest


# --- scoped tokens: portal and poller (``storage.tokens``) ------------------------

TOKEN_KEY_PREFIX = PREFIX + "token:"


def token(digest: str) -> str:
    """A scoped token by the SHA-256 (hex) of its text; never the text itself."""
    return TOKEN_KEY_PREFIX + digest


def portal_tokens(stream_id: str) -> str:
    return f"{PREFIX}portal-tokens:{stream_id}"


def poller_token(sink_id: str) -> str:
    return f"{PREFIX}poller:{sink_id}"


# --- the local OTLP receiver (``receiver.store``) ----------------------------------

LOCAL_KEY_PREFIX = PREFIX + "local:"


class LocalKeys(NamedTuple):
    """The local receiver's keys under ``prefix`` (``LOCAL_KEY_PREFIX``; tests
    may use another)."""

    traces: str  # ZSET trace id -> last seen ms
    span_count: str  # STRING spans stored
    byte_count: str  # STRING span JSON bytes stored
    trace_bytes: str  # HASH trace id -> bytes
    trace_prefix: str  # + trace id: HASH span id -> span JSON


def local(prefix: str = LOCAL_KEY_PREFIX) -> LocalKeys:
    return LocalKeys(
        f"{prefix}traces",
        f"{prefix}span_count",
        f"{prefix}bytes",
        f"{prefix}trace_bytes",
        f"{prefix}trace:",
    )
