"""Every Lua script streamsink runs in Redis, with its KEYS and ARGV.

Each script is one module-level ``Script``: its text and SHA1, made once. A
call runs ``EVALSHA`` on a client (``SCRIPT LOAD`` then again when the server
does not know it yet), or queues ``EVAL`` on a pipeline (where ``EVALSHA``
would cost redis-py a ``SCRIPT EXISTS`` round trip). ``run_async`` does the
same on an asyncio client. Keys are named in ``storage.keys``; a key that the
script computes from a value it read is passed as a prefix in ARGV.

Scripts that several callers build from the same pieces (the append, the kick
of matching sinks) share Lua functions defined once below; the event log's
field names come from ``keys.LOG_FIELDS``, never spelled in the Lua text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from string import Template
from typing import Any

import redis
import redis.asyncio
from redis.client import Pipeline
from redis.exceptions import NoScriptError

from streamsink.storage import keys


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
        self, client: redis.asyncio.Redis, keys: Sequence[Any], args: Sequence[Any] = ()
    ) -> Any:
        """Run on an asyncio client; its reply."""
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await client.script_load(self.text)
            return await client.evalsha(self.sha, len(keys), *keys, *args)


def _lua(text: str, **names: object) -> str:
    """``text`` with ``$name`` replaced (Lua has no ``$``): constants named once."""
    return Template(text).substitute(names)


# --- locks and leases ----------------------------------------------------------------

#: Delete a lock only while it still holds our token (a lease, an idempotency
#: claim). KEYS[1] the lock; ARGV[1] our token. Returns 1 if deleted, else 0.
RELEASE_IF_HELD = Script(
    "release_if_held",
    """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
""",
)

#: Extend a lock only while it holds our token. KEYS[1] the lock; ARGV[1] our
#: token, ARGV[2] the new TTL in ms. Returns 1 if extended, else 0.
RENEW_IF_HELD = Script(
    "renew_if_held",
    """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
""",
)

#: Renew a sink's lease and, while it is ours, its kick flag, in one step.
#: KEYS[1] ``keys.lease(sink)``, KEYS[2] ``keys.kick(sink)``; ARGV[1] our token,
#: ARGV[2] lease TTL in ms, ARGV[3] kick TTL in s. Returns 1 while ours, else 0.
KEEP_ALIVE = Script(
    "keep_alive",
    """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('SET', KEYS[2], 1, 'EX', ARGV[3])
  return 1
end
return 0
""",
)

# --- append and kick -----------------------------------------------------------------

# ``append_events(first)``: resolve the stream and XADD the (event type,
# payload) pairs of ARGV[first..]; the stream id, or false when it is missing.
# KEYS[1] ``keys.stream(id)`` or ``keys.stream_uid(uid)``, KEYS[2]
# ``keys.METRICS_COUNTERS``; ARGV[1] the id or uid, ARGV[2] "id" | "uid",
# ARGV[3] ``keys.LOG_KEY_PREFIX``, ARGV[4] ingest time (ms), ARGV[5] the counter
# field, ARGV[6] the count to add to it.
_APPEND_EVENTS = _lua(
    """
local function append_events(first)
  local sid = ARGV[1]
  if ARGV[2] == 'uid' then
    sid = redis.call('GET', KEYS[1])
    if not sid then return false end
  elseif redis.call('EXISTS', KEYS[1]) == 0 then
    return false
  end
  local key = ARGV[3] .. sid
  for i = first, #ARGV, 2 do
    redis.call('XADD', key, '*', '$t', ARGV[i], '$p', ARGV[i + 1], '$ts', ARGV[4])
  end
  redis.call('HINCRBY', KEYS[2], ARGV[5], ARGV[6])
  redis.call('ZADD', '$trim_due', 'NX', ARGV[4], sid)  -- housekeeping by work: the trimmer
  return sid
