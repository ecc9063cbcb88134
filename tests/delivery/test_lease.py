"""The delivery lease on a real Redis: the loop's read-only ownership check and
its pipelined keep-alive (lease and kick flag together)."""

from __future__ import annotations

import redis

from streamsink.delivery import scheduling


def _check(r: redis.Redis, lease: scheduling.Lease) -> bool:
    pipe = r.pipeline(transaction=False)
    lease.stage_check(pipe)
    (reply,) = pipe.execute()
    return lease.is_holder(reply)


def test_check_sees_the_holder(redis_client: redis.Redis) -> None:
    ours = scheduling.Lease(redis_client, "sink_1", ttl_ms=10_000)
    other = scheduling.Lease(redis_client, "sink_1", ttl_ms=10_000)
    assert not _check(redis_client, ours)  # nobody holds it
    assert ours.acquire() and not other.acquire()
    assert _check(redis_client, ours) and not _check(redis_client, other)
    ours.release()
    assert not _check(redis_client, ours)
    assert not ours.is_holder(None)


def test_pipelined_keep_alive_renews_lease_and_kick_flag(redis_client: redis.Redis) -> None:
    lease = scheduling.Lease(redis_client, "sink_2", ttl_ms=2_000)
    assert lease.acquire()
    pipe = redis_client.pipeline(transaction=False)
    lease.stage_keep_alive(pipe)
    assert pipe.execute() == [1]
    assert redis_client.pttl(lease.key) > 2_000 - 500
    assert 0 < redis_client.ttl(scheduling.kick_key("sink_2")) <= scheduling.KICK_TTL
    # once lost (taken by another holder), keep-alive neither renews nor sets the flag
    redis_client.set(lease.key, "someone-else")
    redis_client.delete(scheduling.kick_key("sink_2"))
    pipe = redis_client.pipeline(transaction=False)
    lease.stage_keep_alive(pipe)
    assert pipe.execute() == [0]
    assert not redis_client.exists(scheduling.kick_key("sink_2"))
