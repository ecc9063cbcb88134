"""``storage.pipelined.PipelinedRedis``: the ingest fast lane's connections.
Concurrent commands go on separate connections up to a bound, then are
pipelined, and each gets its own reply; error
replies raise redis-py's classes; a lost or silent connection fails what is in
flight and the next command connects again (real redis-server)."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis

from streamsink.storage import scripts
from streamsink.storage.connection import async_twin, connect
from streamsink.storage.pipelined import PipelinedRedis


def _client(redis_url: str, max_connections: int = 32, **kwargs: float) -> PipelinedRedis:
    twin = async_twin(connect(redis_url, **kwargs))
    assert twin is not None
    return PipelinedRedis(twin, max_connections)


@pytest.mark.parametrize("connections", [1, 3, 32])
def test_concurrent_commands_get_their_own_replies(
    redis_url: str, redis_client: redis.Redis, connections: int
) -> None:
    async def run() -> tuple[list[object], set[object]]:
        client = _client(redis_url, connections)
        writes = [client.execute_command("SET", f"k{i}", f"v{i}é") for i in range(50)]
        await asyncio.gather(*writes)
        reads = [client.execute_command("GET", f"k{i}") for i in range(50)]
        ids = [client.execute_command("CLIENT", "ID") for _ in range(40)]
        got = await asyncio.gather(*reads, *ids)
        await client.aclose()
        return got[:50], set(got[50:])

    values, ids = asyncio.run(run())
    assert values == [f"v{i}é".encode() for i in range(50)]
    assert len(ids) == min(connections, 40)  # separate sockets up to the bound
    assert redis_client.get("k7") == "v7é".encode()  # the URL's database


def test_error_replies_raise_redis_py_classes_and_the_connection_goes_on(
    redis_url: str, redis_client: redis.Redis
) -> None:
    redis_client.set("lock", "mine")

    async def run() -> tuple[object, object]:
        client = _client(redis_url)
        with pytest.raises(redis.exceptions.NoScriptError):
            await client.evalsha("0" * 40, 0)
        await client.execute_command("SET", "s", "x")
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            await client.execute_command("LPUSH", "s", "y")
        await client.execute_command("SCRIPT", "FLUSH")
        # Script.run_async loads a script the server does not know, then runs it.
        released = await scripts.RELEASE_IF_HELD.run_async(client, ["lock"], ["mine"])
        after = await client.execute_command("GET", "s")
        await client.aclose()
        return released, after

    assert asyncio.run(run()) == (1, b"x")
    assert redis_client.get("lock") is None


def test_a_lost_connection_fails_what_is_in_flight_then_reconnects(
    redis_url: str, redis_client: redis.Redis
) -> None:
    async def run() -> object:
        client = _client(redis_url)
        own = await client.execute_command("CLIENT", "ID")
        waiting = asyncio.ensure_future(client.execute_command("BLPOP", "nothing", 5))
        await asyncio.sleep(0.2)
        redis_client.client_kill_filter(_id=own)
        with pytest.raises(redis.ConnectionError):
            await asyncio.wait_for(waiting, 3)
        again = await client.execute_command("CLIENT", "ID")
        assert again != own
        value = await client.execute_command("PING")
        await client.aclose()
        return value

    assert asyncio.run(run()) == b"PONG"


def test_an_idle_connection_is_reused(redis_url: str) -> None:
    async def run() -> set[object]:
        client = _client(redis_url)
        ids = {await client.execute_command("CLIENT", "ID") for _ in range(5)}
        await client.aclose()
        return ids

    assert len(asyncio.run(run())) == 1


def test_no_reply_within_socket_timeout_is_a_timeout_error(redis_url: str) -> None:
    async def run() -> tuple[float, object]:
        client = _client(redis_url, socket_timeout=0.3)
        await client.execute_command("PING")
        start = time.monotonic()
        with pytest.raises(redis.TimeoutError):
            await client.execute_command("BLPOP", "nothing", 3)
        waited = time.monotonic() - start
        value = await client.execute_command("PING")  # a new connection
        await client.aclose()
        return waited, value

    waited, value = asyncio.run(run())
    assert waited < 2.5
    assert value == b"PONG"


def test_unpackable_arguments_are_a_data_error(redis_url: str) -> None:
    async def run() -> None:
        client = _client(redis_url)
        with pytest.raises(redis.DataError):
            await client.execute_command("SET", "k", None)
        await client.aclose()

    asyncio.run(run())
