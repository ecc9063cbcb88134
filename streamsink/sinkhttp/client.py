"""OTLP/HTTP delivery: one pooled HTTP client per process, answers classified
(``otlp.answer``), sent through one ``Transport`` (``sinkhttp.transport``).

``DeliveryClient.send`` never raises for network or HTTP outcomes: it returns a
``DeliveryResult`` whose ``outcome`` is SUCCESS (2xx), RETRYABLE (408, 429,
502, 503, 504, connection errors, timeouts), TOO_LARGE (413: split and retry)
or PERMANENT (anything else, including redirects, which are never followed).
``sinkhttp.export`` sends a whole batch on top of ``send`` (splitting, encoding switch).
"""

from __future__ import annotations

import os
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from streamsink import __version__
from streamsink.delivery.retry import DEFAULT_MAX_RETRY_AFTER
from streamsink.errors import DestinationRefused, InvalidRequest, TimeoutException, TransportError
from streamsink.otlp.answer import (
    JSON,
    PROTOBUF,
    Outcome,
    PartialSuccess,
    classify_status,
    parse_partial_success,
    parse_retry_after,
    safe_excerpt,
)
from streamsink.otlp.split import gzip_bytes
from streamsink.sinkhttp.deadline import request_deadline
from streamsink.sinkhttp.http1 import RawPool, raw_head
from streamsink.sinkhttp.httpx_transport import HttpxTransport, guarded_client, ssl_context
from streamsink.sinkhttp.netguard import DestinationPolicy
from streamsink.sinkhttp.transport import Request, Response, Transport, waiting

__all__ = [
    "JSON",
    "MAX_RESPONSE_READ",
    "PROTOBUF",
    "DeliveryClient",
    "DeliveryResult",
    "Outcome",
    "PartialSuccess",
    "classify_status",
    "default_client",
    "parse_partial_success",
    "parse_retry_after",
    "safe_excerpt",
]

USER_AGENT = f"streamsink/{__version__}"
MAX_RESPONSE_READ = 64 * 1024
# Set by us whatever the sink's headers say: they describe the body we send.
_OWN_HEADERS = ("content-type", "content-encoding", "content-length")
_HOP_HEADERS = ("host", "transfer-encoding", "connection", "keep-alive", "upgrade", "te")


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


