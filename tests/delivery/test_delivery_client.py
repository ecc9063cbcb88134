"""DeliveryClient against real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import gzip
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from streamsink import __version__
from streamsink.sinkhttp.client import (
    JSON,
    PROTOBUF,
    DeliveryClient,
    Outcome,
    default_client,
    parse_partial_success,
    parse_retry_after,
    safe_excerpt,
)
from tests.helpers.receiver_server import Answer, ReceiverServer, closed_port_url

BODY = b'{"resourceSpans":[]}'


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.SUCCESS),
        (202, Outcome.SUCCESS),
        (204, Outcome.SUCCESS),
        (408, Outcome.RETRYABLE),
        (429, Outcome.RETRYABLE),
        (502, Outcome.RETRYABLE),
        (503, Outcome.RETRYABLE),
        (504, Outcome.RETRYABLE),
        (413, Outcome.TOO_LARGE),
        (400, Outcome.PERMANENT),
        (401, Outcome.PERMANENT),
        (403, Outcome.PERMANENT),
        (404, Outcome.PERMANENT),
        (415, Outcome.PERMANENT),
        (500, Outcome.PERMANENT),
        (501, Outcome.PERMANENT),
    ],
)
def test_status_classification(
    sink: ReceiverServer, client: DeliveryClient, status: int, outcome: Outcome
) -> None:
    sink.push(
        Answer(status, b"" if status == 204 else b"nope: details here", content_type="text/plain")
    )
    result = client.send(sink.traces_url, BODY)
    assert result.outcome is outcome
    assert result.status_code == status
    assert result.duration_ms > 0
    assert result.request_bytes == len(BODY)
    if outcome is not Outcome.SUCCESS:
        assert f"HTTP {status}" in result.reason


def test_headers_user_agent_and_content_type(sink: ReceiverServer, client: DeliveryClient) -> None:
    headers = {
        "Authorization": "Bearer abc",
        "X-Tenant": "t1",
        "content-type": "text/plain",  # ignored: the body decides
        "Host": "evil.example",  # ignored: hop-by-hop / connection level
    }
    assert client.send(sink.traces_url, BODY, headers, PROTOBUF).ok
    got = sink.requests[0]
    assert got.method == "POST" and got.path == "/v1/traces"
    assert got.headers["authorization"] == "Bearer abc"
    assert got.headers["x-tenant"] == "t1"
    assert got.headers["content-type"] == PROTOBUF
    assert got.headers["user-agent"] == f"streamsink/{__version__}"
    assert got.headers["host"] == f"127.0.0.1:{sink.port}"
    assert "content-encoding" not in got.headers
    assert got.body == BODY
    # a sink may override the User-Agent
    assert client.send(sink.traces_url, BODY, {"User-Agent": "custom/1"}).ok
    assert sink.requests[1].headers["user-agent"] == "custom/1"
    assert sink.requests[1].headers["content-type"] == JSON


def test_credentials_in_the_url_are_sent_as_basic_auth(
    sink: ReceiverServer, client: DeliveryClient
) -> None:
    url = sink.traces_url.replace("http://", "http://user%40x:p%3Ass@")
    assert client.send(url, BODY).ok
    assert sink.requests[0].headers["authorization"] == "Basic dXNlckB4OnA6c3M="  # user@x:p:ss
    assert sink.requests[0].path == "/v1/traces"


def test_gzip_body_and_header(sink: ReceiverServer, client: DeliveryClient) -> None:
    body = b'{"resourceSpans":[' + b'{"x":1},' * 500 + b"{}]}"
    result = client.send(sink.traces_url, body, gzip=True)
    assert result.ok
    got = sink.requests[0]
    assert got.headers["content-encoding"] == "gzip"
    assert gzip.decompress(got.body) == body
    assert result.request_bytes == len(got.body) < len(body)


def test_precompressed_body_is_sent_as_is(sink: ReceiverServer, client: DeliveryClient) -> None:
    packed = gzip.compress(BODY)
    assert client.send(sink.traces_url, packed, content_encoding="gzip").ok
    got = sink.requests[0]
    assert got.headers["content-encoding"] == "gzip" and got.body == packed
    assert got.content == BODY


def test_connection_is_reused(sink: ReceiverServer, client: DeliveryClient) -> None:
    for _ in range(5):
        assert client.send(sink.traces_url, BODY).ok
    assert len({r.client_port for r in sink.requests}) == 1


def test_connection_refused_is_retryable(client: DeliveryClient) -> None:
    result = client.send(closed_port_url(), BODY)
    assert result.outcome is Outcome.RETRYABLE
    assert result.status_code is None
    assert "connection error" in (result.error or "")


def test_dropped_connection_is_retryable(sink: ReceiverServer, client: DeliveryClient) -> None:
    sink.push(Answer(drop=True))
    result = client.send(sink.traces_url, BODY)
    assert result.outcome is Outcome.RETRYABLE, result
    assert result.status_code is None


def test_read_timeout_is_retryable(sink: ReceiverServer) -> None:
    sink.push(Answer(200, delay=3.0))
    with DeliveryClient(connect_timeout=1.0, read_timeout=0.3) as client:
        started = time.monotonic()
        result = client.send(sink.traces_url, BODY)
    assert time.monotonic() - started < 2.0
    assert result.outcome is Outcome.RETRYABLE
    assert "timed out" in (result.error or "") and "ReadTimeout" in (result.error or "")


def test_dripping_body_is_bounded_by_total_timeout(sink: ReceiverServer) -> None:
    sink.push(Answer(200, b"x" * 1000, content_type="text/plain", drip=0.05))
    with DeliveryClient(read_timeout=1.0, total_timeout=0.5) as client:
        started = time.monotonic()
        result = client.send(sink.traces_url, BODY)
    assert time.monotonic() - started < 1.5
    assert result.ok  # the status was 200: the spans were accepted
    assert 0 < len(result.response_excerpt) < 1000


def test_redirect_is_not_followed(sink: ReceiverServer, client: DeliveryClient) -> None:
    sink.push(Answer(301, headers={"Location": "http://127.0.0.1:1/elsewhere"}))
    result = client.send(sink.traces_url, BODY)
    assert result.outcome is Outcome.PERMANENT
    assert result.status_code == 301
    assert "redirect to http://127.0.0.1:1/elsewhere not followed" in result.reason
    assert len(sink.requests) == 1


def test_retry_after_seconds_and_date(sink: ReceiverServer, client: DeliveryClient) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    sink.push(
        Answer(429, headers={"Retry-After": "7"}),
        Answer(503, headers={"Retry-After": when}),
        Answer(503, headers={"Retry-After": "999999"}),
        Answer(502, headers={"Retry-After": "soon"}),
        Answer(400, headers={"Retry-After": "7"}),
    )
    results = [client.send(sink.traces_url, BODY) for _ in range(5)]
    assert results[0].retry_after == 7
    assert 100 <= (results[1].retry_after or 0) <= 120
    assert results[2].retry_after == 300  # capped (STREAMSINK_DELIVERY_MAX_RETRY_AFTER default)
    assert results[3].retry_after is None
    assert results[4].retry_after is None  # permanent: no retry to schedule


def test_parse_retry_after_unit() -> None:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    assert parse_retry_after("Mon, 01 Jan 2024 00:00:30 GMT", now=now) == 30
    assert parse_retry_after("Sun, 31 Dec 2023 23:00:00 GMT", now=now) == 0  # past
    assert parse_retry_after(" 12 ") == 12
    assert parse_retry_after("-5") == 0
    assert parse_retry_after("100", cap=10) == 10
    assert parse_retry_after("") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("nan") is None
    assert parse_retry_after("garbage") is None


def test_partial_success_json(sink: ReceiverServer, client: DeliveryClient) -> None:
    sink.push(
        Answer(200, {"partialSuccess": {"rejectedSpans": "3", "errorMessage": "bad spans"}}),
        Answer(200, {"partialSuccess": {"rejectedSpans": 2}}),
        Answer(200, {"partialSuccess": {}}),
        Answer(200, {}),
    )
    results = [client.send(sink.traces_url, BODY, content_type=JSON) for _ in range(4)]
    assert all(r.ok for r in results)
    assert results[0].partial_success is not None
    assert results[0].partial_success.rejected_spans == 3
    assert results[0].partial_success.error_message == "bad spans"
    assert "3 spans rejected" in (results[0].error or "")
    assert results[1].partial_success is not None
    assert results[1].partial_success.rejected_spans == 2
    assert results[2].partial_success is None
    assert results[3].partial_success is None


def test_partial_success_protobuf(sink: ReceiverServer, client: DeliveryClient) -> None:
    answer = ExportTraceServiceResponse()
    answer.partial_success.rejected_spans = 5
    answer.partial_success.error_message = "too old"
    sink.push(Answer(200, answer.SerializeToString(), content_type=PROTOBUF), Answer(200))
    result = client.send(sink.traces_url, b"\x0a\x00", content_type=PROTOBUF)
    assert result.partial_success is not None
    assert result.partial_success.rejected_spans == 5
    assert result.partial_success.error_message == "too old"
    empty = client.send(sink.traces_url, b"\x0a\x00", content_type=PROTOBUF)
    assert empty.ok and empty.partial_success is None


def test_parse_partial_success_tolerates_junk() -> None:
    assert parse_partial_success(b"not json", "application/json") is None
    assert parse_partial_success(b"[1,2]", "application/json") is None
    assert parse_partial_success(b"\xff\xfe\x00", PROTOBUF) is None
    assert parse_partial_success(b"OK", "text/plain") is None
    assert parse_partial_success(b"", None) is None
    doc = orjson.dumps({"partial_success": {"rejected_spans": "x", "error_message": "warn"}})
    ps = parse_partial_success(doc, None)
    assert ps is not None and ps.rejected_spans == 0 and ps.error_message == "warn"


def test_response_excerpt_is_short_and_safe(sink: ReceiverServer, client: DeliveryClient) -> None:
    sink.push(Answer(400, b"\xff\x00bad\x1b[31m" + b"y" * 5000, content_type="text/plain"))
    result = client.send(sink.traces_url, BODY)
    assert len(result.response_excerpt) <= 500
    assert result.response_excerpt.startswith("\ufffd?bad?[31m")
    assert safe_excerpt(b"  ok \n") == "ok"


def test_invalid_url_and_header_are_permanent(sink: ReceiverServer, client: DeliveryClient) -> None:
    assert client.send("ftp://127.0.0.1/x", BODY).outcome is Outcome.PERMANENT
    assert client.send("not a url", BODY).outcome is Outcome.PERMANENT
    for bad in ({"X-Bad": "a\nb"}, {"Bad Name": "v"}):
        result = client.send(sink.traces_url, BODY, bad)
        assert result.outcome is Outcome.PERMANENT, result
        assert "invalid request" in (result.error or "")
    assert sink.requests == []


def test_supplied_httpx_client_is_used_and_not_closed(sink: ReceiverServer) -> None:
    http = httpx.Client(headers={"X-From": "mine"})
    with DeliveryClient(client=http) as client:
        assert client.send(sink.traces_url, BODY).ok
    assert not http.is_closed
    http.close()
    assert sink.requests[0].headers["x-from"] == "mine"


def test_default_client_is_per_process() -> None:
    assert default_client() is default_client()


def test_dripping_status_line_ends_at_the_request_deadline() -> None:
    """A receiver that drips its status line and headers a byte at a time, each
    byte well within the read timeout, is cut off at the request deadline."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    stop = threading.Event()

    def drip() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"y" * 200:
                if stop.wait(0.05):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1/traces"
    try:
        with DeliveryClient(read_timeout=1.0, total_timeout=0.6) as client:
            started = time.monotonic()
            result = client.send(url, BODY)
        assert time.monotonic() - started < 1.5
        assert result.outcome is Outcome.RETRYABLE
        assert "ReadTimeout" in (result.error or "")
        assert 0.5 <= result.duration_ms / 1000 < 1.0  # the deadline, not the read timeout
    finally:
        stop.set()
        thread.join(5)
        listener.close()
