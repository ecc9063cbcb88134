"""OTLP/HTTP delivery: one pooled HTTP client per process, answers classified.

``DeliveryClient.send`` never raises for network or HTTP outcomes: it returns a
``DeliveryResult`` whose ``outcome`` is SUCCESS (2xx), RETRYABLE (408, 429,
502, 503, 504, connection errors, timeouts), TOO_LARGE (413: split and retry)
or PERMANENT (anything else, including redirects, which are never followed).
``otlp.export`` sends a whole batch on top of ``send`` (splitting, encoding switch).
"""

from __future__ import annotations

import enum
import os
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from streamsink import __version__
from streamsink.delivery.retry import DEFAULT_MAX_RETRY_AFTER
from streamsink.otlp.answer import (
    JSON,
    PROTOBUF,
    PartialSuccess,
    parse_partial_success,
    parse_retry_after,
    safe_excerpt,
)
from streamsink.otlp.split import gzip_bytes
from streamsink.sinkhttp.netguard import DestinationPolicy, DestinationRefused
from streamsink.sinkhttp.transport import DeliveryTransport, Prepared, request_deadline

USER_AGENT = f"streamsink/{__version__}"
RETRYABLE_STATUSES = frozenset({408, 429, 502, 503, 504})
MAX_RESPONSE_READ = 64 * 1024
# Set by us whatever the sink's headers say: they describe the body we send.
_OWN_HEADERS = ("content-type", "content-encoding", "content-length")
_HOP_HEADERS = ("host", "transfer-encoding", "connection", "keep-alive", "upgrade", "te")


class Outcome(enum.StrEnum):
    SUCCESS = "success"
    RETRYABLE = "retryable"
    TOO_LARGE = "too_large"
    PERMANENT = "permanent"


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    outcome: Outcome
    status_code: int | None = None
    error: str | None = None  # why it failed, in words (None for a plain 2xx)
    response_excerpt: str = ""
    duration_ms: float = 0.0
    retry_after: float | None = None  # seconds, from Retry-After, capped
    partial_success: PartialSuccess | None = None
    request_bytes: int = 0  # bytes on the wire (after gzip)

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.SUCCESS

    @property
    def retryable(self) -> bool:
        return self.outcome is Outcome.RETRYABLE

    @property
    def reason(self) -> str:
        """A one-line description for ``failureReason`` and attempt logs."""
        parts = []
        if self.status_code is not None:
            parts.append(f"HTTP {self.status_code}")
        if self.error:
            parts.append(self.error)
        elif self.response_excerpt and not self.ok:
            parts.append(self.response_excerpt[:200])
        return ": ".join(parts) or self.outcome.value


def classify_status(status: int) -> Outcome:
    if 200 <= status < 300:
        return Outcome.SUCCESS
    if status == 413:
        return Outcome.TOO_LARGE
    if status in RETRYABLE_STATUSES:
        return Outcome.RETRYABLE
    return Outcome.PERMANENT


