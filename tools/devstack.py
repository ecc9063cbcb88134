"""A whole streamsink on this machine, process by process, for benchmarks and
fault runs (``scripts/bench``, ``scripts/faults``) and end-to-end tests.

``Stack`` starts an embedded Redis (fixed socket, append-only file), the API
(``streamsink api``, uvicorn, a random free port on 127.0.0.1) and N workers
(``streamsink worker``) as separate processes, and can kill and restart each
of them. Everything listens on 127.0.0.1 or a unix socket only.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import redis

from streamsink.storage.connection import EmbeddedRedis


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Any, timeout: float, interval: float = 0.05, what: str = "") -> None:
    """Poll ``predicate`` until true; TimeoutError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if predicate():
                return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what or predicate}")


class Stack:
    """Redis + API + workers as separate processes on 127.0.0.1."""

    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        workers: int = 1,
        env: dict[str, str] | None = None,
        api_args: list[str] | None = None,
        quiet: bool = True,
        appendfsync: str = "always",
    ):
        self._tmp = None if data_dir else tempfile.TemporaryDirectory(prefix="ss-stack-")
        self.data_dir = Path(data_dir or self._tmp.name)  # type: ignore[union-attr]
        self.socket_path = Path(tempfile.mkdtemp(prefix="ss-", dir="/tmp")) / "redis.sock"
        self.token = "sk_" + secrets.token_urlsafe(16)
        self.port = free_port()
        self.api_url = f"http://127.0.0.1:{self.port}"
        self.worker_count = workers
        self.env = {
            **os.environ,
            "STREAMSINK_AUTH_TOKEN": self.token,
            "STREAMSINK_DATA_DIR": str(self.data_dir),
            **(env or {}),
        }
        self.api_args = api_args or []
        self.quiet = quiet
        self.appendfsync = appendfsync
        self.redis: EmbeddedRedis | None = None
        self.api: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []

    # -- lifecycle -----------------------------------------------------------

    @property
    def redis_url(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self) -> Stack:
        self.start_redis()
        self.start_api()
        for _ in range(self.worker_count):
            self.start_worker()
        return self

    def stop(self) -> None:
        for proc in [*self.workers, self.api]:
            if proc is not None and proc.poll() is None:
                proc.terminate()
        for proc in [*self.workers, self.api]:
            if proc is not None:
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.workers, self.api = [], None
        if self.redis is not None:
            self.redis.close()
            self.redis = None
        with contextlib.suppress(OSError):
            self.socket_path.unlink(missing_ok=True)
            self.socket_path.parent.rmdir()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> Stack:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- parts ---------------------------------------------------------------

    def _spawn(self, *args: str) -> subprocess.Popen[bytes]:
        out = subprocess.DEVNULL if self.quiet else None
        env = {**self.env, "STREAMSINK_REDIS_URL": self.redis_url}
        cmd = [sys.executable, "-m", "streamsink", "--log-level", "WARNING", *args]
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=out)

    def start_redis(self) -> None:
        self.redis = EmbeddedRedis(
            self.data_dir, socket_path=self.socket_path, appendfsync=self.appendfsync
        )

    def kill_redis(self) -> None:
        """SIGKILL the redis-server (its AOF keeps what was acknowledged)."""
        assert self.redis is not None
        pid = int(self.redis._server.pid or 0)  # type: ignore[union-attr]
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not _alive(pid), 10, what="redis-server to die")
        self.redis = None

    def start_api(self, timeout: float = 30) -> None:
        args = ["api", "--host", "127.0.0.1", "--port", str(self.port), *self.api_args]
        self.api = self._spawn(*args)
        wait_until(self._api_up, timeout, 0.1, "the API to answer /health")

    def _api_up(self) -> bool:
        assert self.api is not None
        if self.api.poll() is not None:
            raise RuntimeError(f"the API exited with {self.api.returncode}")
        return httpx.get(self.api_url + "/health", timeout=2).status_code in (200, 503)

    def kill_api(self, sig: int = signal.SIGKILL) -> None:
        assert self.api is not None
        self.api.send_signal(sig)
        self.api.wait(15)
        self.api = None

    def start_worker(self) -> subprocess.Popen[bytes]:
        proc = self._spawn("worker")
        self.workers.append(proc)
        return proc

    def kill_worker(self, index: int = 0, sig: int = signal.SIGKILL) -> None:
        proc = self.workers.pop(index)
        proc.send_signal(sig)
        proc.wait(30)

    def wait_workers_registered(self, count: int | None = None, timeout: float = 30) -> None:
        from rq import Worker

        want = self.worker_count if count is None else count
        client = self.redis_client()
        try:
            wait_until(lambda: len(Worker.all(connection=client)) >= want, timeout, 0.1, "workers")
        finally:
            client.close()

    # -- clients -------------------------------------------------------------

    def redis_client(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url)

    def http(self, **kwargs: Any) -> httpx.Client:
        """An API client with the bearer token."""
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.Client(base_url=self.api_url + "/api/v1", headers=headers, **kwargs)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
