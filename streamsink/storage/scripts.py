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


#: A log entry's bytes besides its type and payload (ids, fields, ingest time), and
#: the guessed size of an entry in a log with no estimate yet (an older version's).
ENTRY_OVERHEAD, ENTRY_GUESS = 40, 256

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

# ``trim_log(...)`` (``eventlog.trim_stream``): keeps what an enabled or retrying
# sink (not a poller) has not passed and, unless ``force``, what is newer than
# now - retention_ms; a disabled or paused sink's (or a poller's: its consumer
# sets the pace) unpassed entries beyond go,
# counted exactly (exact trims to each such cursor first, then one ``XTRIM MINID
# ~ .. LIMIT``). Returns {entries removed, estimated bytes kept}.
_TRIM_LOG = _lua(
    """
local FAR = {4503599627370496, 0}
local function parse_id(id)
  local ms, seq = string.match(id or '', '^(%d+)-(%d+)$$')
  return {tonumber(ms or 0), tonumber(seq or 0)}
end
local function id_lt(a, b) return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2]) end
local function id_text(a) return string.format('%.0f-%.0f', a[1], a[2]) end
local function held_bytes(meta, log_key)
  return tonumber(redis.call('HGET', meta, 'bytes') or redis.call('XLEN', log_key) * $guess)
end
local function trim_log(log_key, sinks_key, sink_prefix, meta, counters, now, retention_ms,
                        force, limit, every_ms)
  local before = redis.call('XLEN', log_key)
  if before == 0 then redis.call('DEL', meta) return {0, 0} end
  local floor = force and FAR or {math.max(now - retention_ms, 0), 0}
  local parked, losing, counted, removed = {}, {}, {}, 0
  for _, id in ipairs(redis.call('ZRANGE', sinks_key, 0, -1)) do
    local f = redis.call('HMGET', sink_prefix .. id, 'id', 'status', 'cursor', 'type')
    local c = parse_id(f[3])
    local nxt, status = {c[1], c[2] + 1}, f[2] or ''
    if not f[1] then
    elseif f[4] ~= 'poller' and (status == 'enabled' or status == 'retrying' or status == '') then
      if id_lt(nxt, floor) then floor = nxt end
    else parked[#parked + 1] = {id, nxt} end
  end
  for _, b in ipairs(parked) do if id_lt(b[2], floor) then losing[#losing + 1] = b end end
  table.sort(losing, function(x, y) return id_lt(x[2], y[2]) end)
  local first = parse_id(redis.call('XRANGE', log_key, '-', '+', 'COUNT', 1)[1][1])
  for i, b in ipairs(losing) do
    if id_lt(first, b[2]) then
      local n = redis.call('XTRIM', log_key, 'MINID', id_text(b[2]))
      for j = 1, i - 1 do counted[j] = (counted[j] or 0) + n end
      removed, first = removed + n, b[2]
    end
  end
  local n  -- exact within the limit (else '~' keeps a small log whole: it would stay due)
  if before > tonumber(limit) then
    n = redis.call('XTRIM', log_key, 'MINID', '~', id_text(floor), 'LIMIT', limit)
  else n = redis.call('XTRIM', log_key, 'MINID', id_text(floor)) end
  removed = removed + n
  for j, b in ipairs(losing) do
    local dropped = (counted[j] or 0) + n
    if dropped > 0 then
      redis.call('HINCRBY', sink_prefix .. b[1], 'droppedEvents', dropped)
      redis.call('HSETNX', sink_prefix .. b[1], 'droppedSince', now)
      redis.call('HINCRBY', counters, 'events_dropped{sink=' .. b[1] .. '}', dropped)
    end
  end
  local bytes = math.floor(held_bytes(meta, log_key) * (before - removed) / before)
  redis.call('HSET', meta, 'bytes', bytes, 'next', now + every_ms)
  return {removed, bytes}
end
""",
    guess=ENTRY_GUESS,
)

