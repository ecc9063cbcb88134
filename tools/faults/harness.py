"""Pieces shared by the fault scenarios: a counting OTLP receiver that can be
taken down, a receiver that never answers, a steady event producer, and the
results.

``SINK_TYPE`` (``--sink-type``) is the type of the sinks ``setup_sink`` makes:
``otelTracing`` (one span per event, ``SEQ_HANDLER``) or ``http`` (the bundled
default handler: the events as a JSON array); an ``http`` sink's receiver
checks every request's signature with ``svix.webhooks.Webhook`` once
``trust_sink`` gave it the sink's secret, and counts the requests that fail
(their events are not recorded: they show as lost)."""

from __future__ import annotations

import collections
import contextlib
import random
import selectors
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import orjson

from streamsink.receiver.decode import decode_spans
from tools.devstack import Stack, free_port

#: One span per event, carrying the event's ``seq``.
SEQ_HANDLER = """
function handler(input) {
  return {config: {serviceName: "faults"}, spans: input.events.map(function (e) {
    return {name: e.eventType, startTime: "2024-01-01T00:00:00Z",
            endTime: "2024-01-01T00:00:01Z", attributes: {seq: e.payload.seq}};
  })};
}
"""

#: The type of the sinks ``setup_sink`` makes (``--sink-type``): otelTracing or http.
SINK_TYPE = "otelTracing"

#: Quick retries and timeouts so recoveries show within the suite's budget.
FAST_ENV = {
    "STREAMSINK_RETRY_SCHEDULE": "0,1s,1s,2s,2s,4s,4s,8s,8s,8s",
    "STREAMSINK_DELIVERY_CONNECT_TIMEOUT": "2",
    "STREAMSINK_DELIVERY_READ_TIMEOUT": "2",
    "STREAMSINK_JS_TIMEOUT_MS": "1000",
    "STREAMSINK_JS_MEMORY_MB": "64",
    "NO_PROXY": "127.0.0.1,localhost",
}


