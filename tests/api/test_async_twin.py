"""``redisconn.async_twin``: the asyncio client of the API's fast lane reaches the
same database as the sync client and packs commands as redis-py does."""

from __future__ import annotations

import asyncio

import fakeredis
import pytest
import redis
import redis.asyncio.connection as aconn

from streamsink.storage.connection import async_twin, connect


def test_twin_reaches_the_same_database(redis_url: str) -> None:
    sync = connect(redis_url)
    sync.set("k", "from-sync")
    twin = async_twin(sync)
    assert twin is not None

    async def roundtrip() -> bytes | None:
        await twin.set("k2", "é from-async")
        value = await twin.get("k")
        await twin.aclose()
        return value

    assert asyncio.run(roundtrip()) == b"from-sync"
    assert sync.get("k2") == "é from-async".encode()
    kwargs = twin.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == sync.connection_pool.connection_kwargs["socket_timeout"]
    assert kwargs["retry"].get_retries() == 2


@pytest.mark.parametrize(
    "args",
    [
        ("SET", "k", "v"),
        ("EVALSHA", "abc", 2, "k1", "k2", "é", b"\x00\xff", 12, 2.5),
        ("CONFIG GET", "maxmemory"),
        (b"CLIENT SETNAME", "x"),
    ],
)
def test_hiredis_packing_matches_redis_py(redis_url: str, args: tuple[object, ...]) -> None:
    twin = async_twin(connect(redis_url))
    assert twin is not None
    fast = twin.connection_pool.make_connection()
    plain = aconn.UnixDomainSocketConnection(path="/nowhere")
    assert b"".join(fast.pack_command(*args)) == b"".join(plain.pack_command(*args))
    with pytest.raises(redis.DataError):
        fast.pack_command("SET", "k", None)


def test_no_twin_for_fakeredis() -> None:
    assert async_twin(fakeredis.FakeRedis()) is None