# ``append_events(first)``: XADD the (type, payload) pairs of ARGV[first..] to an
# existing stream; its id, or false. Over budget (after a forced trim) or when
# Redis refuses the first XADD (OOM) nothing is written: an error reply
# (``STREAM_OVER_BUDGET <id> <held> <asked>``, or Redis's). Trims when due.
# KEYS[1] ``keys.stream(id)`` | ``keys.stream_uid(uid)``, KEYS[2] the counters,
# KEYS[3] (optional) ``keys.metrics_minute(m)`` of the ingest minute, kept
# ``keys.METRICS_MINUTE_TTL_SECS`` (the console's per-minute series);
# ARGV[1..14]: ``streams.append_call`` (id or uid, "id" | "uid", log prefix, now
# ms, counter field and count, key prefixes, ``eventlog.LogPolicy.args()``).
_APPEND_EVENTS = _TRIM_LOG + _lua(
    """
local function append_events(first)
  local sid = ARGV[1]
  if ARGV[2] == 'uid' then
    sid = redis.call('GET', KEYS[1])
    if not sid then return false end
  elseif redis.call('EXISTS', KEYS[1]) == 0 then
    return false
  end
  local key, now, meta, size = ARGV[3] .. sid, tonumber(ARGV[4]), ARGV[10] .. sid, 0
  local function trim(force)
    return trim_log(key, ARGV[7] .. sid .. ARGV[8], ARGV[9], meta, KEYS[2], now,
                    tonumber(ARGV[11]), force, ARGV[14], tonumber(ARGV[13]))
  end
  for i = first, #ARGV, 2 do size = size + #ARGV[i] + #ARGV[i + 1] + $overhead end
  local budget = tonumber(ARGV[12])
  if budget > 0 and held_bytes(meta, key) + size > budget then
    local held = trim(true)[2]
    if held + size > budget then
      return redis.error_reply(string.format('STREAM_OVER_BUDGET %s %d %d', sid, held, size))
    end
  end
  for i = first, #ARGV, 2 do
    local added = redis.pcall('XADD', key, '*', '$t', ARGV[i], '$p', ARGV[i + 1], '$ts', ARGV[4])
    if type(added) == 'table' and added.err then
      if i == first then trim(true) end
      return added
    end
  end
  redis.call('HINCRBY', meta, 'bytes', size)
  redis.call('HINCRBY', KEYS[2], ARGV[5], ARGV[6])
  if KEYS[3] then
    redis.call('HINCRBY', KEYS[3], ARGV[5], ARGV[6])
    redis.call('EXPIRE', KEYS[3], $series_ttl)
  end
  redis.call('ZADD', '$trim_due', 'NX', ARGV[4], sid)  -- housekeeping by work: the trimmer
  if now >= tonumber(redis.call('HGET', meta, 'next') or '0') then trim(false) end
  return sid
end
""",
    series_ttl=keys.METRICS_MINUTE_TTL_SECS,
    t=keys.LOG_TYPE,
    p=keys.LOG_PAYLOAD,
    ts=keys.LOG_TS,
    trim_due=keys.TRIM_DUE,
    overhead=ENTRY_OVERHEAD,
)

# ``kick_matching(sinks_key, sink_prefix, kick_prefix, ttl, types)``: claims
# (SET NX EX ttl) the kick flag of every enabled sink in the sink index whose
# filter lets one of ``types`` (a set: type -> true) through; the claimed ids.
# Sinks of type ``keys.POLLER_SINK_TYPE`` are never kicked (no worker delivers them).
_KICK_MATCHING = _lua(
    """
local function kick_matching(sinks_key, sink_prefix, kick_prefix, ttl, types)
  local claimed, clock = {}, redis.call('TIME')
  for _, id in ipairs(redis.call('ZRANGE', sinks_key, 0, -1)) do
    local f = redis.call('HMGET', sink_prefix .. id, 'id', 'status', 'eventTypes', 'type')
    local status = f[2] or ''
    if f[1] and (status == 'enabled' or status == '') and f[4] ~= '$poller' then
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
        redis.call('ZADD', '$due', clock[1] * 1000 + math.floor(clock[2] / 1000), id)  -- lost job?
      end
    end
  end
  return claimed
end
""",
    due=keys.DUE,
    poller=keys.POLLER_SINK_TYPE,
)

#: Append events to an existing stream, all or none, and count them (within
#: the stream's budget; trims its log when due). KEYS and ARGV[1..14] as
#: ``append_events`` above; ARGV[15..] the (event type, payload) pairs.
#: Returns the stream id, or nil when the stream is missing (errors: above).
#: ``storage.streams.append_call`` builds the call.
APPEND = Script("append", _APPEND_EVENTS + "return append_events(15)\n")

