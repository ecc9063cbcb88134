"""Processes for the interop run: start with a log file and a clean environment,
wait for an HTTP health URL (bounded), list the TCP ports a process tree
listens on (from /proc), stop (terminate, then kill) the whole tree."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

#: Variables never passed on: proxies (everything here is 127.0.0.1) and our own settings.
_DROP = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in _DROP
        and not k.startswith(("STREAMSINK_", "MLFLOW_", "PHOENIX_", "OTEL_"))
    }
    env["NO_PROXY"] = "127.0.0.1,localhost"
    env.update(extra)
    return env


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    kids, out, todo = _children(), [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def _listen_table() -> dict[str, tuple[str, int]]:
    out: dict[str, tuple[str, int]] = {}
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                f = line.split()
                if f[3] != "0A":  # LISTEN
                    continue
                hex_ip, hex_port = f[1].split(":")
                raw = bytes.fromhex(hex_ip)
                packed = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
                out[f[9]] = (socket.inet_ntop(family, packed), int(hex_port, 16))
    return out


def listening(pid: int) -> list[str]:
    """'ip:port' of every TCP socket the process tree of ``pid`` listens on."""
    table, found = _listen_table(), set()
    for p in tree(pid):
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{p}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:[") and (a := table.get(target[8:-1])):
                        found.add(f"{a[0]}:{a[1]}")
    return sorted(found)


def is_loopback(address: str) -> bool:
    ip = address.rsplit(":", 1)[0]
    return (
        ip.startswith("127.") or ip in {"::1", "::ffff:127.0.0.1"} or ip.startswith("::ffff:127.")
    )


class Proc:
    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        with open(self.log_path, "wb") as log:
            self.popen = subprocess.Popen(
                cmd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # one process group: stop() ends the whole tree
            )

    def wait_http(self, url: str, timeout: float) -> None:
        """Wait until ``url`` answers 200; RuntimeError with the log's tail otherwise."""
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while time.monotonic() < deadline:
                if self.popen.poll() is not None:
                    raise RuntimeError(
                        f"{self.name} exited ({self.popen.returncode}): {self.tail()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(url).status_code == 200:
                        return
                time.sleep(0.5)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s: {self.tail()}")

    def listening(self) -> list[str]:
        return listening(self.popen.pid)

    def tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM to the process group this Proc started, SIGKILL to what is left."""
        group = self.popen.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
        self.popen.wait(timeout=10)
