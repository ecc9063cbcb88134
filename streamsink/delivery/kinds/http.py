"""``http`` sinks (Svix Stream's): a batch becomes one signed HTTP request.

The batch goes through the sink's transformation (the bundled default,
``transform/http-default.js``, sends the events as a JSON array) with input
``{events, url}``; its result says the body and how to send it
(``transform.http_output``: format json or raw, method, url, headers). Every
request is signed the Standard Webhooks way with the sink's secret, and during
a rotation's grace period with the previous one too (``sinkhttp.signing``,
``storage.sink_secrets``); the request id is the same for every retry of the
batch.

As for ``otelTracing`` sinks: a JSON body whose ``data`` is an array is sent in
halves when over ``STREAMSINK_MAX_REQUEST_BYTES`` or answered 413, each half
with its own id; any other body answered 413 fails with the reason. The
requests go in order and stop at the first failure; ``delivery.batch`` then
retries the whole batch or disables the sink.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from redis.client import Pipeline

from streamsink.delivery.kinds.base import Sent
from streamsink.sinkhttp.client import Outcome
from streamsink.sinkhttp.export import BatchResult
from streamsink.sinkhttp.netguard import DestinationPolicy
from streamsink.sinkhttp.signing import message_id, signature_headers
from streamsink.storage import sink_secrets
from streamsink.storage.eventlog import LogEntry
from streamsink.storage.sinks import SinkRecord
from streamsink.transform.http_output import (
    DEFAULT_CODE,
    HttpRequestSpec,
    http_input_json,
    validate_http_output,
)

if TYPE_CHECKING:
    from streamsink.delivery.engine import Engine


@dataclass(slots=True)
class HttpBatch:
    """A prepared batch: the request the handler asked for."""

    spec: HttpRequestSpec
    events: int


class HttpKind:
    """The ``SinkKind`` of ``http`` sinks (prepared batch: ``HttpBatch``)."""

    def prepare(self, engine: Engine, sink: SinkRecord, events: list[LogEntry]) -> HttpBatch:
        items = [{"eventType": e.event_type, "payload": e.payload} for e in events]
        code = sink.code if sink.code is not None else DEFAULT_CODE
        output = engine.runtime.run_json(sink.id, code, http_input_json(items, sink.url))
        policy = DestinationPolicy(block_private=engine.settings.block_private_destinations)
        spec = validate_http_output(
            output, sink_url=sink.url, sink_headers=sink.headers, policy=policy
        )
        return HttpBatch(spec, len(events))

    def items(self, prepared: HttpBatch) -> int:
        return prepared.spec.items

    def send(
        self, engine: Engine, sink: SinkRecord, prepared: HttpBatch, first: str, last: str
    ) -> Sent:
        secrets = sink_secrets.signing_secrets(engine.redis, sink.id)
        result = send_request(
            engine, sink.id, prepared.spec, secrets, first, last, engine.settings.max_request_bytes
        )
        return Sent(result, result.failure.reason if result.failure is not None else None)

    def stage_success(
        self, pipe: Pipeline, engine: Engine, sink: SinkRecord, prepared: HttpBatch
    ) -> None:
        return None


def send_request(
    engine: Engine,
    sink_id: str,
    spec: HttpRequestSpec,
    secrets: list[str],
    first: str,
    last: str,
    max_bytes: int | None,
) -> BatchResult:
    """Send the batch's request(s) in order (halves as the module docstring says);
    stops at the first failure."""
    result = BatchResult(Outcome.SUCCESS, encoding=spec.format)
    whole = range(0, spec.items)
    stack = [whole]
    while stack:
        run = stack.pop()
        body = spec.render(None if run == whole else run)
        if max_bytes is not None and len(body) > max_bytes and spec.splittable and len(run) > 1:
            _push_halves(stack, run)
            continue
        msg_id = message_id(sink_id, first, last, None if run == whole else run)
        headers = {**spec.headers, **signature_headers(secrets, msg_id, int(time.time()), body)}
        answer = engine.client.send(
            spec.url, body, headers, content_type=spec.content_type, method=spec.method
        )
        result.attempts.append(answer)
        if answer.outcome is Outcome.TOO_LARGE:
            if spec.splittable and len(run) > 1:
                _push_halves(stack, run)
                continue
            answer = result.attempts[-1] = replace(
                answer, outcome=Outcome.PERMANENT, error=_too_large(spec, len(body))
            )
        if not answer.ok:
            result.outcome, result.failure = answer.outcome, answer
            return result
        result.delivered += len(run)
    return result


def _too_large(spec: HttpRequestSpec, size: int) -> str:
    if spec.format == "raw":
        why = 'format "raw" cannot be split'
        return f"the body ({size} bytes) is too large for the sink (413); {why}"
    if not spec.splittable:
        return (
            f"the body ({size} bytes) is too large for the sink (413); only a JSON array"
            " `data` can be split"
        )
    return f"a single item of `data` ({size} bytes as JSON) is too large for the sink (413)"


def _push_halves(stack: list[range], run: range) -> None:
    mid = run.start + len(run) // 2
    stack.append(range(mid, run.stop))  # popped second
    stack.append(range(run.start, mid))  # popped first: order is kept
