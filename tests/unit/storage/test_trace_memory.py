"""``storage.trace_memory``: spanId -> traceId remembered per stream in hourly
buckets, so children in later batches join their parent's trace (real Redis)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import redis

from streamsink.storage import trace_memory
from streamsink.storage.trace_memory import BUCKET_SECS, TraceMemory

SPAN = "00f067aa0ba902b7"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def _at(monkeypatch: pytest.MonkeyPatch, when: float) -> None:
    """Make the module's clock read ``when`` (epoch seconds)."""
    monkeypatch.setattr(trace_memory, "time", SimpleNamespace(time=lambda: when))


def test_remember_then_lookup(redis_client: redis.Redis) -> None:
    memory = TraceMemory(redis_client, ttl_secs=3600)
    memory.remember("strm_a", {SPAN: TRACE, "1111111111111111": "2" * 32})
    find = memory.lookup("strm_a")
    assert find(SPAN) == TRACE
    assert find("1111111111111111") == "2" * 32
    assert find("ffffffffffffffff") is None
    # Per stream: another stream never sees it.
    assert memory.lookup("strm_b")(SPAN) is None


def test_staged_on_the_callers_pipeline(redis_client: redis.Redis) -> None:
    memory = TraceMemory(redis_client, ttl_secs=3600)
    pipe = redis_client.pipeline(transaction=False)
    memory.remember("strm_a", {SPAN: TRACE}, pipeline=pipe)
    assert memory.lookup("strm_a")(SPAN) is None  # nothing written before execute
    pipe.execute()
    assert memory.lookup("strm_a")(SPAN) == TRACE


def test_buckets_expire_after_ttl_plus_a_bucket(redis_client: redis.Redis) -> None:
    memory = TraceMemory(redis_client, ttl_secs=600)
    memory.remember("strm_a", {SPAN: TRACE})
    keys = [k.decode() for k in redis_client.scan_iter("ss:traces:strm_a:*")]
    assert len(keys) == 1
    ttl = redis_client.ttl(keys[0])
    assert 600 < ttl <= 600 + BUCKET_SECS


def test_an_entry_older_than_ttl_is_not_found(
    redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    hour = 500_000
    _at(monkeypatch, hour * BUCKET_SECS + 100)
    TraceMemory(redis_client, ttl_secs=2 * BUCKET_SECS).remember("strm_a", {SPAN: TRACE})
    # An hour and a bit later: found while the ttl covers it, not after.
    _at(monkeypatch, (hour + 1) * BUCKET_SECS + 1000)
    assert TraceMemory(redis_client, ttl_secs=2 * BUCKET_SECS).lookup("strm_a")(SPAN) == TRACE
    assert TraceMemory(redis_client, ttl_secs=600).lookup("strm_a")(SPAN) is None


def test_newest_bucket_wins(redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    hour = 500_000
    memory = TraceMemory(redis_client, ttl_secs=3 * BUCKET_SECS)
    _at(monkeypatch, hour * BUCKET_SECS + 10)
    memory.remember("strm_a", {SPAN: "a" * 32})
    _at(monkeypatch, (hour + 1) * BUCKET_SECS + 10)
    memory.remember("strm_a", {SPAN: "b" * 32})
    assert memory.lookup("strm_a")(SPAN) == "b" * 32


def test_zero_ttl_remembers_nothing(redis_client: redis.Redis) -> None:
    memory = TraceMemory(redis_client, ttl_secs=0)
    memory.remember("strm_a", {SPAN: TRACE})
    assert list(redis_client.scan_iter("ss:traces:*")) == []
    assert memory.lookup("strm_a")(SPAN) is None
    # Nothing to remember writes nothing either.
    TraceMemory(redis_client, ttl_secs=60).remember("strm_a", {})
    assert list(redis_client.scan_iter("ss:traces:*")) == []


def test_decoding_client(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        memory = TraceMemory(client, ttl_secs=60)
        memory.remember("strm_a", {SPAN: TRACE})
        assert memory.lookup("strm_a")(SPAN) == TRACE
    finally:
        client.close()
