"""``http`` sinks delivered by the real engine (in this process) to real HTTP
servers on 127.0.0.1 that verify every request with the real ``svix`` library:
signatures and ids, retries, rotation, formats, method and url overrides, 413
splits and the destination policy."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import orjson
import pytest
import redis
from svix.webhooks import Webhook, WebhookVerificationError

from streamsink.delivery import job as delivery
from streamsink.delivery.engine import Engine
from streamsink.settings import Settings
from streamsink.storage.base import sink_key
from tests.helpers.receiver_server import Answer, AnswerLike, Recorded

from .conftest import Api, Receiver

SIGNED = ("svix-id", "svix-timestamp", "svix-signature")


class Verifier:
    """Answers of a receiver that checks each request's signature with
    ``svix.webhooks.Webhook(secret).verify`` (401 when it fails), then plays
    the queued answers (default 200)."""

    def __init__(self, secrets: list[str], answers: list[AnswerLike] | None = None) -> None:
        self.secrets = secrets
        self.answers = list(answers or [])
        self.verified: list[Recorded] = []
        self.refused: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, req: Recorded) -> AnswerLike:
        for secret in self.secrets:
            try:
                Webhook(secret).verify(req.body, req.headers)
            except WebhookVerificationError as exc:
                with self._lock:
                    self.refused.append(f"{secret[:10]}: {exc}")
                return Answer(401, b"bad signature", content_type="text/plain")
        with self._lock:
            self.verified.append(req)
            return self.answers.pop(0) if self.answers else 200


def run(redis_client: redis.Redis, stream: str, sink_id: str, **settings: Any) -> None:
    """Deliver what the sink owes, in this process (immediate retries)."""
    engine = Engine(redis_client, Settings(retry_schedule="0,0,0", **settings))
    try:
        delivery.process_sink(engine, stream, sink_id)
    finally:
        engine.close()


def http_sink(api: Api, stream: str, url: str, **fields: Any) -> dict[str, Any]:
    config = fields.pop("config", {})
    body = {"type": "http", "config": {"url": url, **config}, **fields}
    return api.call("POST", f"/stream/{stream}/sink", 201, json=body)


def secret_of(api: Api, stream: str, sink_id: str) -> str:
    key = api.call("GET", f"/stream/{stream}/sink/{sink_id}/secret", 200)["key"]
    assert isinstance(key, str) and key.startswith("whsec_")
    return key


def events(req: Recorded) -> list[dict[str, Any]]:
    return orjson.loads(req.body)


@pytest.fixture
def verifying(
    receiver_factory: Callable[..., Receiver],
) -> Callable[[Verifier], Receiver]:
    return lambda verifier: receiver_factory(handler=verifier)


def test_default_handler_posts_the_events_as_signed_json(
    api: Api, redis_client: redis.Redis, verifying: Callable[[Verifier], Receiver]
) -> None:
    stream = api.stream()
    verifier = Verifier([])
    rx = verifying(verifier)
    sink = http_sink(api, stream, f"{rx.url}/hook", config={"headers": {"X-Tenant": "t1"}})
    verifier.secrets.append(secret_of(api, stream, sink["id"]))
    api.post(stream, [("user.created", '{"id": 1}'), ("note", "plain text")])
    run(redis_client, stream, sink["id"])
    assert verifier.refused == []
    [req] = verifier.verified
    assert req.method == "POST" and req.path == "/hook"
    assert req.headers["content-type"] == "application/json"
    assert req.headers["x-tenant"] == "t1"
    assert events(req) == [
        {"eventType": "user.created", "payload": {"id": 1}},
        {"eventType": "note", "payload": "plain text"},
    ]
    for name in ("id", "timestamp", "signature"):
        assert req.headers[f"webhook-{name}"] == req.headers[f"svix-{name}"]
    assert req.headers["svix-signature"].startswith("v1,")
    assert " " not in req.headers["svix-signature"]  # one secret, one signature
    after = api.get_sink(stream, sink["id"])
    assert after["status"] == "enabled" and after["failureReason"] is None
    assert "key" not in after["config"] and "encoding" not in after["config"]
    [attempt] = api.attempts(stream, sink["id"])["data"]
    assert attempt["outcome"] == "success"


def test_a_retried_batch_keeps_its_id(
    api: Api, redis_client: redis.Redis, verifying: Callable[[Verifier], Receiver]
) -> None:
    stream = api.stream()
    verifier = Verifier([], [503, 200])
    rx = verifying(verifier)
    sink = http_sink(api, stream, rx.url)
    verifier.secrets.append(secret_of(api, stream, sink["id"]))
    api.post(stream, [("e", '{"n": 1}'), ("e", '{"n": 2}')])
    run(redis_client, stream, sink["id"])
    first, second = verifier.verified
    assert first.headers["svix-id"] == second.headers["svix-id"]
    assert first.body == second.body
    api.post(stream, [("e", '{"n": 3}')])
    run(redis_client, stream, sink["id"])
    third = verifier.verified[2]
    assert third.headers["svix-id"] != first.headers["svix-id"]  # another batch
    assert [o["outcome"] for o in api.attempts(stream, sink["id"])["data"]] == [
        "success",
        "success",
        "retrying",
    ]


def test_a_500_disables_and_the_re_enabled_batch_has_the_same_id(
    api: Api, redis_client: redis.Redis, verifying: Callable[[Verifier], Receiver]
) -> None:
    stream = api.stream()
    verifier = Verifier([], [Answer(500, b"boom", content_type="text/plain")])
    rx = verifying(verifier)
    sink = http_sink(api, stream, rx.url)
    verifier.secrets.append(secret_of(api, stream, sink["id"]))
    api.post(stream, [("e", '{"n": 1}')])
    run(redis_client, stream, sink["id"])
    disabled = api.get_sink(stream, sink["id"])
    assert disabled["status"] == "disabled" and "HTTP 500" in disabled["failureReason"]
    api.patch_sink(stream, sink["id"], status="enabled")
    run(redis_client, stream, sink["id"])
    first, again = verifier.verified
    assert first.headers["webhook-id"] == again.headers["webhook-id"]
    assert api.get_sink(stream, sink["id"])["status"] == "enabled"


def test_after_rotation_old_and_new_secrets_both_verify_until_the_grace_ends(
    api: Api, redis_client: redis.Redis, verifying: Callable[[Verifier], Receiver]
) -> None:
    stream = api.stream()
    verifier = Verifier([])
    rx = verifying(verifier)
    sink = http_sink(api, stream, rx.url)
    old = secret_of(api, stream, sink["id"])
    path = f"/stream/{stream}/sink/{sink['id']}/secret/rotate"
    new = api.call("POST", path, 200, json={})["key"]
    assert new != old and secret_of(api, stream, sink["id"]) == new
    verifier.secrets[:] = [old, new]  # each must verify the request on its own
    api.post(stream, [("e", '{"n": 1}')])
    run(redis_client, stream, sink["id"])
    assert verifier.refused == []
    assert len(verifier.verified[0].headers["svix-signature"].split(" ")) == 2
    # a rotation with no grace: the replaced secret stops signing at once
    given = "whsec_" + "QUJD" * 8
    assert api.call("POST", path, 200, json={"key": given, "gracePeriodSeconds": 0}) == {
        "key": given
    }
    verifier.secrets[:] = [given]
    api.post(stream, [("e", '{"n": 2}')])
    run(redis_client, stream, sink["id"])
    assert verifier.refused == []
    assert " " not in verifier.verified[1].headers["svix-signature"]
    with pytest.raises(WebhookVerificationError):
        Webhook(new).verify(verifier.verified[1].body, verifier.verified[1].headers)


def test_the_old_secret_drops_off_after_its_grace(
    api: Api, redis_client: redis.Redis, verifying: Callable[[Verifier], Receiver]
) -> None:
    stream = api.stream()
    verifier = Verifier([])
    rx = verifying(verifier)
    sink = http_sink(api, stream, rx.url)
    old = secret_of(api, stream, sink["id"])
    new = api.call("POST", f"/stream/{stream}/sink/{sink['id']}/secret/rotate", 200)["key"]
    redis_client.hset(sink_key(sink["id"]), "oldSecretUntil", "1")  # the grace is over
    verifier.secrets[:] = [new]
    api.post(stream, [("e", '{"n": 1}')])
    run(redis_client, stream, sink["id"])
    [req] = verifier.verified
    assert " " not in req.headers["svix-signature"]
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(req.body, req.headers)


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


def test_retry_after_is_honoured_and_the_retry_keeps_the_id(
    api: Api, redis_client: redis.Redis, verifying: Callable[[Verifier], Receiver]
) -> None:
    import time

    stream = api.stream()
    verifier = Verifier([], [Answer(429, b"slow down", headers={"Retry-After": "1"})])
    rx = verifying(verifier)
    sink = http_sink(api, stream, rx.url)
    verifier.secrets.append(secret_of(api, stream, sink["id"]))
    api.post(stream, [("e", '{"n": 1}')])
    before = time.time()
    run(redis_client, stream, sink["id"])
    waiting = api.get_sink(stream, sink["id"])
    assert waiting["status"] == "retrying" and "Retry-After: 1s" in waiting["failureReason"]
    assert len(verifier.verified) == 1
    time.sleep(max(0.0, before + 1.2 - time.time()))
    run(redis_client, stream, sink["id"])
    first, retry = verifier.verified
    assert first.headers["svix-id"] == retry.headers["svix-id"]
    assert api.get_sink(stream, sink["id"])["status"] == "enabled"


def test_a_worker_process_delivers_and_never_logs_the_secret(
    api: Api, verifying: Callable[[Verifier], Receiver], workers: Any
) -> None:
    """A real ``streamsink worker`` at DEBUG level: signed requests through a
    retry and a permanent failure; neither the secret nor a signature is logged."""
    from tests.security.test_secret_logging import _debug_worker

    from .conftest import wait_until

    key = "whsec_" + "bG9nLXNlY3JldC1ieXRlcy1mb3ItdGVzdGluZy0xMjM="
    verifier = Verifier([key], [503, 200, Answer(400, b"no")])
    rx = verifying(verifier)
    proc = _debug_worker(workers)
    stream = api.stream()
    sink = http_sink(api, stream, rx.url, config={"key": key})
    api.post(stream, [("e", '{"n": 1}')])
    wait_until(lambda: len(verifier.verified) >= 2, 20, "a retried delivery")
    api.post(stream, [("e", '{"n": 2}')])
    api.wait_status(stream, sink["id"], "disabled", timeout=20)
    assert verifier.refused == []
    signatures = [r.headers["svix-signature"][3:] for r in verifier.verified]
    proc.terminate()
    proc.wait(15)
    logs = workers.logs()
    assert "sink" in logs.lower()
    for secret in (key, key[6:], *signatures):
        assert secret not in logs
    assert key not in str(api.attempts(stream, sink["id"]))
