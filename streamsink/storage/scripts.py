"""Every Lua script streamsink runs in Redis, with its KEYS and ARGV.

Each script is one module-level ``Script``: its text and SHA1, made once. A
call runs ``EVALSHA`` on a client (``SCRIPT LOAD`` then again when the server
does not know it yet), or queues ``EVAL`` on a pipeline (where ``EVALSHA``
would cost redis-py a ``SCRIPT EXISTS`` round trip). ``run_async`` does the
same on an asyncio client. Keys are named in ``storage.keys``; a key that the
script computes from a value it read is passed as a prefix in ARGV.

The Lua text of each script is ``lua/<name>.lua`` beside this module (shipped
as package data), read once at import; this module stays the one registry:
every script, its KEYS and ARGV, and ``ALL``. Scripts that several callers
build from the same pieces (the append, the kick of matching sinks) share Lua
function libraries (``lua/_<name>.lua``) concatenated below; constants such as
the event log's field names (``keys.LOG_FIELDS``) are ``$name`` in the Lua
text, filled in here, never spelled there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from importlib import resources
from string import Template
from typing import Any

import redis
import redis.asyncio
from redis.client import Pipeline
from redis.exceptions import NoScriptError

from streamsink.storage import keys
from streamsink.storage.pipelined import PipelinedRedis


class Script:
    """A Lua script (see the module docstring)."""

    __slots__ = ("name", "text", "sha")

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()

    def __repr__(self) -> str:
        return f"Script({self.name!r})"

    def __call__(
        self, client: redis.Redis | Pipeline, keys: Sequence[Any], args: Sequence[Any] = ()
    ) -> Any:
        """Run on ``client`` (its reply), or queue on a pipeline (the pipeline)."""
        if isinstance(client, Pipeline):
            return client.eval(self.text, len(keys), *keys, *args)
        try:
            return client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            client.script_load(self.text)
            return client.evalsha(self.sha, len(keys), *keys, *args)

    async def run_async(
        self,
        client: redis.asyncio.Redis | PipelinedRedis,
        keys: Sequence[Any],
        args: Sequence[Any] = (),
    ) -> Any:
        """Run on an asyncio client (or the ingest lane's pipelined one); its reply."""
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await client.script_load(self.text)
            return await client.evalsha(self.sha, len(keys), *keys, *args)


def _lua(name: str, **names: object) -> str:
    """The text of ``lua/<name>.lua`` (package data), with ``$name`` replaced by
    ``names`` when given (Lua has no ``$``): constants named once, in Python."""
    text = (resources.files(__package__) / "lua" / f"{name}.lua").read_text(encoding="utf-8")
    return Template(text).substitute(names) if names else text


#: A log entry's bytes besides its type and payload (ids, fields, ingest time), and
#: the guessed size of an entry in a log with no estimate yet (an older version's).
ENTRY_OVERHEAD, ENTRY_GUESS = 40, 256

# --- locks and leases ----------------------------------------------------------------

#: Delete a lock only while it still holds our token (a lease, an idempotency
#: claim). KEYS[1] the lock; ARGV[1] our token. Returns 1 if deleted, else 0.
RELEASE_IF_HELD = Script(
    "release_if_held",
    _lua("release_if_held"),
)

#: Extend a lock only while it holds our token. KEYS[1] the lock; ARGV[1] our
#: token, ARGV[2] the new TTL in ms. Returns 1 if extended, else 0.
RENEW_IF_HELD = Script(
    "renew_if_held",
    _lua("renew_if_held"),
)

#: Renew a sink's lease and, while it is ours, its kick flag, in one step.
#: KEYS[1] ``keys.lease(sink)``, KEYS[2] ``keys.kick(sink)``; ARGV[1] our token,
#: ARGV[2] lease TTL in ms, ARGV[3] kick TTL in s. Returns 1 while ours, else 0.
KEEP_ALIVE = Script(
    "keep_alive",
    _lua("keep_alive"),
)

# --- append and kick -----------------------------------------------------------------

# Log ids as {ms, seq} (``parse_id``, ``id_lt``, ``id_text``) and the events
# of an entry (``entry_count``: a batch entry's count, an older release's one).
_LOG_IDS = _lua("_log_ids", n=keys.LOG_COUNT)
#: The field names of a log entry (``keys.LOG_BATCH_FIELDS``) as the Lua spells them.
_BATCH_FIELDS = dict(zip("nctlp", keys.LOG_BATCH_FIELDS, strict=True))

# ``trim_log(...)`` (``eventlog.trim_stream``): keeps what an enabled or retrying
# sink (not a poller) has not passed and, unless ``force``, what is newer than
# now - retention_ms; a disabled or paused sink's (or a poller's: its consumer
# sets the pace) unpassed events beyond go, counted exactly in events: the log's
# events are counted from the end (``held_events``, ``events_from``: the meta
# hash's running count and the entries' ``c`` and ``n``), so a trim of whole
# entries (``XTRIM MINID``, ``~ .. LIMIT`` past the limit) drops from each such
# sink what it owed of the oldest ones removed. Returns {events removed,
# estimated bytes kept}.
_TRIM_LOG = _LOG_IDS + _lua(
    "_trim_log",
    guess=ENTRY_GUESS,
    n=keys.LOG_COUNT,
)

# ``append_events(first)``: XADD one entry (``keys.LOG_BATCH_FIELDS``) for the
# events of ARGV[first..first+3] (count, types joined by "\n", payload lengths
# joined by ",", payloads end to end) to an existing stream, at the id of its
# last event (``log_position``: the meta hash's newest id and running count);
# the stream's id, or false. Over budget (after a forced trim) or when
# Redis refuses the XADD (OOM) nothing is written: an error reply
# (``STREAM_OVER_BUDGET <id> <held> <asked>``, or Redis's). Trims when due.
# KEYS[1] ``keys.stream(id)`` | ``keys.stream_uid(uid)``, KEYS[2] the counters,
# KEYS[3] (optional) ``keys.metrics_minute(m)`` of the ingest minute, kept
# ``keys.METRICS_MINUTE_TTL_SECS`` (the console's per-minute series);
# ARGV[1..14]: ``appends.append_call`` (id or uid, "id" | "uid", log prefix, now
# ms, counter field and count, key prefixes, ``eventlog.LogPolicy.args()``).
_APPEND_EVENTS = _TRIM_LOG + _lua(
    "_append_events",
    series_ttl=keys.METRICS_MINUTE_TTL_SECS,
    **_BATCH_FIELDS,
    trim_due=keys.TRIM_DUE,
    overhead=ENTRY_OVERHEAD,
)

# ``kick_matching(sinks_key, sink_prefix, kick_prefix, ttl, types)``: claims
# (SET NX EX ttl) the kick flag of every enabled sink in the sink index whose
# filter lets one of ``types`` (a set: type -> true) through; the claimed ids.
# Sinks of type ``keys.POLLER_SINK_TYPE`` are never kicked (no worker delivers them).
_KICK_MATCHING = _lua(
    "_kick_matching",
    due=keys.DUE,
    poller=keys.POLLER_SINK_TYPE,
)

#: Append events to an existing stream, all or none, and count them (within
#: the stream's budget; trims its log when due). KEYS and ARGV[1..14] as
#: ``append_events`` above; ARGV[15..18] the events (``appends.append_call``).
#: Returns the stream id, or nil when the stream is missing (errors: above).
#: ``storage.appends.append_call`` builds the call.
APPEND = Script("append", _APPEND_EVENTS + _lua("append"))

#: ``APPEND`` and then ``KICK_MATCHING`` for the stream's sinks, in one round
#: trip (the ingest fast lane). KEYS and ARGV[1..14] as ``APPEND``; ARGV[15]
#: ``keys.KICK_KEY_PREFIX``, ARGV[16] the kick TTL in s; ARGV[17..20] the events,
#: ARGV[21..] their distinct types.
#: Returns {stream id, claimed sink ids}, or nil when the stream is missing.
#: ``storage.appends.append_call(..., kick_ttl=...)`` builds the call.
APPEND_AND_KICK = Script(
    "append_and_kick",
    _APPEND_EVENTS + _KICK_MATCHING + _lua("append_and_kick"),
)

#: Claim the kick flags of the stream's enabled sinks that take one of the
#: event types. KEYS[1] ``keys.stream_sinks(stream)``; ARGV[1]
#: ``keys.SINK_KEY_PREFIX``, ARGV[2] ``keys.KICK_KEY_PREFIX``, ARGV[3] the kick
#: TTL in s, ARGV[4..] the event types. Returns the claimed sink ids.
KICK_MATCHING = Script(
    "kick_matching",
    _KICK_MATCHING + _lua("kick_matching"),
)

# --- sink state ----------------------------------------------------------------------

#: Set or clear delivery fields of a sink that still exists, optionally only
#: while its cursor is unchanged (compare-and-set). KEYS[1] ``keys.sink(id)``;
#: ARGV[1] the expected cursor or '' (no check), ARGV[2..] field, value pairs
#: ('' deletes the field). Returns 1 applied, 0 no such sink, -1 cursor moved.
#: KEYS[2] ``keys.SINK_STATUS_COUNTS``: a status change moves one count.
UPDATE_SINK_STATE = Script(
    "update_sink_state",
    _lua("update_sink_state"),
)

#: Record a retryable failure of a sink (a counter left as a STRING by an older
#: version becomes the hash's ``n``). KEYS[1] ``keys.retries(sink)``; ARGV[1]
#: '1' to count it on the retry schedule, '0' not to, ARGV[2] now (ms).
#: Returns {n, since}: failures counted, epoch ms of the first failure.
NOTE_FAILURE = Script(
    "note_failure",
    _lua("note_failure"),
)

#: The lag of one stream's sinks (``storage.overview``): events after each
#: cursor that the sink's filter takes. KEYS[1] ``keys.event_log(stream)``; ARGV[1]
#: events to scan at most per sink (16 entries a read), ARGV[2..] (first id, event types JSON or '')
#: pairs. Returns {count, 1 if the scan hit the cap, oldest counted id or ''} each.
SINK_LAG = Script(
    "sink_lag",
    _LOG_IDS
    + _lua(
        "sink_lag",
        n=keys.LOG_COUNT,
        t=keys.LOG_TYPE,
    ),
)

# --- the local receiver's trace store ------------------------------------------------

#: Store spans, then drop the oldest traces past the bounds. KEYS ``keys.local()``
#: in order: [1] traces, [2] span_count, [3] byte_count, [4] trace_bytes; ARGV[1]
#: the trace_prefix, ARGV[2] now (ms), ARGV[3..5] max traces, spans, bytes,
#: ARGV[6..] (trace id, span id, span JSON) triples. Returns {added, dropped,
#: rejected} (see ``receiver.store.AddResult``).
LOCAL_ADD = Script(
    "local_add",
    _lua("local_add"),
)

#: Delete every stored trace. KEYS as ``LOCAL_ADD``; ARGV[1] the trace_prefix.
#: Returns how many traces there were.
LOCAL_CLEAR = Script(
    "local_clear",
    _lua("local_clear"),
)

# --- housekeeping by work (``delivery.reaper``, ``scheduling``, ``trace_memory``) ----

#: Claim a sink's kick flag (KEYS[1]); when claimed, the sink (ARGV[1]) is due
#: in ``keys.DUE`` (KEYS[2]) at ARGV[3] ms. ARGV[2] the kick TTL (s). 1 if claimed.
KICK_ONE = Script(
    "kick_one",
    _lua("kick_one"),
)

#: A sink with nothing to do leaves ``keys.DUE`` (KEYS[1]) unless its kick flag
#: or lease (KEYS[2], KEYS[3]) exists or its wake-up (KEYS[4]) is after now
#: (ARGV[2]); then it is due at ARGV[3] ('' keeps it). ARGV[1] the sink. 1 if left.
DUE_SETTLE = Script(
    "due_settle",
    _lua("due_settle"),
)

#: After a trim of log KEYS[1]: stream ARGV[1] leaves ``keys.TRIM_DUE`` (KEYS[2])
#: when the log is empty, else is scored max(oldest entry's ms, ARGV[2]).
TRIM_RESCORE = Script(
    "trim_rescore",
    _lua("trim_rescore"),
)

#: Store a new portal token and index it under its stream (``storage.tokens``).
#: KEYS[1] the token key (``keys.token``), KEYS[2] the stream's index
#: (``keys.portal_tokens``); ARGV[1] the token's SHA-256, ARGV[2] its expiry (ms),
#: ARGV[3] now (ms), ARGV[4..] the token hash's field/value pairs. Expired index
#: entries are dropped; the index lives until its last token expires.
PORTAL_MINT = Script(
    "portal_mint",
    _lua("portal_mint"),
)

#: Before a batch's HSET into the newest of a stream's four trace-memory generations
#: (KEYS[2..5]; KEYS[1] the head): past ARGV[3] entries with ARGV[4] more, or ARGV[2]
#: ms old, each moves one place down, the oldest dropped. ARGV[1] now, ARGV[5] TTL (s).
TRACES_ROTATE = Script(
    "traces_rotate",
    _lua("traces_rotate"),
)

#: Expire a stream's portal tokens (``storage.tokens.expire_all``): each live token
#: (of the given sessions, when any) expires at ARGV[3] if that is sooner than its
#: own expiry; at or before now it is deleted at once. KEYS[1] the stream's index
#: (``keys.portal_tokens``); ARGV[1] the token key prefix (``keys.TOKEN_KEY_PREFIX``),
#: ARGV[2] now (ms), ARGV[3] the new expiry (ms), ARGV[4..] session ids (none: all).
#: Returns how many tokens it shortened or ended. Costs O(tokens of the stream).
PORTAL_EXPIRE_ALL = Script(
    "portal_expire_all",
    _lua("portal_expire_all"),
)

# --- http sinks' signing secrets ------------------------------------------------------

#: Set a sink's signing secret (fields ``secret``, ``oldSecret``,
#: ``oldSecretUntil`` of its hash: ``storage.sink_secrets``). KEYS[1]
#: ``keys.sink(id)``; ARGV[1] the new secret, ARGV[2] epoch ms until which the
#: current secret keeps signing beside it ('' drops it now), ARGV[3] '1' to set
#: only when the sink has no secret yet. Returns the secret in force, or nil
#: when the sink does not exist.
SET_SINK_SECRET = Script(
    "set_sink_secret",
    _lua("set_sink_secret"),
)

# --- the event log's trim ------------------------------------------------------------

#: Trim a stream's log now (``trim_log``). KEYS ``keys.event_log``, ``stream_sinks``,
#: ``log_meta`` (of the stream), ``METRICS_COUNTERS``; ARGV sink key prefix, now
#: (ms), retention (ms), '1' to force, trim limit, trim interval (ms).
TRIM_LOG = Script(
    "trim_log",
    _TRIM_LOG + _lua("trim_log"),
)

# --- reads of the log ----------------------------------------------------------------

#: Read entries from an id on until they hold ``want`` events from it (an entry
#: holds the events of one append: asking ``want`` entries would read up to
#: ``want`` appends). KEYS[1] ``keys.event_log(stream)``; ARGV[1] the first event
#: id wanted (``eventlog.next_id(cursor)``), ARGV[2] want. Returns the raw
#: entries, the first and the last cut to the events wanted (``cut``: a read
#: of one event of a 1,000-event append ships that event, not the append); a
#: read only (no AOF write).
READ_AFTER = Script(
    "read_after",
    _LOG_IDS + _lua("read_after", **_BATCH_FIELDS),
)

#: Append one entry to a log as is (no stream record, budget, counting or
#: trim: ``eventlog.append``, for tools and tests; the API uses ``APPEND``).
#: KEYS[1] ``keys.event_log(stream)``, KEYS[2] ``keys.log_meta(stream)``;
#: ARGV[1..4] the events as ``append_events`` takes them. The entry id, or nil
#: for no events.
LOG_ADD = Script("log_add", _APPEND_EVENTS + _lua("log_add"))

#: The id of the log's newest event: the meta hash's, else its newest entry's,
#: "0-0" when the log is missing or empty. KEYS[1] ``keys.event_log(stream)``,
#: KEYS[2] ``keys.log_meta(stream)``. A read only.
LAST_ID = Script("last_id", _lua("last_id"))

#: Every script, for tests and tools (``SCRIPT LOAD`` each to check it compiles).
ALL: tuple[Script, ...] = (
    RELEASE_IF_HELD,
    RENEW_IF_HELD,
    KEEP_ALIVE,
    APPEND,
    APPEND_AND_KICK,
    KICK_MATCHING,
    UPDATE_SINK_STATE,
    NOTE_FAILURE,
    SINK_LAG,
    LOCAL_ADD,
    LOCAL_CLEAR,
    KICK_ONE,
    DUE_SETTLE,
    TRIM_RESCORE,
    TRACES_ROTATE,
    PORTAL_MINT,
    PORTAL_EXPIRE_ALL,
    SET_SINK_SECRET,
    TRIM_LOG,
    READ_AFTER,
    LOG_ADD,
    LAST_ID,
)
