"""``storage.keys`` and ``storage.scripts``: every Redis key is spelled in one
module and every Lua script is registered in one module, its text in
``storage/lua/`` (the source is walked with ``ast`` to list any other Lua, and
the tree for any other ``.lua`` file); every script compiles in a real Redis,
and runs alike on a client (loaded on first use), a pipeline and an asyncio
client."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

import pytest
import redis
import redis.asyncio

from streamsink.storage import appends, eventlog, keys, scripts
from streamsink.storage import sinks as store_sinks
from streamsink.storage.trace_memory import TraceMemory

ROOT = Path(__file__).resolve().parents[3]
KEYS_MODULE = Path("streamsink/storage/keys.py")
SCRIPTS_MODULE = Path("streamsink/storage/scripts.py")
LUA_DIR = Path("streamsink/storage/lua")
# redis-py's ways of running Lua: only ``scripts.Script`` may use them.
LUA_CALLS = {"register_script", "evalsha", "evalsha_ro", "eval_ro", "script_load"}


def _sources() -> list[tuple[Path, ast.AST]]:
    found = []
    for folder in ("streamsink", "tools"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT)
            found.append((rel, ast.parse(path.read_text(), filename=str(rel))))
    assert len(found) > 50  # the walk saw the tree
    return found


def _key_literals(tree: ast.AST) -> list[tuple[int, str]]:
    """String literals that begin with the key prefix (an f-string's literal
    parts are ``Constant`` nodes too)."""
    return [
        (node.lineno, node.value[:40])
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value.startswith(keys.PREFIX)
    ]


def _lua(tree: ast.AST) -> list[tuple[int, str]]:
    """Lua text (``redis.call`` in a literal) and redis-py script calls."""
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if "redis.call" in node.value or "redis.pcall" in node.value:
                hits.append((node.lineno, node.value.strip()[:40]))
        elif isinstance(node, ast.Attribute) and node.attr in LUA_CALLS:
            hits.append((node.lineno, node.attr))
    return hits


def test_every_key_is_spelled_in_keys_py_only() -> None:
    strays = {
        f"{path}:{line}": text
        for path, tree in _sources()
        if path != KEYS_MODULE
        for line, text in _key_literals(tree)
    }
    assert strays == {}, "Redis keys belong in streamsink/storage/keys.py"


def test_every_lua_script_is_in_scripts_py_only() -> None:
    strays = {
        f"{path}:{line}": text
        for path, tree in _sources()
        if path != SCRIPTS_MODULE
        for line, text in _lua(tree)
    }
    assert strays == {}, "Lua belongs in streamsink/storage/scripts.py and lua/"


def _lua_files_outside(folder: Path) -> list[Path]:
    """``.lua`` files under ``folder`` that are not in ``LUA_DIR`` itself
    (hidden folders, such as ``.venv`` and ``.cache``, hold no project code)."""
    return [
        rel
        for rel in (path.relative_to(folder) for path in sorted(folder.rglob("*.lua")))
        if rel.parent != LUA_DIR and not any(part.startswith(".") for part in rel.parts)
    ]


def test_lua_files_live_in_storage_lua_only_and_each_is_used() -> None:
    assert _lua_files_outside(ROOT) == [], "Lua files belong in streamsink/storage/lua/"
    texts = {path.stem: path.read_text() for path in (ROOT / LUA_DIR).glob("*.lua")}
    assert len(texts) >= len(scripts.ALL)
    # Each file's text (its ``$name`` constants aside) is part of some script.
    unused = [
        name
        for name, text in texts.items()
        if not any(text.split("$")[0] in s.text for s in scripts.ALL)
    ]
    assert unused == []


def test_a_lua_file_outside_storage_lua_is_flagged(tmp_path: Path) -> None:
    (tmp_path / LUA_DIR).mkdir(parents=True)
    (tmp_path / LUA_DIR / "ok.lua").write_text("return 1\n")
    (tmp_path / "streamsink" / "api").mkdir()
    (tmp_path / "streamsink" / "api" / "stray.lua").write_text("return 2\n")
    assert _lua_files_outside(tmp_path) == [Path("streamsink/api/stray.lua")]


def test_the_walk_finds_a_stray_key_and_a_stray_script() -> None:
    """The two checks above can fail: they flag what they look for."""
    tree = ast.parse(
        'K = "ss:thing"\n'
        'F = f"ss:other:{x}"\n'
        "L = \"return redis.call('GET', KEYS[1])\"\n"
        "s = client.register_script(L)\n"
    )
    assert [line for line, _ in _key_literals(tree)] == [1, 2]
    assert sorted(line for line, _ in _lua(tree)) == [3, 4]


def test_scripts_are_listed_once_with_distinct_names() -> None:
    found = [v for v in vars(scripts).values() if isinstance(v, scripts.Script)]
    assert sorted(s.name for s in found) == sorted(s.name for s in scripts.ALL)
    assert len({s.name for s in scripts.ALL}) == len(scripts.ALL)
    assert len({s.sha for s in scripts.ALL}) == len(scripts.ALL)


def test_every_script_compiles_in_redis(redis_client: redis.Redis) -> None:
    for script in scripts.ALL:
        sha = redis_client.script_load(script.text)
        assert (sha.decode() if isinstance(sha, bytes) else sha) == script.sha, script.name
    assert all(redis_client.script_exists(*[s.sha for s in scripts.ALL]))


def test_a_broken_script_does_not_compile(redis_client: redis.Redis) -> None:
    with pytest.raises(redis.ResponseError):
        redis_client.script_load("return redis.call('GET', KEYS[1]")


def test_script_runs_on_a_client_a_pipeline_and_an_asyncio_client(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    client.script_flush()
    lock = "test-lock"
    client.set(lock, "mine")
    # Not loaded yet: EVALSHA fails, the script is loaded and run.
    assert scripts.RELEASE_IF_HELD(client, [lock], ["theirs"]) == 0
    assert client.script_exists(scripts.RELEASE_IF_HELD.sha) == [True]
    pipe = client.pipeline(transaction=True)
    scripts.RENEW_IF_HELD(pipe, [lock], ["mine", 60_000])
    pipe.pttl(lock)
    renewed, pttl = pipe.execute()
    assert renewed == 1 and 0 < pttl <= 60_000

    async def release() -> object:
        aclient = redis.asyncio.Redis.from_url(redis_url)
        try:
            await aclient.script_flush()
            return await scripts.RELEASE_IF_HELD.run_async(aclient, [lock], ["mine"])
        finally:
            await aclient.aclose()

    assert asyncio.run(release()) == 1
    assert not client.exists(lock)
    client.close()


def test_log_fields_are_what_both_append_paths_write(redis_client: redis.Redis) -> None:
    """The log alone (``LOG_ADD``) and the API's append store one entry per
    append, ``keys.LOG_BATCH_FIELDS``; the ingest time is read from the entry id."""
    redis_client.hset(keys.stream("strm_a"), "id", "strm_a")
    eventlog.append(redis_client, "strm_a", [("a", "1")])
    assert appends.append_existing(redis_client, "strm_a", [("b", "2"), ("c", "33")]) == "strm_a"
    raw = redis_client.xrange(keys.event_log("strm_a"))
    wanted = [name.encode() for name in keys.LOG_BATCH_FIELDS]
    assert wanted == [b"n", b"c", b"t", b"l", b"p"]
    assert [list(f) for _, f in raw] == [wanted, wanted]
    assert [list(f.values()) for _, f in raw] == [
        [b"1", b"1", b"a", b"1", b"1"],
        [b"2", b"3", b"b\nc", b"1,2", b"233"],
    ]
    entries = eventlog.entries_after(redis_client, "strm_a", eventlog.START, 5)
    assert [(e.event_type, e.payload) for e in entries] == [("a", "1"), ("b", "2"), ("c", "33")]
    entry_ms = [int(eid.decode().split("-")[0]) for eid, _ in raw]
    assert [e.ts for e in entries] == [entry_ms[0], entry_ms[1], entry_ms[1]]
    meta = redis_client.hgetall(keys.log_meta("strm_a"))
    assert meta[b"last"] == raw[-1][0] and meta[b"total"] == b"3"


def test_log_entries_of_earlier_releases_keep_their_ts(redis_client: redis.Redis) -> None:
    """Entries written with a ``ts`` field (earlier releases) read that time."""
    redis_client.xadd(keys.event_log("strm_a"), {"t": "a", "p": "1", "ts": "5"}, id="9-1")
    redis_client.xadd(keys.event_log("strm_a"), {"t": "b", "p": "2"}, id="9-2")
    entries = eventlog.entries_after(redis_client, "strm_a", eventlog.START, 5)
    assert [(e.id, e.event_type, e.payload, e.ts) for e in entries] == [
        ("9-1", "a", "1", 5),
        ("9-2", "b", "2", 9),
    ]


def test_append_and_kick_claims_idle_matching_sinks(redis_client: redis.Redis) -> None:
    redis_client.hset(keys.stream("strm_a"), "id", "strm_a")
    redis_client.set(keys.stream_uid("orders"), "strm_a")
    for sink_id, types in (("sink_1", ""), ("sink_2", '["b"]'), ("sink_3", '["a"]')):
        redis_client.zadd(keys.stream_sinks("strm_a"), {sink_id: 1})
        redis_client.hset(keys.sink(sink_id), mapping={"id": sink_id, "eventTypes": types})
    redis_client.set(keys.kick("sink_1"), 1)  # a job already queued: not claimed again
    claimed = appends.append_and_kick(redis_client, "orders", [("a", "1")], 15)
    assert claimed == ("strm_a", ["sink_3"])
    assert 0 < redis_client.ttl(keys.kick("sink_3")) <= 15
    assert appends.append_and_kick(redis_client, "missing", [("a", "1")], 15) is None
    assert eventlog.length(redis_client, "strm_a") == 1


def test_one_function_runs_now_or_on_the_callers_pipeline(redis_client: redis.Redis) -> None:
    """The former ``stage_*`` twins: a pipeline passed queues, none runs now."""
    redis_client.hset(keys.sink("sink_1"), mapping={"id": "sink_1", "cursor": "0-0"})
    pipe = redis_client.pipeline(transaction=True)
    assert eventlog.append(redis_client, "strm_a", [("a", "1")], pipeline=pipe) is None
    assert (
        store_sinks.update_sink_state(redis_client, "sink_1", cursor="1-0", pipeline=pipe) is None
    )
    memory = TraceMemory(redis_client, ttl_secs=60)
    memory.remember("strm_a", {"a" * 16: "b" * 32}, pipeline=pipe)
    assert eventlog.length(redis_client, "strm_a") == 0  # nothing sent yet
    assert memory.lookup("strm_a")("a" * 16) is None
    replies = pipe.execute()
    assert store_sinks.state_updated(replies[1])
    assert eventlog.length(redis_client, "strm_a") == 1
    assert memory.lookup("strm_a")("a" * 16) == "b" * 32
    assert redis_client.hget(keys.sink("sink_1"), "cursor") == b"1-0"
    # No pipeline: done at once, with the answer.
    assert store_sinks.update_sink_state(redis_client, "sink_1", cursor="2-0", if_cursor="1-0")
    assert not store_sinks.update_sink_state(redis_client, "sink_1", cursor="3-0", if_cursor="1-0")
    assert len(eventlog.append(redis_client, "strm_a", [("b", "2"), ("c", "3")]) or []) == 2


def test_key_layout_is_unchanged() -> None:
    """Keys are data at rest: a renamed key would orphan a deployment's data."""
    assert [
        keys.SEQ,
        keys.STREAMS,
        keys.stream("X"),
        keys.stream_uid("u"),
        keys.stream_sinks("X"),
        keys.sink_uid("X", "u"),
        keys.sink("S"),
        keys.retries("S"),
        keys.attempts("S"),
        keys.EVENT_TYPES,
        keys.event_type("n"),
        keys.event_log("X"),
        keys.traces("X", 7),
        keys.METRICS_COUNTERS,
        keys.metrics_histogram("h"),
        keys.kick("S"),
        keys.lease("S"),
        keys.wait("S"),
        keys.REAPER_LOCK,
        keys.TRIMMER_LOCK,
        keys.idempotency("d"),
        *keys.local(),
    ] == [
        "ss:seq",
        "ss:streams",
        "ss:stream:X",
        "ss:stream-uid:u",
        "ss:stream:X:sinks",
        "ss:stream:X:sink-uid:u",
        "ss:sink:S",
        "ss:retries:S",
        "ss:attempts:S",
        "ss:event-types",
        "ss:event-type:n",
        "ss:log:X",
        "ss:traces:X:7",
        "ss:metrics:c",
        "ss:metrics:h:h",
        "ss:kick:S",
        "ss:lease:S",
        "ss:wait:S",
        "ss:reaper",
        "ss:trimmer",
        "ss:idem:d",
        "ss:local:traces",
        "ss:local:span_count",
        "ss:local:bytes",
        "ss:local:trace_bytes",
        "ss:local:trace:",
    ]
    assert keys.LOG_FIELDS == ("t", "p")
