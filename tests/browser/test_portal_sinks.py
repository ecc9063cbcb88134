"""The portal's sink forms and controls in headless Chromium against a real
``streamsink serve``: settings with sensitive headers, enable / disable /
force-retry / skip, and the http and poller sink types."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from tests.browser.conftest import Server
from tests.browser.pages import (
    expect,
    new_stream,
    open_sink,
    portal_url,
    sink_card,
)
from tests.helpers.receiver_server import ReceiverServer

# the browser first: without one, skip before starting a server
pytestmark = pytest.mark.usefixtures("browser")


def test_edit_settings_keeps_sensitive_headers_hidden_and_controls_work(
    server: Server, page: Any, receiver: ReceiverServer
) -> None:
    sid = new_stream(server, "controls")
    server.call(
        "POST",
        f"/stream/{sid}/events",
        202,
        json={"events": [{"eventType": "order.paid", "payload": {"n": 1}}]},
    )
    body = {
        "type": "otelTracing",
        "uid": "ctl",
        "config": {
            "url": receiver.traces_url,
            "headers": {"Authorization": "Bearer very-secret-value", "X-Team": "payments"},
        },
    }
    sink = server.call("POST", f"/stream/{sid}/sink", 201, json=body)
    base = f"/stream/{sid}/sink/{sink['id']}"
    page.goto(portal_url(server, sid))
    open_sink(page, "ctl")

    page.get_by_role("button", name="Edit settings").click()
    names = page.locator(".header-row input[id^=hname]")
    values = page.locator(".header-row input[id^=hvalue]")
    expect(names).to_have_count(2)
    by_name = {names.nth(i).input_value(): values.nth(i) for i in range(2)}
    expect(by_name["X-Team"]).to_have_value("payments")
    expect(by_name["Authorization"]).to_have_value("")
    expect(by_name["Authorization"]).to_have_attribute("placeholder", re.compile("sensitive"))
    assert "very-secret-value" not in page.content()
    page.get_by_label("Batch size").fill("10")
    page.get_by_role("checkbox", name="order.paid").check()
    page.shots.take("edit-settings")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("button", name="Edit settings")).to_be_visible()
    stored = server.call("GET", base, 200)
    assert stored["batchSize"] == 10 and stored["eventTypes"] == ["order.paid"]
    headers = server.call("GET", f"{base}/headers", 200)
    assert headers["headers"]["X-Team"] == "payments"
    assert "Authorization" in headers["headers"]  # kept, though never shown

    card = sink_card(page, "ctl")
    page.get_by_role("button", name="Disable").click()
    expect(card.get_by_test_id("status-badge")).to_have_text("disabled")
    assert server.call("GET", base, 200)["status"] == "disabled"
    page.get_by_role("button", name="Enable").click()
    expect(card.get_by_test_id("status-badge")).to_have_text("enabled")
    page.get_by_role("button", name="Force retry").click()
    expect(page.get_by_text("Force retry: done.")).to_be_visible()

    # skip past an event: the one the attempt log names (a new sink starts at the end)
    event = {"eventType": "order.paid", "payload": {"n": 2}}
    server.call("POST", f"/stream/{sid}/events", 202, json={"events": [event]})
    success = page.locator('table.attempts tr[data-outcome="success"]').first
    expect(success).to_be_visible(timeout=30_000)
    event_id = server.call("GET", f"{base}/attempt", 200)["data"][0]["lastEventId"]
    expect(success).to_contain_text(event_id)
    page.get_by_label("Event id to skip past").fill(event_id)
    page.get_by_role("button", name="Skip past event").click()
    expect(page.get_by_text(f"delivery resumes after event {event_id}")).to_be_visible()
    assert server.call("GET", base, 200)["currentIterator"] == event_id

    # a bad edit shows the API's own message
    page.get_by_role("button", name="Edit settings").click()
    page.get_by_label("URL").fill("ftp://example.com/x")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#sink-form-error")).to_contain_text("http")
    page.shots.take("bad-edit")


def test_http_and_poller_sinks_from_the_form(
    server: Server, page: Any, receiver: ReceiverServer
) -> None:
    sid = new_stream(server, "kinds")
    page.goto(portal_url(server, sid))
    expect(page.get_by_test_id("stream-name")).to_have_text("kinds")

    # an http sink: signing secret shown and rotated, the preview is the request
    page.get_by_role("button", name="New sink").click()
    page.get_by_label("Type").select_option("http")
    page.get_by_label("UID").fill("hook")
    page.get_by_label("URL").fill(f"{receiver.url}/hook")
    page.get_by_role("button", name="Create sink").click()
    page.get_by_role("heading", name="Sink hook").wait_for()
    (sink,) = server.call("GET", f"/stream/{sid}/sink", 200)["data"]
    assert sink["type"] == "http" and sink["config"]["url"] == f"{receiver.url}/hook"
    base = f"/stream/{sid}/sink/{sink['id']}"
    key = server.call("GET", f"{base}/secret", 200)["key"]
    page.get_by_role("button", name="Show secret").click()
    expect(page.get_by_text(f"Signing secret: {key}")).to_be_visible()
    page.get_by_role("button", name="Rotate secret").click()
    expect(page.get_by_text("New signing secret: whsec_")).to_be_visible()
    new_key = server.call("GET", f"{base}/secret", 200)["key"]
    assert new_key != key and new_key in page.get_by_role("status").all_inner_texts()[0]
    options = page.get_by_label("Start from a bundled handler").locator("option")
    expect(options).to_have_text(["Start from…", "http-default.js"])
    page.get_by_label("pasted events").check()
    page.get_by_label("Events (JSON list").fill(
        '[{"eventType": "order.paid", "payload": {"n": 7}}]'
    )
    request = page.get_by_test_id("http-request")
    expect(request).to_contain_text(f"POST {receiver.url}/hook")
    expect(request).to_contain_text('"order.paid"')
    page.shots.take("http-sink")
    event = {"eventType": "order.paid", "payload": {"n": 8}}
    server.call("POST", f"/stream/{sid}/events", 202, json={"events": [event]})
    expect(page.locator('table.attempts tr[data-outcome="success"]').first).to_be_visible(
        timeout=30_000
    )
    assert receiver.wait_for(1, timeout=10)
    assert receiver.requests[0].headers.get("svix-signature", "").startswith("v1,")

    # a poller sink: no URL, its token on demand
    page.get_by_role("button", name="New sink").click()
    page.get_by_label("Type").select_option("poller")
    expect(page.get_by_label("URL")).to_have_count(0)
    page.get_by_label("UID").fill("pull")
    page.get_by_role("button", name="Create sink").click()
    page.get_by_role("heading", name="Sink pull").wait_for()
    page.get_by_role("button", name="Show poller token").click()
    expect(page.get_by_text(re.compile(r"Poller token .*: sk_poll_"))).to_be_visible()
    expect(sink_card(page, "pull").get_by_test_id("status-badge")).to_have_text("enabled")
    page.shots.take("poller-sink")


def test_attempt_log_and_recent_events_page_newest_first(
    server: Server, page: Any, receiver: ReceiverServer
) -> None:
    sid = new_stream(server, "paging")
    body = {
        "type": "otelTracing",
        "uid": "one-by-one",
        "batchSize": 1,
        "config": {"url": receiver.traces_url},
    }
    sink = server.call("POST", f"/stream/{sid}/sink", 201, json=body)
    events = [{"eventType": "tick", "payload": {"n": n}} for n in range(12)]
    server.call("POST", f"/stream/{sid}/events", 202, json={"events": events})
    attempts_url = f"/stream/{sid}/sink/{sink['id']}/attempt"
    deadline = time.monotonic() + 60
    while len(server.call("GET", attempts_url, 200, params={"limit": 50})["data"]) < 12:
        assert time.monotonic() < deadline, "12 attempts within 60 s"
        time.sleep(0.2)
    newest_first = server.call("GET", attempts_url, 200, params={"limit": 50})["data"]

    page.goto(portal_url(server, sid))
    open_sink(page, "one-by-one")
    log = page.get_by_role("region", name="Attempt log")
    rows = log.locator("tbody tr")
    expect(rows).to_have_count(10)
    expect(rows.first).to_contain_text(newest_first[0]["firstEventId"])
    log.get_by_role("button", name="Older").click()
    expect(rows).to_have_count(2)
    expect(rows.last).to_contain_text(newest_first[-1]["firstEventId"])
    expect(log.get_by_role("button", name="Older")).to_be_disabled()
    log.get_by_role("button", name="Newest").click()
    expect(rows).to_have_count(10)

    recent = page.get_by_role("region", name="Recent events")
    payloads = recent.locator("tbody tr code.payload")
    expect(payloads).to_have_count(10)
    expect(payloads.first).to_have_text('{"n":11}')
    recent.get_by_role("button", name="Older").click()
    expect(payloads).to_have_text(['{"n":1}', '{"n":0}'])
    page.shots.take("paged")