class Receiver:
    """An OTLP/HTTP receiver on 127.0.0.1 that records the ``seq`` of every span
    it accepts, in arrival order. ``down()`` closes the port (connection
    refused), ``up()`` listens again on the same port. ``delay`` and ``drip``
    slow its answers."""

    def __init__(self, port: int | None = None, *, delay: float = 0.0, drip: float = 0.0):
        self.port = port or free_port()
        self.delay, self.drip = delay, drip
        self.seqs: list[int] = []
        self.requests = 0
        self.arrivals: list[float] = []  # monotonic time of each accepted request
        self.first_arrival: dict[int, float] = {}  # seq -> monotonic time it first arrived
        self.secret: str | None = None  # an http sink's: every request must verify
        self.verified = 0
        self.bad_signatures: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/traces"

    def up(self) -> Receiver:
        if self._httpd is None:
            self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
            self._httpd.daemon_threads = True
            threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def down(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()

    def stop(self) -> None:
        self._stop.set()
        self.down()

    def record(self, body: bytes, headers: Any) -> None:
        if self.secret is not None or "svix-signature" in headers:
            seqs = self._verified_seqs(body, headers)
        else:
            spans = decode_spans(body, headers.get("content-type"), headers.get("content-encoding"))
            seqs = [int(span["attributes"]["seq"]) for span in spans]
        now = time.monotonic()
        with self._lock:
            self.requests += 1
            self.arrivals.append(now)
            for seq in seqs:
                self.seqs.append(seq)
                self.first_arrival.setdefault(seq, now)

    def _verified_seqs(self, body: bytes, headers: Any) -> list[int]:
        """An http sink's request: the seqs of its events when its signature
        verifies with ``secret`` (svix's ``Webhook``), else none (counted)."""
        from svix.webhooks import Webhook, WebhookVerificationError

        try:
            if self.secret is None:
                raise WebhookVerificationError("no secret known for this sink yet")
            Webhook(self.secret).verify(body, {k.lower(): v for k, v in headers.items()})
        except WebhookVerificationError as exc:
            with self._lock:
                self.bad_signatures.append(f"{headers.get('svix-id')}: {exc}")
            return []
        with self._lock:
            self.verified += 1
        return [int(e["payload"]["seq"]) for e in orjson.loads(body)]

    def snapshot(self) -> list[int]:
        with self._lock:
            return list(self.seqs)


class HungReceiver:
    """Accepts connections on 127.0.0.1, reads what comes and never answers:
    each request stays in flight until the client gives up. Counts the
    connections accepted and the most open at once. ``stop()`` closes every
    connection, so the requests in flight end at once."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0), backlog=1024)
        self._sock.setblocking(False)
        self.port: int = self._sock.getsockname()[1]
        self.accepted = 0
        self.most_open = 0
        self._open: set[socket.socket] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/traces"

    def _serve(self) -> None:
        with selectors.DefaultSelector() as sel:
            sel.register(self._sock, selectors.EVENT_READ)
            while not self._stop.is_set():
                for key, _ in sel.select(0.1):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    if sock is self._sock:
                        with contextlib.suppress(BlockingIOError):
                            conn, _ = sock.accept()
                            conn.setblocking(False)
                            sel.register(conn, selectors.EVENT_READ)
                            self._open.add(conn)
                            self.accepted += 1
                            self.most_open = max(self.most_open, len(self._open))
                        continue
                    try:
                        data = sock.recv(65536)
                    except BlockingIOError:
                        continue
                    except OSError:
                        data = b""
                    if not data:  # the client gave up
                        sel.unregister(sock)
                        self._open.discard(sock)
                        sock.close()
            for conn in list(self._open):
                conn.close()
            self._open.clear()
            self._sock.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def _handler(server: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True
        timeout = 30

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            if server.delay and server._stop.wait(server.delay):
                return
            answer = b"{}"
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer) if not server.drip else 40))
                self.end_headers()
                if server.drip:  # 40 bytes, one at a time
                    for _ in range(40):
                        self.wfile.write(b" ")
                        self.wfile.flush()
                        if server._stop.wait(server.drip):
                            return
                else:
                    self.wfile.write(answer)
            except OSError:
                self.close_connection = True
                return  # the client gave up: not accepted
            server.record(body, self.headers)

    return Handler


class Producer(threading.Thread):
    """POSTs ``per_request`` events every ``interval`` s to one stream until
    stopped (or ``max_requests``); remembers the seqs answered 202 and how the
    others were answered."""

    def __init__(
        self,
        stack: Stack,
        stream: str,
        *,
        interval: float = 0.05,
        per_request: int = 5,
        max_requests: int = 100_000,
        timeout: float = 10.0,
    ):
        super().__init__(daemon=True)
        self.stack, self.stream = stack, stream
        self.interval, self.per_request, self.max_requests = interval, per_request, max_requests
        self.timeout = timeout
        self.acked: list[int] = []
        self.failed: collections.Counter[str] = collections.Counter()
        self.slowest = 0.0  # seconds, the longest answer
        self.bad_bodies: list[str] = []  # non-202 answers that were not {code, detail}
        self.next_seq = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        with self.stack.http(timeout=self.timeout) as client:
            for _ in range(self.max_requests):
                if self.stopping.wait(self.interval):
                    break
                self.post(client)

    def post(self, client: httpx.Client) -> None:
        seqs = list(range(self.next_seq, self.next_seq + self.per_request))
        self.next_seq += self.per_request
        body = {
            "events": [
                {"eventType": "e", "payload": orjson.dumps({"seq": s}).decode()} for s in seqs
            ]
        }
        started = time.monotonic()
        try:
            r = client.post(f"/stream/{self.stream}/events", json=body)
        except httpx.HTTPError as exc:
            self.failed[type(exc).__name__] += 1
            return
        finally:
            self.slowest = max(self.slowest, time.monotonic() - started)
        if r.status_code == 202:
            self.acked.extend(seqs)
            return
        self.failed[str(r.status_code)] += 1
        with contextlib.suppress(ValueError):
            if set(r.json()) == {"code", "detail"}:
                return
        self.bad_bodies.append(r.text[:200])

    def stop(self) -> None:
        self.stopping.set()
        self.join(30)


@dataclass
class Result:
    name: str
    passed: bool = False
    lost: int = 0
    duplicated: int = 0
    acked: int = 0
    delivered: int = 0
    in_order: bool = True
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def count(self, acked: list[int], received: list[int]) -> None:
        counts = collections.Counter(received)
        self.acked = len(acked)
        self.delivered = len(counts)
        self.lost = sum(1 for s in set(acked) if s not in counts)
        self.duplicated = sum(n - 1 for n in counts.values())
        firsts = list(dict.fromkeys(received))
        self.in_order = firsts == sorted(firsts)

    def check(self, ok: bool, what: str) -> None:
        if not ok:
            self.errors.append(what)

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k not in ("name", "details")}
        out["seconds"] = round(self.seconds, 1)
        return {**out, **self.details}


def wait_delivered(receiver: Receiver, acked: list[int], timeout: float) -> float:
    """Seconds until every acked seq arrived (or ``timeout``)."""
    started = time.monotonic()
    want = set(acked)
    while time.monotonic() - started < timeout:
        if want <= set(receiver.snapshot()):
            break
        time.sleep(0.1)
    return time.monotonic() - started


def setup_sink(stack: Stack, url: str, uid: str = "s", **fields: Any) -> tuple[str, str]:
    """A stream and one sink of ``SINK_TYPE`` (otelTracing: with ``SEQ_HANDLER``);
    (stream id, sink id)."""
    with stack.http(timeout=30) as client:
        r = client.post("/stream", json={"name": uid, "uid": uid})
        stream = (
            r.json()["id"] if r.status_code == 201 else client.get(f"/stream/{uid}").json()["id"]
        )
        sink = add_sink(client, stream, url, **fields)
    return stream, sink


def add_sink(
    client: httpx.Client, stream: str, url: str, code: str = SEQ_HANDLER, **fields: Any
) -> str:
    body = {"type": "otelTracing", "config": {"url": url}, "batchSize": 20, **fields}
    if SINK_TYPE == "http" and code == SEQ_HANDLER:
        body["type"] = "http"  # the bundled default handler: the events as JSON
    r = client.post(f"/stream/{stream}/sink", json=body)
    r.raise_for_status()
    sink = r.json()["id"]
    if body["type"] == "http":
        return sink
    path = f"/stream/{stream}/sink/{sink}/transformation"
    client.patch(path, json={"code": code}).raise_for_status()
    return sink


def jitter(low: float, high: float) -> float:
    return random.uniform(low, high)


def trust_sink(stack: Stack, receiver: Receiver, stream: str, sink: str) -> None:
    """Give ``receiver`` an http sink's signing secret (no-op for other types)."""
    with stack.http(timeout=30) as client:
        state = client.get(f"/stream/{stream}/sink/{sink}").json()
        if state["type"] == "http":
            r = client.get(f"/stream/{stream}/sink/{sink}/secret")
            r.raise_for_status()
            receiver.secret = r.json()["key"]


def signature_checks(result: Result, receiver: Receiver) -> None:
    """An http sink's receiver: every request verified (details and a check)."""
    if receiver.secret is None and not receiver.bad_signatures:
        return
    result.details["sink_type"] = "http"
    result.details["verified_requests"] = receiver.verified
    result.details["bad_signatures"] = len(receiver.bad_signatures)
    result.check(not receiver.bad_signatures, f"bad signatures: {receiver.bad_signatures[:3]}")