#: ``APPEND`` and then ``KICK_MATCHING`` for the stream's sinks, in one round
#: trip (the ingest fast lane). KEYS and ARGV[1..14] as ``APPEND``; ARGV[15]
#: ``keys.KICK_KEY_PREFIX``, ARGV[16] the kick TTL in s; ARGV[17..] the pairs.
#: Returns {stream id, claimed sink ids}, or nil when the stream is missing.
#: ``storage.streams.append_call(..., kick_ttl=...)`` builds the call.
APPEND_AND_KICK = Script(
    "append_and_kick",
    _APPEND_EVENTS
    + _KICK_MATCHING
    + """
local sid = append_events(17)
if not sid or type(sid) == 'table' then return sid end
local types = {}
for i = 17, #ARGV, 2 do types[ARGV[i]] = true end
return {sid, kick_matching(ARGV[7] .. sid .. ARGV[8], ARGV[9], ARGV[15], ARGV[16], types)}
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

#: The lag of one stream's sinks (``storage.overview``): log entries after each
#: cursor that the sink's filter takes. KEYS[1] ``keys.event_log(stream)``; ARGV[1]
#: entries to scan at most per sink, ARGV[2..] (first id, event types JSON or '')
#: pairs. Returns {count, 1 if the scan hit the cap, oldest counted id or ''} each.
SINK_LAG = Script(
    "sink_lag",
    _lua(
        """
local out = {}
for i = 2, #ARGV, 2 do
  local entries = redis.call('XRANGE', KEYS[1], ARGV[i], '+', 'COUNT', ARGV[1])
  local wanted = ARGV[i + 1] ~= '' and {} or nil
  if wanted then for _, t in ipairs(cjson.decode(ARGV[i + 1])) do wanted[t] = true end end
  local n, oldest = 0, ''
  for _, e in ipairs(entries) do
    local f, etype = e[2], nil
    for j = 1, #f, 2 do if f[j] == '$t' then etype = f[j + 1] end end
    if not wanted or wanted[etype] then
      n = n + 1
      if oldest == '' then oldest = e[1] end
    end
  end
  out[#out + 1] = {n, #entries >= tonumber(ARGV[1]) and 1 or 0, oldest}
end
return out
""",
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

#: Store a new portal token and index it under its stream (``storage.tokens``).
#: KEYS[1] the token key (``keys.token``), KEYS[2] the stream's index
#: (``keys.portal_tokens``); ARGV[1] the token's SHA-256, ARGV[2] its expiry (ms),
#: ARGV[3] now (ms), ARGV[4..] the token hash's field/value pairs. Expired index
#: entries are dropped; the index lives until its last token expires.
PORTAL_MINT = Script(
    "portal_mint",
    """
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[2], last[2])
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

#: Expire a stream's portal tokens (``storage.tokens.expire_all``): each live token
#: (of the given sessions, when any) expires at ARGV[3] if that is sooner than its
#: own expiry; at or before now it is deleted at once. KEYS[1] the stream's index
#: (``keys.portal_tokens``); ARGV[1] the token key prefix (``keys.TOKEN_KEY_PREFIX``),
#: ARGV[2] now (ms), ARGV[3] the new expiry (ms), ARGV[4..] session ids (none: all).
#: Returns how many tokens it shortened or ended. Costs O(tokens of the stream).
PORTAL_EXPIRE_ALL = Script(
    "portal_expire_all",
    """
local idx, prefix = KEYS[1], ARGV[1]
local now, at = tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', idx, '-inf', now)
local sessions = nil
if #ARGV > 3 then
  sessions = {}
  for i = 4, #ARGV do sessions[ARGV[i]] = true end
end
local items = redis.call('ZRANGE', idx, 0, -1, 'WITHSCORES')
local n = 0
for i = 1, #items, 2 do
  local digest, expires = items[i], tonumber(items[i + 1])
  local key = prefix .. digest
  local session = redis.call('HGET', key, 'sessionId')
  if not session then
    redis.call('ZREM', idx, digest)
  elseif (sessions == nil or sessions[session]) and expires > at then
    n = n + 1
    if at <= now then
      redis.call('DEL', key)
      redis.call('ZREM', idx, digest)
    else
      redis.call('HSET', key, 'expiresAt', ARGV[3])
      redis.call('PEXPIREAT', key, at)
      redis.call('ZADD', idx, at, digest)
    end
  end
end
local last = redis.call('ZRANGE', idx, -1, -1, 'WITHSCORES')
if last[2] then redis.call('PEXPIREAT', idx, last[2]) end
return n
""",
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
    """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local cur = redis.call('HGET', KEYS[1], 'secret')
if ARGV[3] == '1' and cur then return cur end
if cur and ARGV[2] ~= '' and cur ~= ARGV[1] then
  redis.call('HSET', KEYS[1], 'secret', ARGV[1], 'oldSecret', cur, 'oldSecretUntil', ARGV[2])
else
  redis.call('HSET', KEYS[1], 'secret', ARGV[1])
  redis.call('HDEL', KEYS[1], 'oldSecret', 'oldSecretUntil')
end
return ARGV[1]
""",
)

# --- the event log's trim ------------------------------------------------------------

#: Trim a stream's log now (``trim_log``). KEYS ``keys.event_log``, ``stream_sinks``,
#: ``log_meta`` (of the stream), ``METRICS_COUNTERS``; ARGV sink key prefix, now
#: (ms), retention (ms), '1' to force, trim limit, trim interval (ms).
TRIM_LOG = Script(
    "trim_log",
    _TRIM_LOG
    + """
return trim_log(KEYS[1], KEYS[2], ARGV[1], KEYS[3], KEYS[4], tonumber(ARGV[2]),
                tonumber(ARGV[3]), ARGV[4] == '1', ARGV[5], tonumber(ARGV[6]))
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
)
