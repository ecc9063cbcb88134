"""End-to-end fixtures for the delivery engine: the API on a fresh Redis
database, real ``streamsink worker`` processes on that database, and OTLP
receivers on 127.0.0.1 that record when each request came and how it was answered.

Every wait is bounded (``wait_until``); workers are terminated (then killed)
at the end of each test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis
from fastapi.testclient import TestClient
from rq import Worker

from streamsink.api.app import create_app
from streamsink.settings import Settings
from streamsink.storage import eventlog
from tests.helpers.receiver_server import Answer, ReceiverServer, Recorded

TOKEN = "engine-token"
ROOT = Path(__file__).resolve().parents[2]
#: Short timeouts so failures and retries show within a test's budget.
WORKER_ENV = {
    "STREAMSINK_RETRY_SCHEDULE": "0,1s,1s,1s",
    "STREAMSINK_DELIVERY_CONNECT_TIMEOUT": "2",
    "STREAMSINK_DELIVERY_READ_TIMEOUT": "5",
    "STREAMSINK_JS_TIMEOUT_MS": "1000",
}

T = TypeVar("T")


def wait_until(fn: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll ``fn`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# --- receivers ---------------------------------------------------------------------


@dataclass
class Exchange:
    """One request and the answer it got, with the monotonic time it arrived."""

    at: float
    request: Recorded
    answer: Answer

    @property
    def accepted(self) -> bool:
        return 200 <= self.answer.status < 300 and not self.answer.drop

    def spans(self) -> list[dict[str, Any]]:
        return self.request.spans()


class Receiver(ReceiverServer):
    """A ``ReceiverServer`` that also records each answer and arrival time."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.exchanges: list[Exchange] = []

    def _answer_for(self, recorded: Recorded) -> Answer:
        at = time.monotonic()
        answer = super()._answer_for(recorded)
        with self._lock:
            self.exchanges.append(Exchange(at, recorded, answer))
        return answer

    def settle(self) -> list[Exchange]:
        with self._lock:
            return list(self.exchanges)

    def accepted_spans(self) -> list[dict[str, Any]]:
        """Spans of requests answered 2xx, in arrival order."""
        return [s for x in self.settle() if x.accepted for s in x.spans()]

    def accepted_seqs(self, key: str = "seq") -> list[int]:
        return [s["attributes"][key] for s in self.accepted_spans()]

    def wait_accepted(self, count: int, timeout: float) -> list[dict[str, Any]]:
        return wait_until(
            lambda: (spans := self.accepted_spans()) and len(spans) >= count and spans,
            timeout,
            f"{count} accepted spans (have {len(self.accepted_spans())})",
        )


@pytest.fixture
def receiver_factory() -> Iterator[Callable[..., Receiver]]:
    started: list[Receiver] = []

    def make(*args: Any, **kwargs: Any) -> Receiver:
        server = Receiver(*args, **kwargs).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def receiver(receiver_factory: Callable[..., Receiver]) -> Receiver:
    return receiver_factory()


# --- the API -----------------------------------------------------------------------


