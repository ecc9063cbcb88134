"""``http`` sinks delivered by the real engine (in this process, and by a real
worker process) to real HTTP servers on 127.0.0.1 that verify every request
with the real ``svix`` library: signatures, batch ids kept across retries and
``Retry-After``, secret rotation and its grace. Formats, overrides, 413 splits
and the destination policy: ``test_http_sink_formats.py``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis
from svix.webhooks import Webhook, WebhookVerificationError

from streamsink.storage.base import sink_key
from tests.helpers.receiver_server import Answer

from .conftest import Api, Receiver
from .http_sink_util import Verifier, events, http_sink, run, secret_of


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