class DeliveryClient:
    """POSTs OTLP bodies over one pooled, keep-alive transport: the raw HTTP/1.1
    pool of ``otlp.http1`` for requests prepared once per sink, ``httpx.Client``
    (same transport, policy and limits) for anything else.

    Thread-safe (httpx.Client is). Pass ``client`` to supply your own; it is
    then not closed by ``close()``. ``verify``: httpx's TLS verification
    (default: certifi's CAs, hostname checked); an ``ssl.SSLContext`` to trust
    other CAs.
    """

    def __init__(
        self,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 15.0,
        total_timeout: float = 60.0,
        max_connections: int = 100,
        max_keepalive: int = 20,
        keepalive_expiry: float = 30.0,
        max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
        policy: DestinationPolicy | None = None,
        client: httpx.Client | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.total_timeout = total_timeout
        self.max_retry_after = max_retry_after
        self._owns_client = client is None
        limits = httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_keepalive,
            keepalive_expiry=keepalive_expiry,
        )
        # Our own transport: POSTs take its fast path with requests prepared once
        # per (url, headers) by httpx; a caller's client always goes through httpx.
        self._transport = (
            DeliveryTransport(policy, limits, verify=verify) if client is None else None
        )
        self._prepared: dict[tuple[Any, ...], Prepared] = {}
        self._client = client or httpx.Client(
            timeout=httpx.Timeout(
                connect=connect_timeout, read=read_timeout, write=read_timeout, pool=connect_timeout
            ),
            limits=limits,
            transport=self._transport,
            trust_env=False,
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT, "Accept": f"{PROTOBUF}, {JSON};q=0.9, */*;q=0.1"},
        )

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> DeliveryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def build_headers(
        self, headers: Mapping[str, str] | None, content_type: str, content_encoding: str | None
    ) -> httpx.Headers:
        """Client defaults, then the sink's headers, then the body's own headers."""
        merged = httpx.Headers(self._client.headers)
        for name, value in (headers or {}).items():
            if name.lower() not in _OWN_HEADERS and name.lower() not in _HOP_HEADERS:
                merged[name] = value
        merged["Content-Type"] = content_type
        if content_encoding:
            merged["Content-Encoding"] = content_encoding
        return merged

    def send(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str] | None = None,
        content_type: str = JSON,
        gzip: bool = False,
        content_encoding: str | None = None,
    ) -> DeliveryResult:
        """POST ``body`` to ``url`` and classify the answer; never raises for I/O.

        ``gzip=True`` compresses here; ``content_encoding`` instead declares a body
        that is already encoded (e.g. ``"gzip"`` from ``otlp.split.Body``).
        """
        started = time.monotonic()
        wire = gzip_bytes(body) if gzip else body
        encoding = "gzip" if gzip else content_encoding

        def done(outcome: Outcome, **kw: Any) -> DeliveryResult:
            ms = round((time.monotonic() - started) * 1000, 3)
            return DeliveryResult(outcome, duration_ms=ms, request_bytes=len(wire), **kw)

        with request_deadline(self.total_timeout):
            return self._exchange(url, wire, headers, content_type, encoding, done)

    def _exchange(
        self,
        url: str,
        wire: bytes,
        headers: Mapping[str, str] | None,
        content_type: str,
        encoding: str | None,
        done: Callable[..., DeliveryResult],
    ) -> DeliveryResult:
        try:
            fast = self._prepare(url, headers, content_type, encoding)
            if fast is not None and self._transport is not None:
                status, answer, data = self._transport.post(fast, wire, MAX_RESPONSE_READ)
            else:
                request = self._client.build_request(
                    "POST",
                    url,
                    content=wire,
                    headers=self.build_headers(headers, content_type, encoding),
                )
                response = self._client.send(request, stream=True)
                try:
                    data = self._read_bounded(response)
                finally:
                    response.close()
                status, answer = response.status_code, response.headers
        except DestinationRefused as exc:
            return done(Outcome.PERMANENT, error=f"destination refused: {exc}")
        except httpx.TimeoutException as exc:
            return done(Outcome.RETRYABLE, error=f"timed out ({type(exc).__name__}) {exc}")
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, httpx.LocalProtocolError) as exc:
            return done(Outcome.PERMANENT, error=f"invalid request: {exc}")
        except httpx.TransportError as exc:
            return done(Outcome.RETRYABLE, error=f"connection error ({type(exc).__name__}): {exc}")
        except (ValueError, TypeError, UnicodeError) as exc:  # bad URL or header values
            return done(Outcome.PERMANENT, error=f"invalid request: {exc}")

        outcome = classify_status(status)
        excerpt = safe_excerpt(data)
        error, partial, retry_after = None, None, None
        if outcome is Outcome.SUCCESS:
            partial = parse_partial_success(data, answer.get("content-type"))
            if partial is not None and partial.rejected_spans:
                error = f"{partial.rejected_spans} spans rejected: {partial.error_message}"
        elif 300 <= status < 400:
            where = answer.get("location") or "?"
            error = f"redirect to {where} not followed: point the sink at the final URL"
        elif outcome is Outcome.TOO_LARGE:
            error = f"request of {len(wire)} bytes too large for the sink"
        if outcome is Outcome.RETRYABLE:
            retry_after = parse_retry_after(answer.get("retry-after"), cap=self.max_retry_after)
        return done(
            outcome,
            status_code=status,
            error=error,
            response_excerpt=excerpt,
            retry_after=retry_after,
            partial_success=partial,
        )

    def _prepare(
        self,
        url: str,
        headers: Mapping[str, str] | None,
        content_type: str,
        encoding: str | None,
    ) -> Prepared | None:
        """The fast path's request for these arguments (None: use httpx.Client)."""
        if self._transport is None or self._client.is_closed:
            return None
        try:
            key = (url, content_type, encoding, *(headers.items() if headers else ()))
            prepared = self._prepared.get(key)
        except TypeError:  # unhashable header values: httpx will say what is wrong
            return None
        if prepared is None:
            try:
                request = self._client.build_request(
                    "POST", url, headers=self.build_headers(headers, content_type, encoding)
                )
            except Exception:
                return None  # httpx.Client.send gives the same error, classified
            if request.url.scheme not in ("http", "https") or not request.url.host:
                return None
            if request.url.userinfo:  # credentials in the URL: httpx sends Basic auth
                return None
            if len(self._prepared) >= 1024:
                self._prepared.clear()
            prepared = self._prepared[key] = Prepared.of(request)
        return prepared

    def _read_bounded(self, response: httpx.Response) -> bytes:
        """At most ``MAX_RESPONSE_READ`` bytes (a slow drip ends at the request deadline)."""
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size >= MAX_RESPONSE_READ:
                    break
        except (httpx.HTTPError, ValueError):
            pass  # the status line is what counts; a broken body only shortens the excerpt
        return b"".join(chunks)[:MAX_RESPONSE_READ]


_default: tuple[int, DeliveryClient] | None = None
_default_lock = threading.Lock()


def default_client() -> DeliveryClient:
    """The process-wide client (re-created in a forked child: pools don't survive fork)."""
    global _default
    with _default_lock:
        if _default is None or _default[0] != os.getpid():
            _default = (os.getpid(), DeliveryClient())
        return _default[1]
