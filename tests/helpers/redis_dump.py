"""Everything a Redis database holds, as bytes: for tests that assert what is
(not) stored."""

from __future__ import annotations

import redis


def dump_all(client: redis.Redis) -> bytes:
    """Every key and every value (strings, hashes, sets, sorted sets, lists,
    streams) read by its type, joined by newlines."""
    out: list[bytes] = []
    for key in client.scan_iter(count=1000):
        out.append(key)
        kind = client.type(key)
        if kind == b"string":
            out.append(client.get(key) or b"")
        elif kind == b"hash":
            out.extend(b for kv in client.hgetall(key).items() for b in kv)
        elif kind == b"zset":
            out.extend(m for m, _ in client.zrange(key, 0, -1, withscores=True))
        elif kind == b"list":
            out.extend(client.lrange(key, 0, -1))
        elif kind == b"set":
            out.extend(client.smembers(key))
        elif kind == b"none":  # gone between SCAN and TYPE (expired or deleted)
            continue
        elif kind == b"stream":
            for _, fields in client.xrange(key):
                out.extend(b for kv in fields.items() for b in kv)
        elif kind == b"none":  # gone since the scan (a claim released just after its answer)
            continue
        else:
            raise AssertionError(f"unexpected type {kind!r} of {key!r}")
    return b"\n".join(out)
