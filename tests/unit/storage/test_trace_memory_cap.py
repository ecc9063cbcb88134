"""``storage.trace_memory`` bounds: at most ``max_entries`` span ids per stream
whatever the load, in a few rotating generations, while the parent links of
the window still resolve (real Redis)."""

from __future__ import annotations

import redis

from streamsink.storage import trace_memory
from streamsink.storage.trace_memory import GENERATIONS, TraceMemory


def _pairs(start: int, count: int) -> dict[str, str]:
    return {f"{i:016x}": f"{i:032x}" for i in range(start + 1, start + count + 1)}


def test_entries_never_exceed_the_cap_and_recent_parents_resolve(
    redis_client: redis.Redis,
) -> None:
    memory = TraceMemory(redis_client, ttl_secs=3600, max_entries=400)
    written = 0
    for _ in range(60):  # 2,220 span ids: five times the cap
        memory.remember("strm_a", _pairs(written, 37))
        written += 37
        assert memory.entries("strm_a") <= 400
    keys = [k for k in redis_client.scan_iter("ss:traces:strm_a:*")]
    assert len(keys) <= GENERATIONS
    find = memory.lookup("strm_a")
    # The newest three generations (each filled to within a batch) are there...
    for i in range(written - 200 + 1, written + 1):
        assert find(f"{i:016x}") == f"{i:032x}"
    # ...the oldest were pushed out by the cap.
    assert find(f"{1:016x}") is None


def test_one_batch_larger_than_a_generation_keeps_its_newest(redis_client: redis.Redis) -> None:
    memory = TraceMemory(redis_client, ttl_secs=3600, max_entries=40)
    memory.remember("strm_a", _pairs(0, 100))
    assert memory.entries("strm_a") == 10
    assert memory.lookup("strm_a")(f"{100:016x}") == f"{100:032x}"


def test_a_generation_rotates_by_time_and_old_ones_stop_counting(
    redis_client: redis.Redis, monkeypatch
) -> None:
    clock = [1_000_000.0]
    monkeypatch.setattr(trace_memory.time, "time", lambda: clock[0])
    memory = TraceMemory(redis_client, ttl_secs=300, max_entries=1000)
    memory.remember("strm_a", _pairs(0, 5))
    clock[0] += 101  # past a generation's life (300 s / 3)
    memory.remember("strm_a", _pairs(5, 5))
    assert len(list(redis_client.scan_iter("ss:traces:strm_a:*"))) == 2
    assert memory.lookup("strm_a")(f"{1:016x}") == f"{1:032x}"
    clock[0] += 250  # the first generation was last written 351 s ago
    assert memory.lookup("strm_a")(f"{1:016x}") is None
    assert memory.lookup("strm_a")(f"{6:016x}") == f"{6:032x}"


def test_forget_drops_a_streams_memory(redis_client: redis.Redis) -> None:
    memory = TraceMemory(redis_client, ttl_secs=3600, max_entries=40)
    for n in range(10):
        memory.remember("strm_a", _pairs(n * 10, 10))
    memory.remember("strm_b", _pairs(0, 3))
    memory.forget("strm_a")
    assert list(redis_client.scan_iter("ss:traces:strm_a*")) == []
    assert memory.entries("strm_b") == 3
