"""What the bench reads from the machine and from Redis: process CPU and RSS
(``/proc/<pid>``), the machine's steal and idle time (``/proc/stat``), and
Redis's command counts, memory and append-only file size.

Everything here is read-only and cheap; Redis probes go through one client
whose own commands are known, so that they can be taken out of the counts.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

# -- processes -----------------------------------------------------------------


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live children (API processes)."""
    total = 0.0
    with contextlib.suppress(OSError, IndexError, ValueError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total = (int(fields[11]) + int(fields[12])) / 100.0
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                for child in (task / "children").read_text().split():
                    total += proc_cpu_s(int(child))
    return total


def proc_rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` in MB (0 when it is gone)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


# -- the machine: steal and idle over a phase ------------------------------------


def cpu_times() -> list[int]:
    """The aggregate ``cpu`` line of /proc/stat: user nice system idle iowait irq
    softirq steal (guest time is already inside user/nice, so it is left out)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("cpu "):
                return [int(x) for x in line.split()[1:9]]
    return [0] * 8


def noise_pct(before: list[int], after: list[int]) -> dict[str, float]:
    """Steal and idle (idle + iowait) as % of all CPU time between two readings."""
    delta = [b - a for a, b in zip(before, after, strict=True)]
    total = sum(delta)
    if total <= 0:
        return {"steal": 0.0, "idle": 0.0}
    return {
        "steal": round(100 * delta[7] / total, 1),
        "idle": round(100 * (delta[3] + delta[4]) / total, 1),
    }


@dataclass
class Noise:
    """Per-phase steal/idle %: ``with noise.phase("e2e"): ...`` then ``figures()``."""

    results: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        before, t0 = cpu_times(), time.monotonic()
        try:
            yield
        finally:
            self.results[name] = noise_pct(before, cpu_times())
            self.seconds[name] = round(time.monotonic() - t0, 1)

    def figures(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, pct in self.results.items():
            out[f"{name}_cpu_steal_pct"] = pct["steal"]
            out[f"{name}_cpu_idle_pct"] = pct["idle"]
        return out


# -- Redis ---------------------------------------------------------------------


def command_calls(client: redis.Redis) -> dict[str, int]:
    """Calls per command since Redis started (``INFO commandstats``).

    The INFO itself is counted by Redis after it answers: a reading includes
    every earlier INFO of this client, not this one."""
    stats = client.info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}


def calls_delta(
    before: dict[str, int], after: dict[str, int], own: dict[str, int] | None = None
) -> dict[str, int]:
    """Calls per command between two readings, less ``own`` (the prober's)."""
    out = {}
    for name, calls in after.items():
        n = calls - before.get(name, 0) - (own or {}).get(name, 0)
        if n > 0:
            out[name] = n
    return out


def used_memory_mb(client: redis.Redis) -> float:
    return int(client.info("memory")["used_memory"]) / 2**20


def aof_path(client: redis.Redis) -> Path | None:
    """Where the server keeps its append-only file: ``dir``/``appendfilename``
    (Redis 6), or the files under ``dir``/``appenddirname`` (Redis 7)."""
    cfg = client.config_get("dir")
    directory = cfg.get("dir")
    if not directory:
        return None
    adir = client.config_get("appenddirname").get("appenddirname")
    if adir:
        return Path(directory) / adir
    name = client.config_get("appendfilename").get("appendfilename") or "appendonly.aof"
    return Path(directory) / name


def aof_mb(client: redis.Redis, path: Path | None) -> float:
    """Bytes of the AOF on disk (all its files), or Redis's own figure when
    the file can't be read from here (a Redis on another machine)."""
    if path is not None:
        with contextlib.suppress(OSError):
            if path.is_dir():
                return sum(p.stat().st_size for p in path.iterdir() if p.is_file()) / 2**20
            return path.stat().st_size / 2**20
    persistence: dict[str, Any] = client.info("persistence")
    return int(persistence.get("aof_current_size", 0)) / 2**20


def sleep_until(deadline: float) -> None:
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, 0.5))
