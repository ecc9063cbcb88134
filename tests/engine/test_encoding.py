"""Per-sink OTLP encoding and compression, end to end (real worker, real Redis,
receivers on 127.0.0.1): protobuf+gzip bodies decode strictly; ``auto`` switches
on 415 (both ways), remembers and shows the working encoding, and records the
switch; an explicit encoding answered 415 disables the sink with the reason;
splitting (byte limit, 413) keeps the encoding and compression."""

from __future__ import annotations

import os
from typing import Any

import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.core.otlp_strict import parse_strict
from tests.helpers.receiver_server import Answer, Recorded

from .conftest import Api, Receiver, Workers, wait_until

JSON = "application/json"
PROTOBUF = "application/x-protobuf"


def media(request: Recorded) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip()


def strict_protobuf(request: Recorded) -> ExportTraceServiceRequest:
    """The body as an ExportTraceServiceRequest, with nothing the schema does not know:
    parsing and re-serialising gives back the very bytes."""
    raw = request.content
    message = ExportTraceServiceRequest.FromString(raw)
    assert message.SerializeToString(deterministic=True) == raw
    return message


def refusing(*media_types: str) -> Any:
    """A receiver handler answering 415 (as Phoenix does) to the given media types."""

    def handle(request: Recorded) -> Answer:
        if media(request) in media_types:
            text = f"Unsupported content type: {media(request)}"
            return Answer(415, text, content_type="text/plain")
        return Answer(200)

    return handle


def seqs(spans: list[dict[str, Any]]) -> list[int]:
    return [s["attributes"]["seq"] for s in spans]


def test_protobuf_gzip_bodies_decode_strictly(
    api: Api, receiver: Receiver, workers: Workers
) -> None:
    workers.start()
    stream = api.stream()
    cfg = {"url": receiver.traces_url, "encoding": "protobuf", "compression": "gzip"}
    sink = api.call(
        "POST", f"/stream/{stream}/sink", 201, json={"type": "otelTracing", "config": cfg}
    )
    api.post_seqs(stream, range(5), note="é ünïcode")
    receiver.wait_accepted(5, timeout=15)
    for request in receiver.requests:
        assert media(request) == PROTOBUF
        assert request.headers["content-encoding"] == "gzip"
        assert request.body[:2] == b"\x1f\x8b"  # really gzip on the wire
        message = strict_protobuf(request)
        spans = [s for rs in message.resource_spans for ss in rs.scope_spans for s in ss.spans]
        assert all(len(s.trace_id) == 16 and len(s.span_id) == 8 for s in spans)
    assert receiver.accepted_seqs() == list(range(5))
    assert receiver.accepted_spans()[0]["attributes"]["note"] == "é ünïcode"
    out = api.get_sink(stream, sink["id"])
    assert out["status"] == "enabled" and out["negotiatedEncoding"] is None


def test_auto_switches_to_protobuf_on_415_and_back(
    api: Api, receiver_factory, workers: Workers
) -> None:
    receiver: Receiver = receiver_factory(handler=refusing(JSON))
    first_worker = workers.start()
    stream = api.stream()
    sink = api.sink(stream, receiver.traces_url, batchSize=10)  # the default: auto
    assert sink["config"]["encoding"] == "auto"
    api.post_seqs(stream, range(3))

    receiver.wait_accepted(3, timeout=15)
    exchanges = receiver.settle()
    assert [(media(x.request), x.answer.status) for x in exchanges] == [
        (JSON, 415),
        (PROTOBUF, 200),
    ]
    parse_strict(exchanges[0].request.content)  # the refused JSON was valid OTLP/JSON
    strict_protobuf(exchanges[1].request)
    assert exchanges[1].spans() == exchanges[0].spans()  # the same spans, re-encoded
    out = api.wait_status(stream, sink["id"], "enabled", timeout=5)
    assert out["failureReason"] is None and out["nextRetryAt"] is None
    wait_until(
        lambda: api.get_sink(stream, sink["id"])["negotiatedEncoding"] == "protobuf",
        5,
        "negotiatedEncoding protobuf",
    )
    records = api.attempts(stream, sink["id"])["data"]
    assert [(a["outcome"], a["statusCode"]) for a in records] == [
        ("success", 200),
        ("switched", 415),
    ]
    assert "switched from json to protobuf" in records[1]["error"]
    assert "Unsupported content type" in records[1]["responseExcerpt"]

    # Remembered in Redis: after a worker restart the next batch goes straight
    # out as protobuf.
    workers.kill(first_worker)
    workers.start()
    api.post_seqs(stream, range(3, 5))
    receiver.wait_accepted(5, timeout=15)
    assert [media(x.request) for x in receiver.settle()[2:]] == [PROTOBUF]

    # The receiver is replaced by one that takes only JSON: back to JSON at once.
    receiver.handler = refusing(PROTOBUF)
    api.post_seqs(stream, range(5, 7))
    receiver.wait_accepted(7, timeout=15)
    tail = receiver.settle()[3:]
    assert [(media(x.request), x.answer.status) for x in tail] == [(PROTOBUF, 415), (JSON, 200)]
    assert receiver.accepted_seqs() == list(range(7))
    wait_until(
        lambda: api.get_sink(stream, sink["id"])["negotiatedEncoding"] == "json",
        5,
        "negotiatedEncoding json",
    )
    assert api.get_sink(stream, sink["id"])["status"] == "enabled"
    newest = api.attempts(stream, sink["id"])["data"][:2]
    assert [a["outcome"] for a in newest] == ["success", "switched"]
    assert "switched from protobuf to json" in newest[1]["error"]


