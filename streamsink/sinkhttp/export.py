"""Sending one batch of spans (docs/architecture.md, delivery rules): the one splitter.

``export`` POSTs the spans of a batch in order, as runs of span indices that a
``Renderer`` turns into request bodies (any encoding, any compression):

- a run whose body is over ``max_bytes`` (checked before gzip) is sent in halves;
- a run answered 413 is sent again in halves, recursively; a single span that
  still gets 413 fails PERMANENT, saying so;
- under ``encoding: auto`` (``fallback`` given), a 415 makes the rest of the
  batch go out at once in the other encoding (once per batch: a second 415
  is a permanent failure), recorded in ``BatchResult.switch``.

It stops at the first failure, so the delivered spans are a prefix of the
batch. Every HTTP request is in ``BatchResult.attempts``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol, TypeVar

from streamsink.otlp.answer import JSON, PROTOBUF
from streamsink.otlp.split import CONTENT_TYPES, Body, BodyEncoder, Encoding, make_body, runs_of
from streamsink.sinkhttp.client import DeliveryClient, DeliveryResult, Outcome

T = TypeVar("T")


class Renderer(Protocol):
    """Request bodies for runs of a batch's spans, in one encoding."""

    @property
    def encoding(self) -> str: ...  # "json" | "protobuf"

    @property
    def content_type(self) -> str: ...

    def plan(self, max_bytes: int | None, start: int = 0) -> list[range]: ...

    def render(self, run: range) -> Body: ...


@dataclass(frozen=True, slots=True)
class Switch:
    """Under ``auto``: the 415 answer that made the batch change encoding."""

    from_encoding: str
    to_encoding: str
    answer: DeliveryResult
    span_count: int  # spans in the refused request


@dataclass(slots=True)
class BatchResult:
    """Every HTTP attempt of a batch, in order, and how it ended.

    ``outcome`` is SUCCESS when every span was accepted; otherwise the failing
    request's outcome (never TOO_LARGE). ``encoding``: of the last body sent.
    """

    outcome: Outcome
    attempts: list[DeliveryResult] = field(default_factory=list)
    delivered: int = 0
    rejected_spans: int = 0
    failure: DeliveryResult | None = None
    encoding: str = ""
    switch: Switch | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.SUCCESS


class Prerendered:
    """A batch already rendered into ``bodies`` (by the transform pipeline); runs
    other than those bodies (halves, the rest of a batch) are rendered by a
    ``BodyEncoder`` made on first need."""

    def __init__(
        self, bodies: Sequence[Body], encoding: Encoding, make: Callable[[], BodyEncoder]
    ) -> None:
        self._runs = runs_of(bodies)
        self._bodies = {(r.start, r.stop): b for r, b in zip(self._runs, bodies, strict=True)}
        self.encoding = encoding
        self.content_type = CONTENT_TYPES[encoding]
        self._make = make
        self._encoder: BodyEncoder | None = None

    @property
    def encoder(self) -> BodyEncoder:
        if self._encoder is None:
            self._encoder = self._make()
        return self._encoder

    def plan(self, max_bytes: int | None, start: int = 0) -> list[range]:
        if start == 0:
            return list(self._runs)
        return self.encoder.plan(max_bytes, start)

    def render(self, run: range) -> Body:
        body = self._bodies.get((run.start, run.stop))
        return body if body is not None else self.encoder.render(run)


class Encoded:
    """A ``Renderer`` over any ``encode(items) -> bytes`` (one run to start with;
    oversized runs are halved by ``export``)."""

    def __init__(
        self,
        items: Sequence[T],
        encode: Callable[[Sequence[T]], bytes],
        content_type: str = JSON,
        gzip: bool = False,
    ) -> None:
        self._items, self._encode, self._gzip = items, encode, gzip
        self.content_type = content_type
        self.encoding = "protobuf" if content_type == PROTOBUF else "json"

    def plan(self, max_bytes: int | None, start: int = 0) -> list[range]:
        return [range(start, len(self._items))] if start < len(self._items) else []

    def render(self, run: range) -> Body:
        raw = self._encode(self._items[run.start : run.stop])
        return make_body(raw, self.content_type, self._gzip, len(run))


def export(
    client: DeliveryClient,
    url: str,
    renderer: Renderer,
    *,
    headers: Mapping[str, str] | None = None,
    max_bytes: int | None = None,
    fallback: Callable[[], Renderer] | None = None,
) -> BatchResult:
    """Deliver every span ``renderer`` covers, in order (see the module docstring)."""
    result = BatchResult(Outcome.SUCCESS, encoding=renderer.encoding)
    stack = list(reversed(renderer.plan(max_bytes)))
    while stack:
        run = stack.pop()
        body = renderer.render(run)
        if max_bytes is not None and body.size > max_bytes and len(run) > 1:
            _push_halves(stack, run)
            continue
        answer = client.send(
            url,
            body.data,
            headers,
            content_type=body.content_type,
            content_encoding=body.content_encoding,
        )
        result.attempts.append(answer)
        if answer.outcome is Outcome.TOO_LARGE:
            if len(run) > 1:
                _push_halves(stack, run)
                continue
            why = f"a single span ({body.size} bytes encoded) is too large for the sink (413)"
            answer = result.attempts[-1] = replace(answer, outcome=Outcome.PERMANENT, error=why)
        elif answer.status_code == 415 and fallback is not None:
            other = fallback()
            fallback = None
            result.switch = Switch(renderer.encoding, other.encoding, answer, len(run))
            renderer = other
            result.encoding = renderer.encoding
            stack = list(reversed(renderer.plan(max_bytes, run.start)))
            continue
        if not answer.ok:
            result.outcome, result.failure = answer.outcome, answer
            return result
        result.delivered += len(run)
        if answer.partial_success is not None:
            result.rejected_spans += answer.partial_success.rejected_spans
    return result


def deliver_spans(
    client: DeliveryClient,
    url: str,
    spans: Sequence[T],
    encode: Callable[[Sequence[T]], bytes],
    *,
    headers: Mapping[str, str] | None = None,
    content_type: str = JSON,
    gzip: bool = False,
    max_body_bytes: int | None = None,
) -> BatchResult:
    """``export`` of ``spans`` encoded by ``encode``, split in halves when a body is
    over ``max_body_bytes`` (before gzip) or answered 413."""
    renderer = Encoded(spans, encode, content_type, gzip)
    return export(client, url, renderer, headers=headers, max_bytes=max_body_bytes)


def _push_halves(stack: list[range], run: range) -> None:
    mid = run.start + len(run) // 2
    stack.append(range(mid, run.stop))  # popped second
    stack.append(range(run.start, mid))  # popped first: order is kept
