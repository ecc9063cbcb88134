"""A programmable OTLP/HTTP sink on 127.0.0.1 for delivery tests.

    with ReceiverServer([Answer(503, headers={"Retry-After": "2"}), 200]) as sink:
        client.send(sink.traces_url, body)       # -> 503, then 200, then the default
        sink.requests[0].headers["user-agent"]   # every request is recorded
        sink.spans()                              # all received spans, decoded

Answers are consumed in order, then ``default`` answers (200 with an empty
ExportTraceServiceResponse in the request's encoding). ``handler`` computes
answers instead. ``max_body`` answers 413 to bodies over that many bytes
(before any queued answer). HTTP/1.1 keep-alive; ``Recorded.client_port``
shows connection reuse. Sleeps end when the server stops, so every test
stays bounded.
"""

from __future__ import annotations

import collections
import contextlib
import gzip
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from streamsink.receiver.decode import decode_spans


@dataclass
class Answer:
    status: int = 200
    body: bytes | str | dict[str, Any] = b""  # a dict is sent as JSON
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None  # None: the request's Content-Type
    delay: float = 0.0  # seconds before the status line
    drip: float = 0.0  # seconds between body bytes
    drop: bool = False  # close the connection without answering


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes  # as received (still gzip-compressed when it was sent so)
    client_port: int

    @property
    def content(self) -> bytes:
        """The body with any gzip Content-Encoding undone."""
        if self.headers.get("content-encoding", "").lower() == "gzip":
            return gzip.decompress(self.body)
        return self.body

    def spans(self) -> list[dict[str, Any]]:
        return decode_spans(
            self.body, self.headers.get("content-type"), self.headers.get("content-encoding")
        )


AnswerLike = Answer | int


def _as_answer(value: AnswerLike) -> Answer:
    return value if isinstance(value, Answer) else Answer(status=value)


class ReceiverServer:
    def __init__(
        self,
        answers: Iterable[AnswerLike] = (),
        *,
        default: AnswerLike = 200,
        handler: Callable[[Recorded], AnswerLike] | None = None,
        max_body: int | None = None,
    ) -> None:
        self.default = _as_answer(default)
        self.handler = handler
        self.max_body = max_body
        self.requests: list[Recorded] = []
        self._answers: collections.deque[Answer] = collections.deque(map(_as_answer, answers))
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def traces_url(self) -> str:
        return f"{self.url}/v1/traces"

    def start(self) -> ReceiverServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._httpd.shutdown()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> ReceiverServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def push(self, *answers: AnswerLike) -> None:
        with self._lock:
            self._answers.extend(map(_as_answer, answers))

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until ``count`` requests were recorded (False on timeout)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
            return True

    def spans(self) -> list[dict[str, Any]]:
        """Every span received, in request order (answers don't matter)."""
        with self._lock:
            requests = list(self.requests)
        return [span for r in requests if r.path.startswith("/v1/traces") for span in r.spans()]

    def _answer_for(self, recorded: Recorded) -> Answer:
        with self._changed:
            self.requests.append(recorded)
            self._changed.notify_all()
            if self.max_body is not None and len(recorded.body) > self.max_body:
                return Answer(413, b"request too large", content_type="text/plain")
            if self.handler is None:
                return self._answers.popleft() if self._answers else self.default
        return _as_answer(self.handler(recorded))


def _make_handler(server: ReceiverServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 10  # idle keep-alive connections end
        # Headers and body are written separately: with Nagle on, every
        # keep-alive answer would stall ~40 ms on the client's delayed ACK.
        disable_nagle_algorithm = True

        def setup(self) -> None:
            super().setup()
            with server._lock:
                server._sockets.add(self.connection)

        def finish(self) -> None:
            with server._lock:
                server._sockets.discard(self.connection)
            with contextlib.suppress(OSError):
                super().finish()

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            recorded = Recorded(
                method=self.command,
                path=self.path,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                client_port=int(self.client_address[1]),
            )
            self._send(server._answer_for(recorded), recorded)

        do_PUT = do_POST
        do_PATCH = do_POST
        do_GET = do_POST

        def _send(self, answer: Answer, recorded: Recorded) -> None:
            if answer.delay and server._stop.wait(answer.delay):
                return
            if answer.drop:
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            body = answer.body
            if isinstance(body, dict):
                body = orjson.dumps(body)
            elif isinstance(body, str):
                body = body.encode()
            content_type = answer.content_type or recorded.headers.get(
                "content-type", "application/json"
            )
            if not body and answer.content_type is None and "json" in content_type:
                body = b"{}"
            try:
                self.send_response(answer.status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if not answer.drip:
                    self.wfile.write(body)
                    return
                for i in range(len(body)):
                    self.wfile.write(body[i : i + 1])
                    self.wfile.flush()
                    if server._stop.wait(answer.drip):
                        return
            except OSError:  # the client gave up (timeout): nothing left to do
                self.close_connection = True

    return Handler


def closed_port_url(path: str = "/v1/traces") -> str:
    """A 127.0.0.1 URL on a port nothing listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"