@pytest.mark.parametrize(("encoding", "refused"), [("json", JSON), ("protobuf", PROTOBUF)])
def test_explicit_encoding_answered_415_disables_with_reason(
    api: Api, receiver_factory, workers: Workers, encoding: str, refused: str
) -> None:
    receiver: Receiver = receiver_factory(handler=refusing(refused))
    workers.start()
    stream = api.stream()
    cfg = {"url": receiver.traces_url, "encoding": encoding}
    sink = api.call(
        "POST", f"/stream/{stream}/sink", 201, json={"type": "otelTracing", "config": cfg}
    )
    api.post_seqs(stream, range(2))
    out = api.wait_status(stream, sink["id"], "disabled", timeout=15)
    reason = out["failureReason"]
    assert "415" in reason and refused in reason and "config.encoding" in reason, reason
    assert "Unsupported content type" in reason
    assert out["currentIterator"] == sink["currentIterator"]  # events kept
    assert len(api.log_ids(stream)) == 2
    assert len(receiver.settle()) == 1  # no switch, no retry
    assert out["negotiatedEncoding"] is None


def test_auto_with_a_receiver_refusing_both_disables(
    api: Api, receiver_factory, workers: Workers
) -> None:
    receiver: Receiver = receiver_factory(handler=refusing(JSON, PROTOBUF))
    workers.start()
    stream = api.stream()
    cfg = {"url": receiver.traces_url, "compression": "gzip"}
    sink = api.call(
        "POST", f"/stream/{stream}/sink", 201, json={"type": "otelTracing", "config": cfg}
    )
    api.post_seqs(stream, range(2))
    out = api.wait_status(stream, sink["id"], "disabled", timeout=15)
    assert "refuses both JSON and protobuf" in out["failureReason"]
    assert 'compression "none"' in out["failureReason"]
    assert [media(x.request) for x in receiver.settle()] == [JSON, PROTOBUF]
    records = api.attempts(stream, sink["id"])["data"]
    assert [a["outcome"] for a in records] == ["failed", "switched"]


def post_padded(api: Api, stream: str, count: int, pad: int) -> None:
    """``count`` events, each with its own ``pad`` random bytes (as hex): gzip
    cannot shrink them away."""
    events = [
        ("e", orjson.dumps({"seq": i, "pad": os.urandom(pad).hex()}).decode()) for i in range(count)
    ]
    api.post(stream, events)


def test_protobuf_gzip_batch_over_the_byte_limit_is_split(
    api: Api, receiver: Receiver, workers: Workers
) -> None:
    limit = 2048
    workers.start(max_request_bytes=str(limit))
    stream = api.stream()
    cfg = {"url": receiver.traces_url, "encoding": "protobuf", "compression": "gzip"}
    sink = api.call(
        "POST",
        f"/stream/{stream}/sink",
        201,
        json={"type": "otelTracing", "config": cfg, "batchSize": 20},
    )
    post_padded(api, stream, 20, 200)  # ~500 bytes a span
    receiver.wait_accepted(20, timeout=15)
    requests = receiver.requests
    assert len(requests) >= 4
    for request in requests:
        assert media(request) == PROTOBUF and request.headers["content-encoding"] == "gzip"
        assert len(request.content) <= limit
        strict_protobuf(request)
    assert receiver.accepted_seqs() == list(range(20))
    assert api.get_sink(stream, sink["id"])["status"] == "enabled"


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_413_on_protobuf_splits_into_protobuf_halves(
    api: Api, receiver_factory, workers: Workers, compression: str
) -> None:
    receiver: Receiver = receiver_factory(max_body=1500)
    workers.start()
    stream = api.stream()
    cfg = {"url": receiver.traces_url, "encoding": "protobuf", "compression": compression}
    sink = api.call(
        "POST",
        f"/stream/{stream}/sink",
        201,
        json={"type": "otelTracing", "config": cfg, "batchSize": 16},
    )
    post_padded(api, stream, 16, 150)
    receiver.wait_accepted(16, timeout=15)
    exchanges = receiver.settle()
    assert exchanges[0].answer.status == 413
    assert {x.answer.status for x in exchanges} == {413, 200}
    for x in exchanges:
        assert media(x.request) == PROTOBUF
        assert x.request.headers.get("content-encoding", "none").replace("none", "") == (
            "gzip" if compression == "gzip" else ""
        )
        strict_protobuf(x.request)
    assert receiver.accepted_seqs() == list(range(16))  # each once, in order
    out = api.get_sink(stream, sink["id"])
    assert out["status"] == "enabled" and out["failureReason"] is None