class Api:
    """The REST API through a TestClient, with the calls the tests need."""

    def __init__(self, client: TestClient, redis_client: redis.Redis):
        self.http = client
        self.redis = redis_client

    def call(self, method: str, path: str, expect: int, **kw: Any) -> Any:
        r = self.http.request(method, f"/api/v1{path}", **kw)
        assert r.status_code == expect, f"{method} {path}: {r.status_code} {r.text}"
        return r.json() if r.content else None

    def stream(self, uid: str = "s") -> str:
        return self.call("POST", "/stream", 201, json={"name": uid, "uid": uid})["id"]

    def sink(self, stream: str, url: str, code: str | None = None, **fields: Any) -> dict[str, Any]:
        body = {"type": "otelTracing", "config": {"url": url}, **fields}
        sink = self.call("POST", f"/stream/{stream}/sink", 201, json=body)
        if code is not None:
            self.transformation(stream, sink["id"], code)
        return sink

    def transformation(self, stream: str, sink: str, code: str | None) -> None:
        self.call("PATCH", f"/stream/{stream}/sink/{sink}/transformation", 200, json={"code": code})

    def post(self, stream: str, events: list[tuple[str, str]]) -> None:
        body = {"events": [{"eventType": t, "payload": p} for t, p in events]}
        self.call("POST", f"/stream/{stream}/events", 202, json=body)

    def post_seqs(self, stream: str, seqs: range, event_type: str = "e", **extra: Any) -> None:
        events = [(event_type, _payload(seq=i, **extra)) for i in seqs]
        for start in range(0, len(events), 1000):
            self.post(stream, events[start : start + 1000])

    def get_sink(self, stream: str, sink: str) -> dict[str, Any]:
        return self.call("GET", f"/stream/{stream}/sink/{sink}", 200)

    def patch_sink(self, stream: str, sink: str, **fields: Any) -> dict[str, Any]:
        return self.call("PATCH", f"/stream/{stream}/sink/{sink}", 200, json=fields)

    def attempts(self, stream: str, sink: str, **params: Any) -> dict[str, Any]:
        return self.call("GET", f"/stream/{stream}/sink/{sink}/attempt", 200, params=params)

    def skip(self, stream: str, sink: str, iterator: str) -> dict[str, Any]:
        path = f"/stream/{stream}/sink/{sink}/skip"
        return self.call("POST", path, 202, json={"iterator": iterator})

    def force_retry(self, stream: str, sink: str) -> None:
        r = self.http.post(f"/api/v1/stream/{stream}/sink/{sink}/force-retry")
        assert r.status_code == 204 and r.content == b"", f"force-retry: {r.status_code} {r.text}"

    def log_ids(self, stream: str) -> list[str]:
        return [e.id for e in eventlog.parse_entries(self.redis.xrange(f"ss:log:{stream}"))]

    def wait_status(self, stream: str, sink: str, status: str, timeout: float) -> dict[str, Any]:
        return wait_until(
            lambda: (s := self.get_sink(stream, sink))["status"] == status and s,
            timeout,
            f"sink {sink} {status}",
            interval=0.02,
        )


def _payload(**fields: Any) -> str:
    import orjson

    return orjson.dumps(fields).decode()


@pytest.fixture
def api(redis_url: str, redis_client: redis.Redis) -> Iterator[Api]:
    settings = Settings(auth_token=TOKEN, redis_url=redis_url)
    app = create_app(settings, redis_client)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(app, headers=headers, raise_server_exceptions=True) as client:
        yield Api(client, redis_client)


# --- worker processes ----------------------------------------------------------------


class Workers:
    """``python -m streamsink worker`` processes on one Redis database."""

    def __init__(self, redis_url: str, log_dir: Path):
        self.redis_url = redis_url
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []
        self._redis = redis.Redis.from_url(redis_url)

    def start(self, wait: bool = True, **settings: str) -> subprocess.Popen[bytes]:
        env = {
            k: v
            for k, v in os.environ.items()
            if k.lower() not in {"http_proxy", "https_proxy", "all_proxy"}
            and not k.startswith("STREAMSINK_")
        }
        env |= WORKER_ENV
        env |= {f"STREAMSINK_{k.upper()}": str(v) for k, v in settings.items()}
        env |= {"STREAMSINK_REDIS_URL": self.redis_url, "NO_PROXY": "127.0.0.1,localhost"}
        log = open(self.log_dir / f"worker-{len(self.procs)}.log", "wb")  # noqa: SIM115
        cmd = [sys.executable, "-m", "streamsink", "--log-level", "INFO", "worker"]
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.procs.append(proc)
        if wait:
            self.wait_ready(proc)
        return proc

    def wait_ready(self, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
        def registered() -> bool:
            assert proc.poll() is None, f"worker exited with {proc.returncode}: {self.logs()}"
            names = [w.name for w in Worker.all(connection=self._redis)]
            return any(name.endswith(f"-{proc.pid}") for name in names)

        wait_until(registered, timeout, f"worker {proc.pid} to register", interval=0.05)

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def logs(self) -> str:
        parts = []
        for path in sorted(self.log_dir.glob("worker-*.log")):
            text = path.read_text(errors="replace")
            parts.append(f"--- {path.name}\n{text[-4000:]}")
        return "\n".join(parts)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 10
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self._redis.close()


@pytest.fixture
def workers(redis_url: str, tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(redis_url, tmp_path)
    try:
        yield pool
    finally:
        pool.stop_all()
        print(pool.logs())  # shown by pytest when the test failed
