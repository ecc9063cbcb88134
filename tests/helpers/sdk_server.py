"""A real uvicorn server on 127.0.0.1 for tests driven by the official `svix`
SDK, and the SDK client pointed at it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis
import uvicorn
from svix.api import Svix, SvixOptions

from streamsink.api.app import create_app
from streamsink.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_api(settings: Settings, client: redis.Redis) -> Iterator[str]:
    """The API app on a free 127.0.0.1 port in a background thread; its base URL."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, client),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def sdk(server_url: str, token: str) -> Svix:
    """The svix SDK against ``server_url`` (no client-side retries)."""
    return Svix(token, SvixOptions(server_url=server_url, retry_schedule=[]))
