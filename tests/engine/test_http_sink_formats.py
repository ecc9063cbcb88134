"""``http`` sinks delivered by the real engine (in this process) to real HTTP
servers on 127.0.0.1 that verify every request with the real ``svix`` library:
what the handler sets (format, method, url, headers), bad output, the output
limit, 413 splits and the destination policy. Signing and retries:
``test_http_sink_delivery.py``."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest
import redis
from svix.webhooks import Webhook

from tests.helpers.receiver_server import AnswerLike, Recorded

from .conftest import Api, Receiver
from .http_sink_util import Verifier, events, http_sink, run, secret_of


@pytest.fixture
def verifying(
    receiver_factory: Callable[..., Receiver],
) -> Callable[[Verifier], Receiver]:
    return lambda verifier: receiver_factory(handler=verifier)


RAW_PUT = """
function handler(input) {
  return {
    config: {format: "raw", method: "put", url: input.url + "/raw",
              headers: {"Content-Type": "text/csv", "X-Tenant": "override"}},
    data: input.events.map(e => e.eventType + "," + e.payload.n).join("\\n"),
  };
}
"""


def test_raw_format_method_url_and_headers_from_the_handler(
    api: Api, redis_client: redis.Redis, verifying: Callable[[Verifier], Receiver]
) -> None:
    stream = api.stream()
    verifier = Verifier([])
    rx = verifying(verifier)
    sink = http_sink(api, stream, rx.url, config={"headers": {"x-tenant": "sink", "X-Keep": "1"}})
    api.transformation(stream, sink["id"], RAW_PUT)
    verifier.secrets.append(secret_of(api, stream, sink["id"]))
    api.post(stream, [("a", '{"n": 1}'), ("b", '{"n": 2}')])
    run(redis_client, stream, sink["id"])
    assert verifier.refused == []
    [req] = verifier.verified
    assert (req.method, req.path, req.body) == ("PUT", "/raw", b"a,1\nb,2")
    assert req.headers["content-type"] == "text/csv"
    assert req.headers["x-tenant"] == "override" and req.headers["x-keep"] == "1"


PATCH_JSON = """
function handler(input) {
  return {config: {format: "json", method: "PATCH"}, data: {count: input.events.length}};
}
"""


def test_patch_with_a_json_object(
    api: Api, redis_client: redis.Redis, verifying: Callable[[Verifier], Receiver]
) -> None:
    stream = api.stream()
    verifier = Verifier([])
    rx = verifying(verifier)
    sink = http_sink(api, stream, rx.url)
    api.transformation(stream, sink["id"], PATCH_JSON)
    verifier.secrets.append(secret_of(api, stream, sink["id"]))
    api.post(stream, [("a", "{}"), ("b", "{}"), ("c", "{}")])
    run(redis_client, stream, sink["id"])
    [req] = verifier.verified
    assert req.method == "PATCH" and events(req) == {"count": 3}  # type: ignore[comparison-overlap]


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (
            'function handler(i) { return {config: {format: "raw"}, data: i.events}; }',
            'data: format "raw" sends a string as is; got array',
        ),
        (
            'function handler(i) { return {config: {method: "DELETE"}, data: 1}; }',
            "config.method: 'DELETE' is not supported; use 'POST' or 'PUT' or 'PATCH'",
        ),
        (
            'function handler(i) { return {config: {url: "http://169.254.169.254/x"}, data: 1}; }',
            "config.url: url not allowed",
        ),
        (
            'function handler(i) { return {config: {format: "xml"}, data: 1}; }',
            "config.format: 'xml' is not supported",
        ),
        ("function handler(i) { return {config: {}}; }", "data: required"),
    ],
)
def test_bad_handler_output_disables_the_sink_naming_the_field(
    api: Api,
    redis_client: redis.Redis,
    verifying: Callable[[Verifier], Receiver],
    code: str,
    reason: str,
) -> None:
    stream = api.stream()
    verifier = Verifier([])
    rx = verifying(verifier)
    sink = http_sink(api, stream, rx.url)
    api.transformation(stream, sink["id"], code)
    api.post(stream, [("e", '{"n": 1}')])
    run(redis_client, stream, sink["id"])
    after = api.get_sink(stream, sink["id"])
    assert after["status"] == "disabled"
    assert reason in after["failureReason"], after["failureReason"]
    assert rx.requests == []


def test_an_override_url_refused_by_block_private_destinations(
    api: Api, redis_client: redis.Redis, verifying: Callable[[Verifier], Receiver]
) -> None:
    stream = api.stream()
    rx = verifying(Verifier([]))
    sink = http_sink(api, stream, "https://hooks.example.com/in")
    code = f'function handler(i) {{ return {{config: {{url: "{rx.url}/x"}}, data: 1}}; }}'
    api.transformation(stream, sink["id"], code)
    api.post(stream, [("e", "{}")])
    run(redis_client, stream, sink["id"], block_private_destinations=True)
    after = api.get_sink(stream, sink["id"])
    assert after["status"] == "disabled"
    assert "config.url" in after["failureReason"] and "127.0.0.1" in after["failureReason"]
    assert rx.requests == []


def test_a_json_array_answered_413_is_sent_in_signed_halves(
    api: Api, redis_client: redis.Redis, receiver_factory: Callable[..., Receiver]
) -> None:
    stream = api.stream()
    secret: list[str] = []
    bodies: list[bytes] = []

    def handler(req: Recorded) -> AnswerLike:
        Webhook(secret[0]).verify(req.body, req.headers)  # raises: the test fails (500)
        if len(req.body) > 300:
            return 413
        bodies.append(req.body)
        return 200

    rx = receiver_factory(handler=handler)
    sink = http_sink(api, stream, rx.url, batchSize=8)
    secret.append(secret_of(api, stream, sink["id"]))
    api.post(stream, [("e", orjson.dumps({"n": n, "pad": "x" * 40}).decode()) for n in range(8)])
    run(redis_client, stream, sink["id"])
    got = [e["payload"]["n"] for body in bodies for e in orjson.loads(body)]
    assert got == list(range(8))  # every event once, in order
    assert len(bodies) > 1
    ids = [r.headers["svix-id"] for r in rx.requests if len(r.body) <= 300]
    assert len(set(ids)) == len(ids)  # each part its own id
    assert api.get_sink(stream, sink["id"])["status"] == "enabled"


def test_raw_answered_413_fails_with_the_reason(
    api: Api, redis_client: redis.Redis, receiver_factory: Callable[..., Receiver]
) -> None:
    stream = api.stream()
    rx = receiver_factory(default=413)
    sink = http_sink(api, stream, rx.url)
    code = 'function handler(i) { return {config: {format: "raw"}, data: "a,b"}; }'
    api.transformation(stream, sink["id"], code)
    api.post(stream, [("e", "{}"), ("e", "{}")])
    run(redis_client, stream, sink["id"])
    after = api.get_sink(stream, sink["id"])
    assert after["status"] == "disabled"
    assert 'format "raw" cannot be split' in after["failureReason"]
    assert len(rx.requests) == 1


def test_the_handler_output_limit_applies(
    api: Api, redis_client: redis.Redis, receiver_factory: Callable[..., Receiver]
) -> None:
    stream = api.stream()
    rx = receiver_factory()
    sink = http_sink(api, stream, rx.url)
    code = 'function handler(i) { return {data: "x".repeat(5000)}; }'
    api.transformation(stream, sink["id"], code)
    api.post(stream, [("e", "{}")])
    run(redis_client, stream, sink["id"], js_max_output_bytes=2000)
    after = api.get_sink(stream, sink["id"])
    assert after["status"] == "disabled" and "2000" in after["failureReason"]
    assert rx.requests == []


@pytest.mark.parametrize("userinfo", ["", "user:pw@"])
def test_the_client_sends_put_and_patch_on_both_transports(
    receiver_factory: Callable[..., Receiver], userinfo: str
) -> None:
    from streamsink.sinkhttp.client import DeliveryClient

    rx = receiver_factory()
    url = f"http://{userinfo}127.0.0.1:{rx.port}/m"  # credentials: the httpx transport
    with DeliveryClient() as client:
        for method in ("PUT", "PATCH", "POST"):
            assert client.send(url, b"{}", method=method).ok
    assert [r.method for r in rx.requests] == ["PUT", "PATCH", "POST"]
    assert all(("authorization" in r.headers) == bool(userinfo) for r in rx.requests)
