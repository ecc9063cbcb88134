"""The signing secrets of ``http`` sinks, kept in the sink's own hash
``ss:sink:{sink_id}`` (so deleting the sink deletes them)::

    secret          the ``whsec_`` secret requests are signed with
    oldSecret       the secret before the last rotation, still signing beside it
    oldSecretUntil  epoch ms until which ``oldSecret`` signs (then it is ignored,
                    and dropped at the next rotation)

A sink gets its secret when it is created (``config.key`` or a random one); a
sink that has none (made an ``http`` sink by a PUT) gets a random one on first
need. The fields are never part of a sink's wire view: only
``GET .../secret`` shows ``secret``.
"""

from __future__ import annotations

import redis

from streamsink.sinkhttp.signing import new_secret
from streamsink.storage import keys, scripts
from streamsink.storage.base import now_ms, to_str

FIELDS = ("secret", "oldSecret", "oldSecretUntil")


def current_secret(client: redis.Redis, sink_id: str) -> str | None:
    """The sink's secret (made on first need); None when the sink does not exist."""
    secret = to_str(client.hget(keys.sink(sink_id), "secret"))
    if secret:
        return secret
    return _set(client, sink_id, new_secret(), None, only_if_missing=True)


def signing_secrets(client: redis.Redis, sink_id: str, now: int | None = None) -> list[str]:
    """The secrets that sign a request now: the current one, then the previous
    one while its grace period lasts. Empty when the sink does not exist."""
    secret, old, until = (to_str(v) for v in client.hmget(keys.sink(sink_id), FIELDS))
    if not secret:
        made = current_secret(client, sink_id)
        return [made] if made else []
    now = now_ms() if now is None else now
    if old and until and int(until) > now and old != secret:
        return [secret, old]
    return [secret]


def rotate_secret(
    client: redis.Redis, sink_id: str, key: str | None, grace_ms: int, now: int | None = None
) -> str | None:
    """Make ``key`` (or a new random secret) the sink's secret; the current one
    keeps signing beside it for ``grace_ms`` (0: not at all). Returns the new
    secret, None when the sink does not exist."""
    until = None
    if grace_ms > 0:
        until = (now_ms() if now is None else now) + grace_ms
    return _set(client, sink_id, key or new_secret(), until, only_if_missing=False)


def _set(
    client: redis.Redis, sink_id: str, secret: str, until: int | None, *, only_if_missing: bool
) -> str | None:
    args = [secret, "" if until is None else str(until), "1" if only_if_missing else "0"]
    return to_str(scripts.SET_SINK_SECRET(client, [keys.sink(sink_id)], args))
