"""Process entry points: ``serve`` (all in one), ``api`` and ``worker``."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from streamsink.api.httpserver import deadline_protocol
from streamsink.auth_token import TOKEN_FILE, ensure_token, token_hint
from streamsink.settings import Settings
from streamsink.storage.connection import connect, redis_url_for

log = logging.getLogger(__name__)


def _exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so ``finally`` blocks stop what we started."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def _run_api(settings: Settings) -> None:
    """uvicorn on the app; with ``api_processes`` > 1, that many processes share
    the port (the app keeps no state of its own: everything is in Redis)."""
    import uvicorn

    from streamsink.api.app import create_app

    assert settings.redis_url
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": "info",
        "access_log": False,
        "proxy_headers": False,
        "server_header": False,
    }
    if settings.api_processes > 1:
        # Worker processes build their app from the environment: flags too.
        os.environ.update(
            STREAMSINK_REDIS_URL=settings.redis_url,
            STREAMSINK_AUTH_TOKEN=settings.auth_token or "",
            STREAMSINK_HOST=settings.host,
            STREAMSINK_PORT=str(settings.port),
            STREAMSINK_DATA_DIR=str(settings.data_dir),
            STREAMSINK_HTTP_HEADER_TIMEOUT=str(settings.http_header_timeout),
            STREAMSINK_HTTP_BODY_TIMEOUT=str(settings.http_body_timeout),
        )
        uvicorn.run(
            "streamsink.api.app:create_app_from_env",
            factory=True,
            workers=settings.api_processes,
            http="streamsink.api.httpserver:EnvDeadlineProtocol",
            **options,
        )
        return
    app = create_app(settings, connect(settings.redis_url))
    http = deadline_protocol(settings.http_header_timeout, settings.http_body_timeout)
    uvicorn.Server(uvicorn.Config(app, http=http, **options)).run()


def _banner(settings: Settings, token_from_file: bool) -> None:
    """Where to find things and the token, by its start only: the banner ends
    up in logs, and a log must not hold a credential."""
    base = f"http://{settings.host}:{settings.port}"
    hint = token_hint(settings.tokens()[0])
    if token_from_file:
        path = Path(settings.data_dir) / TOKEN_FILE
        token = f"{hint} (the whole token: cat {path})"
        header = f"Authorization: Bearer $(cat {path})"
    else:
        token = f"{hint} (from STREAMSINK_AUTH_TOKEN)"
        header = "Authorization: Bearer $STREAMSINK_AUTH_TOKEN"
    lines = [
        f"streamsink serving on {base}",
        f"  API:            {base}/api/v1   docs: {base}/docs",
        f"  OTLP receiver:  {base}/v1/traces   traces: {base}/api/v1/local/traces",
        f"  token:          {token}",
        f'  try: curl -H "{header}" {base}/api/v1/stream',
    ]
    print("\n".join(lines), flush=True)


class WorkerPool:
    """``streamsink worker`` child processes, restarted if one dies."""

    def __init__(self, settings: Settings, count: int):
        self.settings = settings
        self.count = count
        self.procs: list[subprocess.Popen[bytes]] = []
        self._stopping = threading.Event()
        self._monitor = threading.Thread(target=self._watch, name="worker-monitor", daemon=True)

    def _spawn(self) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        env["STREAMSINK_REDIS_URL"] = self.settings.redis_url or ""
        env["STREAMSINK_DATA_DIR"] = str(self.settings.data_dir)
        cmd = [sys.executable, "-m", "streamsink", "worker"]
        return subprocess.Popen(cmd, env=env)

    def start(self) -> None:
        self.procs = [self._spawn() for _ in range(self.count)]
        self._monitor.start()

    def _watch(self) -> None:
        while not self._stopping.wait(1.0):
            for i, proc in enumerate(self.procs):
                if proc.poll() is not None and not self._stopping.is_set():
                    log.warning("worker %s exited with %s; restarting", proc.pid, proc.returncode)
                    self.procs[i] = self._spawn()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def serve(settings: Settings) -> int:
    """API + workers on one machine; an embedded Redis when no URL is set."""
    _exit_on_sigterm()
    with redis_url_for(settings.redis_url, settings.data_dir, settings.redis_maxmemory) as url:
        settings = settings.model_copy(update={"redis_url": url})
        settings, from_file = ensure_token(settings)
        pool = WorkerPool(settings, settings.workers)
        pool.start()
        try:
            _banner(settings, from_file)
            _run_api(settings)
        finally:
            pool.stop()
    return 0


def api(settings: Settings) -> int:
    """The REST API alone (production split)."""
    _exit_on_sigterm()
    with redis_url_for(settings.redis_url, settings.data_dir, settings.redis_maxmemory) as url:
        settings, from_file = ensure_token(settings.model_copy(update={"redis_url": url}))
        _banner(settings, from_file)
        _run_api(settings)
    return 0


def worker(settings: Settings, *, burst: bool = False) -> int:
    """One delivery worker (production split; scale out with more of them)."""
    from streamsink.delivery.worker import run_worker

    if not settings.redis_url:
        print("streamsink worker needs --redis-url or STREAMSINK_REDIS_URL", file=sys.stderr)
        return 2
    return run_worker(settings, burst=burst)