class DeliveryClient:
    """POSTs OTLP bodies through one ``Transport`` seam (``sinkhttp.transport``):
    the raw HTTP/1.1 pool for requests it can send, ``HttpxTransport`` (same
    policy, TLS context and limits) for the rest; requests are prepared once per
    (url, headers) with httpx's URL and header rules.

    Thread-safe. ``client``: your own ``httpx.Client`` for every request (not
    closed by ``close()``). ``transport``: a ``Transport`` for every request
    (``MockTransport`` in tests). ``verify``: httpx's TLS verification (default:
    certifi's CAs, hostname checked); an ``ssl.SSLContext`` to trust other CAs.
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
        transport: Transport | None = None,
    ) -> None:
        self.total_timeout = total_timeout
        self.max_retry_after = max_retry_after
        self._owns_client = client is None
        limits = httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_keepalive,
            keepalive_expiry=keepalive_expiry,
        )
        settings: dict[str, Any] = {
            "timeout": httpx.Timeout(
                connect=connect_timeout, read=read_timeout, write=read_timeout, pool=connect_timeout
            ),
            "trust_env": False,
            "follow_redirects": False,
            "headers": {"User-Agent": USER_AGENT, "Accept": f"{PROTOBUF}, {JSON};q=0.9, */*;q=0.1"},
        }
        self._raw: RawPool | None = None
        if client is None and transport is None:
            context = ssl_context(verify)
            client = guarded_client(policy, context, limits, **settings)
            self._raw = RawPool(
                policy,
                context,
                max_connections=limits.max_connections,
                max_keepalive=limits.max_keepalive_connections,
                keepalive_expiry=limits.keepalive_expiry,
            )
        #: Builds every request (URL, default headers, timeouts); sends the fallback's.
        self._client = client or httpx.Client(**settings)
        self._fallback: Transport = transport or HttpxTransport(self._client)
        self._prepared: dict[tuple[Any, ...], Request] = {}

    def close(self) -> None:
        if self._raw is not None:
            self._raw.close()
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
        method: str = "POST",
    ) -> DeliveryResult:
        """POST (or ``method``) ``body`` to ``url`` and classify the answer; never
        raises for I/O.

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
            try:
                request = self._prepare(url, headers, content_type, encoding, method)
                transport = self._fallback
                if self._raw is not None and request.head is not None:
                    transport = self._raw
                with waiting(request.origin):
                    response = transport.send(request, wire, MAX_RESPONSE_READ)
            except DestinationRefused as exc:
                return done(Outcome.PERMANENT, error=f"destination refused: {exc}")
            except TimeoutException as exc:
                return done(Outcome.RETRYABLE, error=f"timed out ({type(exc).__name__}) {exc}")
            except (InvalidRequest, httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
                return done(Outcome.PERMANENT, error=f"invalid request: {exc}")
            except TransportError as exc:
                why = f"connection error ({type(exc).__name__}): {exc}"
                return done(Outcome.RETRYABLE, error=why)
            except (ValueError, TypeError, UnicodeError) as exc:  # bad URL or header values
                return done(Outcome.PERMANENT, error=f"invalid request: {exc}")
        return done(**read_answer(response, len(wire), self.max_retry_after))

    def _prepare(
        self,
        url: str,
        headers: Mapping[str, str] | None,
        content_type: str,
        encoding: str | None,
        method: str = "POST",
    ) -> Request:
        """The request for these arguments, built once (httpx's rules and errors)."""
        try:
            key: tuple[Any, ...] | None = (
                url,
                content_type,
                encoding,
                method,
                *(headers.items() if headers else ()),
            )
            prepared = self._prepared.get(key)  # type: ignore[arg-type]
        except TypeError:  # unhashable header values: httpx will say what is wrong
            key, prepared = None, None
        if prepared is None:
            built = self._client.build_request(
                method, url, headers=self.build_headers(headers, content_type, encoding)
            )
            prepared = _request(url, built)
            if key is not None:
                if len(self._prepared) >= 1024:
                    self._prepared.clear()
                self._prepared[key] = prepared
        return prepared


def _request(url: str, built: httpx.Request) -> Request:
    u = built.url
    scheme = u.scheme
    origin = (scheme, u.raw_host.decode("ascii"), u.port or (443 if scheme == "https" else 80))
    headers = tuple((k, v) for k, v in built.headers.raw if k.lower() != b"content-length")
    # Credentials in the URL (httpx sends Basic auth) or not http(s): httpx only.
    raw = scheme in ("http", "https") and bool(u.host) and not u.userinfo
    head = raw_head(built) if raw else None
    timeouts = dict(built.extensions.get("timeout") or {})
    return Request(url, origin, headers, timeouts, head, built.method)


def read_answer(response: Response, sent: int, max_retry_after: float) -> dict[str, Any]:
    """``DeliveryResult`` fields for a sink's answer."""
    status, answer, data = response
    outcome = classify_status(status)
    error, partial, retry_after = None, None, None
    if outcome is Outcome.SUCCESS:
        partial = parse_partial_success(data, answer.get("content-type"))
        if partial is not None and partial.rejected_spans:
            error = f"{partial.rejected_spans} spans rejected: {partial.error_message}"
    elif 300 <= status < 400:
        where = answer.get("location") or "?"
        error = f"redirect to {where} not followed: point the sink at the final URL"
    elif outcome is Outcome.TOO_LARGE:
        error = f"request of {sent} bytes too large for the sink"
    if outcome is Outcome.RETRYABLE:
        retry_after = parse_retry_after(answer.get("retry-after"), cap=max_retry_after)
    return {
        "outcome": outcome,
        "status_code": status,
        "error": error,
        "response_excerpt": safe_excerpt(data),
        "retry_after": retry_after,
        "partial_success": partial,
    }


_default: tuple[int, DeliveryClient] | None = None
_default_lock = threading.Lock()


def default_client() -> DeliveryClient:
    """The process-wide client (re-created in a forked child: pools don't survive fork)."""
    global _default
    with _default_lock:
        if _default is None or _default[0] != os.getpid():
            _default = (os.getpid(), DeliveryClient())
        return _default[1]