end
""",
    t=keys.LOG_TYPE,
    p=keys.LOG_PAYLOAD,
    ts=keys.LOG_TS,
    trim_due=keys.TRIM_DUE,
)

# ``kick_matching(sinks_key, sink_prefix, kick_prefix, ttl, types)``: claims
# (SET NX EX ttl) the kick flag of every enabled sink in the sink index whose
# filter lets one of ``types`` (a set: type -> true) through; the claimed ids.
_KICK_MATCHING = _lua(
    """
local function kick_matching(sinks_key, sink_prefix, kick_prefix, ttl, types)
  local claimed, t = {}, redis.call('TIME')
  for _, id in ipairs(redis.call('ZRANGE', sinks_key, 0, -1)) do
    local f = redis.call('HMGET', sink_prefix .. id, 'id', 'status', 'eventTypes')
    local status = f[2] or ''
    if f[1] and (status == 'enabled' or status == '') then
      local match = true
      if f[3] and f[3] ~= '' then
        local wanted = cjson.decode(f[3])
        if type(wanted) == 'table' and #wanted > 0 then
          match = false
          for _, t in ipairs(wanted) do
            if types[t] then match = true end
          end
        end
      end
      if match and redis.call('SET', kick_prefix .. id, 1, 'NX', 'EX', ttl) then
        claimed[#claimed + 1] = id
        redis.call('ZADD', '$due', t[1] * 1000 + math.floor(t[2] / 1000), id)  -- lost job?
      end
    end
  end
  return claimed
end
""",
    due=keys.DUE,
)

#: Append events to an existing stream, all or none, and count them.
#: KEYS and ARGV[1..6] as ``append_events`` above; ARGV[7..] the (event type,
#: payload) pairs. Returns the stream id, or nil when the stream is missing.
#: ``storage.streams.append_call`` builds the call.
APPEND = Script("append", _APPEND_EVENTS + "return append_events(7)\n")

#: ``APPEND`` and then ``KICK_MATCHING`` for the stream's sinks, in one round
#: trip (the ingest fast lane). KEYS and ARGV[1..6] as ``APPEND``; ARGV[7]
#: ``keys.STREAM_KEY_PREFIX`` and ARGV[8] ``keys.STREAM_SINKS_SUFFIX`` (the sink
#: index is found from the resolved id), ARGV[9] ``keys.SINK_KEY_PREFIX``,
#: ARGV[10] ``keys.KICK_KEY_PREFIX``, ARGV[11] the kick TTL in s; ARGV[12..] the
#: pairs. Returns {stream id, claimed sink ids}, or nil when the stream is
#: missing. ``storage.streams.append_call(..., kick_ttl=...)`` builds the call.
APPEND_AND_KICK = Script(
    "append_and_kick",
    _APPEND_EVENTS
    + _KICK_MATCHING
    + """
local sid = append_events(12)
if not sid then return false end
local types = {}
for i = 12, #ARGV, 2 do types[ARGV[i]] = true end
return {sid, kick_matching(ARGV[7] .. sid .. ARGV[8], ARGV[9], ARGV[10], ARGV[11], types)}
""",
)

#: Claim the kick flags of the stream's enabled sinks that take one of the
#: event types. KEYS[1] ``keys.stream_sinks(stream)``; ARGV[1]
#: ``keys.SINK_KEY_PREFIX``, ARGV[2] ``keys.KICK_KEY_PREFIX``, ARGV[3] the kick
#: TTL in s, ARGV[4..] the event types. Returns the claimed sink ids.
KICK_MATCHING = Script(
    "kick_matching",
    _KICK_MATCHING
    + """
local types = {}
for i = 4, #ARGV do types[ARGV[i]] = true end
return kick_matching(KEYS[1], ARGV[1], ARGV[2], ARGV[3], types)
""",
)

# --- sink state ----------------------------------------------------------------------

#: Set or clear delivery fields of a sink that still exists, optionally only
#: while its cursor is unchanged (compare-and-set). KEYS[1] ``keys.sink(id)``;
#: ARGV[1] the expected cursor or '' (no check), ARGV[2..] field, value pairs
#: ('' deletes the field). Returns 1 applied, 0 no such sink, -1 cursor moved.
#: KEYS[2] ``keys.SINK_STATUS_COUNTS``: a status change moves one count.
UPDATE_SINK_STATE = Script(
    "update_sink_state",
    """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] ~= '' and redis.call('HGET', KEYS[1], 'cursor') ~= ARGV[1] then return -1 end
