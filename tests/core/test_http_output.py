"""Pure parts of http sinks: the handler result -> request rules
(``transform.http_output``) and the Standard Webhooks signature
(``sinkhttp.signing``), checked against the real ``svix`` library."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from svix.webhooks import Webhook

from streamsink.errors import OutputError
from streamsink.sinkhttp.netguard import DestinationPolicy
from streamsink.sinkhttp.signing import (
    check_secret,
    message_id,
    new_secret,
    signature,
    signature_headers,
)
from streamsink.transform.http_output import validate_http_output
from streamsink.transform.runtime import JsRuntime

URL = "https://hooks.example.com/in"


def spec(output: Any, **kw: Any) -> Any:
    return validate_http_output(output, sink_url=URL, **kw)


def test_signature_is_svix_webhook_sign() -> None:
    key = new_secret()
    body = '[{"eventType":"é","payload":{"a":1}}]'
    ts = 1764520000
    ours = signature(key, "msg_1", ts, body.encode())
    assert ours == Webhook(key).sign("msg_1", datetime.fromtimestamp(ts, tz=UTC), body)
    headers = signature_headers([key, new_secret()], "msg_1", int(datetime.now().timestamp()), b"x")
    Webhook(key).verify(b"x", headers)
    assert headers["svix-signature"].count("v1,") == 2


def test_check_secret() -> None:
    assert check_secret(new_secret()).startswith("whsec_")
    for bad in ("abc", "whsec_***", "whsec_QUJD", "whsec_" + "QUJD" * 30, "whsec_QUJD" * 9):
        with pytest.raises(ValueError):
            check_secret(bad)


def test_message_id_is_stable_and_distinct() -> None:
    assert message_id("sink_a", "1-0", "5-0") == message_id("sink_a", "1-0", "5-0")
    ids = {
        message_id("sink_a", "1-0", "5-0"),
        message_id("sink_a", "1-0", "6-0"),
        message_id("sink_b", "1-0", "5-0"),
        message_id("sink_a", "1-0", "5-0", range(0, 2)),
        message_id("sink_a", "1-0", "5-0", range(2, 4)),
    }
    assert len(ids) == 5


def test_defaults_and_merge() -> None:
    s = spec({"data": [1, 2]}, sink_headers={"X-A": "sink", "X-B": "b"})
    assert (s.format, s.method, s.url, s.content_type) == ("json", "POST", URL, "application/json")
    assert s.render() == b"[1,2]" and s.render(range(1, 2)) == b"[2]" and s.splittable
    s = spec({"config": {"headers": {"x-a": "handler"}}, "data": {}}, sink_headers={"X-A": "s"})
    assert s.headers == {"x-a": "handler"} and not s.splittable
    s = spec({"config": {"format": "raw", "headers": {"content-type": "text/csv"}}, "data": "a"})
    assert (s.content_type, s.render(), s.headers) == ("text/csv", b"a", {})
    s = spec({"config": {"format": "raw"}, "data": "é"})
    assert s.content_type == "text/plain; charset=utf-8" and s.render() == "é".encode()
    assert spec({"config": {"method": "put"}, "data": 1}).method == "PUT"
    assert spec({"data": None, "extra": 1}).warnings == ["unknown field 'extra' ignored"]


@pytest.mark.parametrize(
    ("output", "says"),
    [
        ([], "expected an object {config, data}, got array"),
        ({"config": 1, "data": 1}, "config: expected an object, got number"),
        ({"config": {}}, "data: required"),
        ({"config": {"format": "raw"}, "data": 5}, 'data: format "raw" sends a string'),
        ({"config": {"method": "GET"}, "data": 1}, "config.method: 'GET' is not supported"),
        ({"config": {"method": 1}, "data": 1}, "config.method: expected a string"),
        ({"config": {"url": "ftp://x"}, "data": 1}, "config.url: url 'ftp://x' must be"),
        ({"config": {"url": "http://[fe80::1]/"}, "data": 1}, "config.url: url not allowed"),
        ({"config": {"headers": {"Host": "x"}}, "data": 1}, "config.headers: header 'Host'"),
        ({"config": {"headers": {"X-A": 1}}, "data": 1}, "config.headers['X-A']: expected"),
        ({"config": {"headers": {"X-A": "a\nb"}}, "data": 1}, "must not contain CR"),
    ],
)
def test_errors_name_the_field(output: Any, says: str) -> None:
    with pytest.raises(OutputError) as caught:
        spec(output)
    assert says in str(caught.value)


def test_policy_applies_to_the_override_url() -> None:
    out = {"config": {"url": "http://10.1.2.3/x"}, "data": 1}
    assert spec(out).url == "http://10.1.2.3/x"
    with pytest.raises(OutputError, match="config.url: .*10.1.2.3"):
        spec(out, policy=DestinationPolicy(block_private=True))


def test_bundled_http_default_is_shipped_and_sends_the_events() -> None:
    from pathlib import Path

    from streamsink.transform.http_output import http_default_code, http_input_json

    root = Path(__file__).resolve().parents[2]
    assert (root / "transforms/http-default.js").read_text() == http_default_code()
    rt = JsRuntime(timeout_ms=1000, memory_mb=64, cache_size=1)
    try:
        events = [{"eventType": "a", "payload": '{"n":1}'}, {"eventType": "b", "payload": "x"}]
        output = rt.run_once(http_default_code(), http_input_json(events, URL))
    finally:
        rt.close()
    s = spec(output)
    assert s.format == "json" and s.data == [
        {"eventType": "a", "payload": {"n": 1}},
        {"eventType": "b", "payload": "x"},
    ]


def test_simulating_an_http_sink_loads_no_delivery_side_module() -> None:
    import json
    import subprocess
    import sys

    code = (
        "import json, sys, streamsink.api.app\n"
        "from streamsink.transform.simulate import simulate_http\n"
        "simulate_http(None, [{'eventType': 'a', 'payload': '{}'}], '')\n"
        "mods = ('streamsink.delivery.kinds', 'streamsink.sinkhttp.client', 'httpx')\n"
        "print(json.dumps([m for m in mods if m in sys.modules]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
