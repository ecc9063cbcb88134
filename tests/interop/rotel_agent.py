"""rotel-agent (the Rust OpenTelemetry collector shipped in PyPI's ``rotel``
wheel) as a subprocess listening on 127.0.0.1 only.

    with RotelAgent(exporter_url="http://127.0.0.1:PORT", log_dir=tmp) as agent:
        agent.traces_url          # its OTLP/HTTP receiver
        agent.listening()         # {(ip, port)} it listens on (read from /proc)

Receivers: OTLP/gRPC and OTLP/HTTP on free 127.0.0.1 ports. Exporter: OTLP/HTTP
(protobuf, rotel's default gzip) to ``exporter_url`` with a 50 ms batch
timeout. Internal telemetry stays off (rotel's default); the environment is
reduced to PATH so no ROTEL_* or proxy setting of the caller leaks in.
Every wait is bounded; ``stop`` terminates, then kills.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType


def agent_path() -> Path:
    """The ``rotel-agent`` binary inside the installed ``rotel`` package."""
    import rotel

    path = Path(rotel.__file__).parent / "rotel-agent"
    if not os.access(path, os.X_OK):
        raise FileNotFoundError(f"{path} is missing or not executable (pip install rotel)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening_inodes() -> dict[str, tuple[str, int]]:
    """socket inode -> (ip, port) of every TCP socket in LISTEN state."""
    out: dict[str, tuple[str, int]] = {}
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] != "0A":  # TCP_LISTEN
                continue
            hex_ip, hex_port = fields[1].split(":")
            raw = bytes.fromhex(hex_ip)
            # /proc prints the address as native-endian 32-bit words.
            words = [raw[i : i + 4][::-1] for i in range(0, len(raw), 4)]
            packed = b"".join(words)
            family = socket.AF_INET if width == 8 else socket.AF_INET6
            out[fields[9]] = (socket.inet_ntop(family, packed), int(hex_port, 16))
    return out


def listening_addresses(pid: int) -> set[tuple[str, int]]:
    """The (ip, port) pairs that process ``pid`` listens on (TCP, v4 and v6)."""
    inodes = _listening_inodes()
    found: set[tuple[str, int]] = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:[") and (addr := inodes.get(target[8:-1])):
            found.add(addr)
    return found


class RotelAgent:
    def __init__(self, exporter_url: str, log_dir: Path) -> None:
        self.exporter_url = exporter_url
        self.log_dir = log_dir
        self.log_path = log_dir / "rotel-agent.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.grpc_port = 0
        self.http_port = 0

    @property
    def traces_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/v1/traces"

    def command(self) -> list[str]:
        return [
            str(agent_path()),
            "start",
            "--otlp-grpc-endpoint",
            f"127.0.0.1:{self.grpc_port}",
            "--otlp-http-endpoint",
            f"127.0.0.1:{self.http_port}",
            "--exporter",
            "otlp",
            "--otlp-exporter-endpoint",
            self.exporter_url,
            "--otlp-exporter-protocol",
            "http",
            "--batch-timeout",
            "50ms",
            "--otlp-exporter-retry-initial-backoff",
            "200ms",
            "--pid-file",
            str(self.log_dir / "rotel-agent.pid"),
            "--log-file",
            str(self.log_path),
        ]

    def start(self, timeout: float = 20.0, tries: int = 3) -> RotelAgent:
        """Start on fresh free ports; retry when a port was taken in between."""
        for attempt in range(tries):
            self.grpc_port, self.http_port = free_port(), free_port()
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    self.command(),
                    env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            if self._wait_ready(timeout):
                return self
            self.stop()
            if attempt == tries - 1:
                raise RuntimeError(f"rotel-agent did not start: {self.logs()}")
        return self

    def _wait_ready(self, timeout: float) -> bool:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        wanted = {("127.0.0.1", self.grpc_port), ("127.0.0.1", self.http_port)}
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if wanted <= listening_addresses(self.proc.pid):
                return True
            time.sleep(0.05)
        return False

    def listening(self) -> set[tuple[str, int]]:
        assert self.proc is not None
        return listening_addresses(self.proc.pid)

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def __enter__(self) -> RotelAgent:
        return self.start()

    def __exit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