for i = 2, #ARGV, 2 do
  local old = ARGV[i] == 'status' and (redis.call('HGET', KEYS[1], 'status') or 'enabled')
  if old and old ~= ARGV[i + 1] then
    redis.call('HINCRBY', KEYS[2], old, -1); redis.call('HINCRBY', KEYS[2], ARGV[i + 1], 1)
  end
  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[1], ARGV[i])
  else redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
return 1
""",
)

#: Record a retryable failure of a sink (a counter left as a STRING by an older
#: version becomes the hash's ``n``). KEYS[1] ``keys.retries(sink)``; ARGV[1]
#: '1' to count it on the retry schedule, '0' not to, ARGV[2] now (ms).
#: Returns {n, since}: failures counted, epoch ms of the first failure.
NOTE_FAILURE = Script(
    "note_failure",
    """
if redis.call('TYPE', KEYS[1]).ok == 'string' then
  local old = redis.call('GET', KEYS[1])
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'n', old)
end
local n
if ARGV[1] == '1' then n = redis.call('HINCRBY', KEYS[1], 'n', 1)
else n = tonumber(redis.call('HGET', KEYS[1], 'n') or '0') end
redis.call('HSETNX', KEYS[1], 'since', ARGV[2])
return {n, tonumber(redis.call('HGET', KEYS[1], 'since'))}
""",
)

# --- the local receiver's trace store ------------------------------------------------

#: Store spans, then drop the oldest traces past the bounds. KEYS ``keys.local()``
#: in order: [1] traces, [2] span_count, [3] byte_count, [4] trace_bytes; ARGV[1]
#: the trace_prefix, ARGV[2] now (ms), ARGV[3..5] max traces, spans, bytes,
#: ARGV[6..] (trace id, span id, span JSON) triples. Returns {added, dropped,
#: rejected} (see ``receiver.store.AddResult``).
LOCAL_ADD = Script(
    "local_add",
    """
local zkey, ckey, bkey, skey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local prefix, now = ARGV[1], tonumber(ARGV[2])
local max_traces, max_spans, max_bytes = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local added, rejected, grown = 0, 0, 0
for i = 6, #ARGV, 3 do
  local tid, sid, span = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local key = prefix .. tid
  local old = redis.call('HSTRLEN', key, sid)
  local size = tonumber(redis.call('HGET', skey, tid) or '0')
  local fits = size - old + #span <= max_bytes
  if old == 0 and redis.call('HLEN', key) >= max_spans then fits = false end
  if fits then
    if redis.call('HSET', key, sid, span) == 1 then added = added + 1 end
    redis.call('HINCRBY', skey, tid, #span - old)
    grown = grown + #span - old
    redis.call('ZADD', zkey, now, tid)
  else
    rejected = rejected + 1
    if old > 0 then redis.call('ZADD', zkey, now, tid) end
  end
end
local total = redis.call('INCRBY', ckey, added)
local bytes = redis.call('INCRBY', bkey, grown)
local count = redis.call('ZCARD', zkey)
local dropped = 0
while count > max_traces or ((total > max_spans or bytes > max_bytes) and count > 1) do
  local oldest = redis.call('ZRANGE', zkey, 0, 0)[1]
  total = redis.call('DECRBY', ckey, redis.call('HLEN', prefix .. oldest))
  bytes = redis.call('DECRBY', bkey, tonumber(redis.call('HGET', skey, oldest) or '0'))
  redis.call('DEL', prefix .. oldest)
  redis.call('ZREM', zkey, oldest)
  redis.call('HDEL', skey, oldest)
  count = count - 1
  dropped = dropped + 1
end
return {added, dropped, rejected}
""",
)

#: Delete every stored trace. KEYS as ``LOCAL_ADD``; ARGV[1] the trace_prefix.
#: Returns how many traces there were.
LOCAL_CLEAR = Script(
    "local_clear",
    """
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, id in ipairs(ids) do redis.call('DEL', ARGV[1] .. id) end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
return #ids
""",
)

# --- housekeeping by work (``delivery.reaper``, ``scheduling``, ``trace_memory``) ----

#: Claim a sink's kick flag (KEYS[1]); when claimed, the sink (ARGV[1]) is due
#: in ``keys.DUE`` (KEYS[2]) at ARGV[3] ms. ARGV[2] the kick TTL (s). 1 if claimed.
KICK_ONE = Script(
    "kick_one",
    """
if not redis.call('SET', KEYS[1], 1, 'NX', 'EX', ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1]); return 1
""",
)

#: A sink with nothing to do leaves ``keys.DUE`` (KEYS[1]) unless its kick flag
#: or lease (KEYS[2], KEYS[3]) exists or its wake-up (KEYS[4]) is after now
#: (ARGV[2]); then it is due at ARGV[3] ('' keeps it). ARGV[1] the sink. 1 if left.
DUE_SETTLE = Script(
    "due_settle",
    """
local wait = tonumber(redis.call('GET', KEYS[4]) or '0')
if redis.call('EXISTS', KEYS[2], KEYS[3]) == 0 and wait <= tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[1], ARGV[1]); return 1
end
if ARGV[3] ~= '' then redis.call('ZADD', KEYS[1], 'XX', ARGV[3], ARGV[1]) end
return 0
""",
)

#: After a trim of log KEYS[1]: stream ARGV[1] leaves ``keys.TRIM_DUE`` (KEYS[2])
#: when the log is empty, else is scored max(oldest entry's ms, ARGV[2]).
TRIM_RESCORE = Script(
    "trim_rescore",
    """
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
if not first then redis.call('ZREM', KEYS[2], ARGV[1]); return 0 end
local ms = tonumber(string.match(first[1], '^(%d+)'))
redis.call('ZADD', KEYS[2], math.max(ms, tonumber(ARGV[2])), ARGV[1])
return 1
""",
)

#: Before a batch's HSET into the newest of a stream's four trace-memory generations
#: (KEYS[2..5]; KEYS[1] the head): past ARGV[3] entries with ARGV[4] more, or ARGV[2]
#: ms old, each moves one place down, the oldest dropped. ARGV[1] now, ARGV[5] TTL (s).
TRACES_ROTATE = Script(
    "traces_rotate",
    """
local now, life, cap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local h = redis.call('HMGET', KEYS[1], 't', 'n')
local t, n, adding = tonumber(h[1]), tonumber(h[2]) or 0, tonumber(ARGV[4])
if t and (n + adding > cap or now - t >= life) then
  redis.call('UNLINK', KEYS[5])
  for i = 4, 2, -1 do redis.pcall('RENAME', KEYS[i], KEYS[i + 1]) end  -- missing: no-op
  local e = redis.call('HMGET', KEYS[1], 'e0', 'e1', 'e2')
  redis.call('HSET', KEYS[1], 'e1', e[1] or 0, 'e2', e[2] or 0, 'e3', e[3] or 0)
  t, n = now, 0
end
redis.call('HSET', KEYS[1], 't', t or now, 'n', n + adding, 'e0', now)
redis.call('EXPIRE', KEYS[1], ARGV[5])
return n + adding
""",
)

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
    LOCAL_ADD,
    LOCAL_CLEAR,
    KICK_ONE,
    DUE_SETTLE,
    TRIM_RESCORE,
    TRACES_ROTATE,
)
