"""The Stream Portal in headless Chromium against a real ``streamsink serve``:
the journeys of the portal issue, each step asserted on what the page shows."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.browser.conftest import ARTIFACTS, ROOT, TOKEN, Server
from tests.helpers.receiver_server import ReceiverServer

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips (fails under CI) saying why
    expect = None

# the browser first: without one, skip before starting a server
pytestmark = pytest.mark.usefixtures("browser")


def portal_url(server: Server, stream_id: str) -> str:
    """The portal link for a stream: from ``stream-portal-access`` when the
    server has it, else the page with the admin token in its fragment."""
    r = server.api.post(f"/auth/stream-portal-access/{stream_id}", json={})
    if r.status_code in (200, 201):
        return str(r.json()["url"])
    return f"{server.base}/portal/{stream_id}#key={TOKEN}"


def new_stream(server: Server, uid: str) -> str:
    return str(server.call("POST", "/stream", 201, json={"name": uid, "uid": uid})["id"])


def test_without_a_key_the_portal_shows_the_sign_in_notice_and_no_data(
    server: Server, page: Any
) -> None:
    sid = new_stream(server, "no-key")
    page.goto(f"{server.base}/portal/{sid}")
    alert = page.get_by_role("alert")
    assert "no access key" in alert.inner_text()
    assert page.get_by_role("heading", name="Sinks").count() == 0
    page.shots.take("no-key")


def test_the_key_leaves_the_address_bar_and_a_bad_key_gets_the_notice(
    server: Server, page: Any
) -> None:
    sid = new_stream(server, "bad-key")
    page.goto(f"{server.base}/portal/{sid}#key=not-a-token")
    page.get_by_role("alert").wait_for()
    assert "expired or was ended" in page.get_by_role("alert").inner_text()
    assert "#key" not in page.url
    page.goto(f"{server.base}/portal/{sid}#key={TOKEN}")
    expect(page.get_by_test_id("stream-name")).to_have_text("bad-key")
    assert "key=" not in page.url
    page.reload()  # the key stays for this tab (sessionStorage)
    expect(page.get_by_test_id("stream-name")).to_have_text("bad-key")
    expect(page.get_by_role("heading", name="Sinks")).to_be_visible()


# --- the journeys ------------------------------------------------------------------

SVIX_JS = (ROOT / "transforms" / "svix-webhook-attempts.js").read_text()
SVIX_EVENTS = json.loads(
    (ROOT / "transforms" / "samples" / "svix-webhook-attempts.events.json").read_text()
)
#: The Svix example with its classic mistake: no comma after `name: ...`; V8
#: stops at the next line's `kind`.
BROKEN_JS = SVIX_JS.replace("name: event.eventType,", "name: event.eventType", 1)
BROKEN_LINE = BROKEN_JS.splitlines().index('            kind: isHttp ? "CLIENT" : "INTERNAL",') + 1


@pytest.fixture
def receiver() -> Iterator[ReceiverServer]:
    started = [ReceiverServer().start()]
    yield started[0]
    for r in started:
        r.stop()


def set_editor_code(page: Any, code: str) -> None:
    """Replace the editor's text as a paste would (no auto-closed brackets)."""
    content = page.locator(".transform .cm-content")
    content.click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(code)


def wait_for_status(page: Any, state: str) -> Any:
    status = page.locator("#compile-status")
    expect(status).to_have_attribute("data-state", state, timeout=20_000)
    return status


def open_sink(page: Any, uid: str) -> None:
    page.get_by_role("button", name=f"Open sink {uid}").click()
    page.get_by_role("heading", name=f"Sink {uid}").wait_for()


def sink_card(page: Any, uid: str) -> Any:
    return page.locator(".sink-card").filter(
        has=page.get_by_role("button", name=f"Open sink {uid}")
    )


def test_journey_create_sink_write_handler_preview_save_deliver(
    server: Server, page: Any, receiver: ReceiverServer
) -> None:
    sid = new_stream(server, "journey-one")
    page.goto(portal_url(server, sid))
    expect(page.get_by_test_id("stream-name")).to_have_text("journey-one")

    # create an otelTracing sink to the receiver
    page.get_by_role("button", name="New sink").click()
    expect(page.get_by_label("Type")).to_have_value("otelTracing")
    page.get_by_label("UID").fill("traces")
    page.get_by_label("URL").fill(receiver.traces_url)
    page.get_by_role("button", name="Create sink").click()
    page.get_by_role("heading", name="Sink traces").wait_for()
    expect(sink_card(page, "traces").get_by_test_id("status-badge")).to_have_text("enabled")
    (sink,) = server.call("GET", f"/stream/{sid}/sink", 200)["data"]
    assert sink["config"]["url"] == receiver.traces_url and sink["type"] == "otelTracing"
    page.shots.take("sink-created")

    # start from the bundled Svix example, then type a handler with a syntax error:
    # marked at its line, no save
    page.locator(".transform .cm-content").wait_for()
    page.get_by_label("Start from a bundled handler").select_option("svix-webhook-attempts.js")
    expect(page.locator(".transform .cm-content")).to_contain_text("message.attempt")
    expect(page.get_by_label("the handler's sample events (4)")).to_be_checked()
    set_editor_code(page, BROKEN_JS)
    status = wait_for_status(page, "compile")
    expect(status).to_contain_text(f"Does not compile at line {BROKEN_LINE}")
    expect(status).to_contain_text("SyntaxError")
    marked_line = page.locator(".transform .cm-content .cm-line").nth(BROKEN_LINE - 1)
    expect(marked_line.locator(".cm-lintRange-error")).to_have_count(1)
    expect(marked_line).to_contain_text("kind")
    expect(page.locator(".transform .cm-lint-marker-error")).to_have_count(1)
    expect(page.get_by_role("button", name="Save transformation")).to_be_disabled()
    page.shots.take("syntax-error")

    # fixed: the preview runs on the handler's sample events (the stream has none)
    set_editor_code(page, SVIX_JS)
    wait_for_status(page, "compile")  # the marker goes once the check answers
    status = wait_for_status(page, "ok")
    expect(page.locator(".transform .cm-lintRange-error")).to_have_count(0)
    traces = page.locator(".wf-trace")
    expect(traces).to_have_count(2)
    for i in range(2):
        trace = traces.nth(i)
        parent = trace.locator('li[data-depth="1"][data-span-name="message.attempt"]')
        expect(parent).to_have_count(1)
        child = parent.locator('li[data-depth="2"][data-span-name="http.attempt"]')
        expect(child).to_have_count(1)
        expect(child).to_have_attribute("data-kind", "CLIENT")
    expect(page.get_by_test_id("raw-otlp")).to_contain_text('"resourceSpans"')
    expect(page.get_by_test_id("raw-otlp")).to_contain_text("my.webhook.service")
    # a span's attributes, opened from the keyboard
    row = traces.nth(0).locator('li[data-span-name="http.attempt"] > button.wf-row')
    row.focus()
    page.keyboard.press("Enter")
    expect(row).to_have_attribute("aria-expanded", "true")
    details = traces.nth(0).locator('li[data-span-name="http.attempt"] .wf-attrs')
    expect(details).to_contain_text("attemptId")
    expect(details).to_contain_text("http.request.method")
    page.locator(".transform .cm-scroller").evaluate("e => { e.scrollTop = 0; }")
    page.locator(".transform").screenshot(path=str(ARTIFACTS / "portal-editor.png"))
    page.shots.take("preview")

    # save: only now is it stored
    assert server.call("GET", f"/stream/{sid}/sink/{sink['id']}/transformation", 200)["code"] in (
        None,
        "",
    )
    page.get_by_role("button", name="Save transformation").click()
    expect(page.get_by_text("Transformation saved.")).to_be_visible()
    stored = server.call("GET", f"/stream/{sid}/sink/{sink['id']}/transformation", 200)
    assert stored["code"] == SVIX_JS

    # post the events: the attempt log shows the success, the sink is enabled
    server.call("POST", f"/stream/{sid}/events", 202, json={"events": SVIX_EVENTS})
    success = page.locator('table.attempts tr[data-outcome="success"]')
    expect(success.first).to_be_visible(timeout=30_000)
    expect(success.first).to_contain_text("4 / 0")  # spans sent / rejected
    expect(sink_card(page, "traces").get_by_test_id("status-badge")).to_have_text("enabled")
    expect(sink_card(page, "traces").locator(".throughput")).to_contain_text(
        "4 events, 4 spans sent", timeout=10_000
    )
    expect(page.locator("table.events tbody tr")).to_have_count(4, timeout=10_000)
    names = sorted(s["name"] for s in receiver.spans())
    assert names == ["http.attempt"] * 2 + ["message.attempt"] * 2
    page.shots.take("delivered")


def test_journey_receiver_down_then_back_recovers_without_a_click(
    server: Server, page: Any
) -> None:
    receiver = ReceiverServer().start()
    port = receiver.port
    sid = new_stream(server, "journey-two")
    body = {"type": "otelTracing", "uid": "flaky", "config": {"url": receiver.traces_url}}
    sink = server.call("POST", f"/stream/{sid}/sink", 201, json=body)
    base = f"/stream/{sid}/sink/{sink['id']}"
    server.call("PATCH", f"{base}/transformation", 200, json={"code": SVIX_JS})
    page.goto(portal_url(server, sid))
    open_sink(page, "flaky")
    card = sink_card(page, "flaky")
    expect(card.get_by_test_id("status-badge")).to_have_text("enabled")

    receiver.stop()
    back: ReceiverServer | None = None
    try:
        server.call("POST", f"/stream/{sid}/events", 202, json={"events": SVIX_EVENTS})
        expect(card.get_by_test_id("status-badge")).to_have_text("retrying", timeout=30_000)
        expect(card.locator(".failure-reason")).not_to_be_empty()
        expect(card.locator(".next-retry")).to_be_visible()
        reason = card.locator(".failure-reason").inner_text()
        assert "connect" in reason.lower() or "refused" in reason.lower(), reason
        retrying = page.locator('table.attempts tr[data-outcome="retrying"]').first
        expect(retrying).to_be_visible(timeout=15_000)
        expect(retrying.get_by_role("button", name=re.compile("Skip past event"))).to_be_visible()
        page.shots.take("retrying")

        back = ReceiverServer(port=port).start()  # same address: no edit, no click
        expect(card.get_by_test_id("status-badge")).to_have_text("enabled", timeout=45_000)
        expect(card.locator(".failure-reason")).to_have_count(0)
        expect(card.locator(".next-retry")).to_have_count(0)
        expect(page.locator('table.attempts tr[data-outcome="success"]').first).to_be_visible(
            timeout=15_000
        )
        assert back.wait_for(1, timeout=10)
        assert (
            sorted(s["name"] for s in back.spans())
            == ["http.attempt"] * 2 + ["message.attempt"] * 2
        )
        page.shots.take("recovered")
    finally:
        if back is not None:
            back.stop()


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


def test_narrow_window_has_no_sideways_scroll(
    server: Server, page: Any, receiver: ReceiverServer
) -> None:
    sid = new_stream(server, "narrow")
    body = {"type": "otelTracing", "uid": "n", "config": {"url": receiver.traces_url}}
    server.call("POST", f"/stream/{sid}/sink", 201, json=body)
    page.set_viewport_size({"width": 380, "height": 800})
    page.goto(portal_url(server, sid))
    expect(page.get_by_role("button", name="Open sink n")).to_be_visible()
    # keyboard: the first Tab lands on the skip link, then the sinks' controls
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent").strip() == "New sink"
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # "Open sink n", from the keyboard
    page.get_by_role("heading", name="Sink n").wait_for()
    expect(page.locator(".wf-trace").first).to_be_visible(timeout=20_000)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than a 380px window"
    page.shots.take("narrow", full_page=True)


def test_journey_a_portal_token_sees_its_stream_only(server: Server, page: Any) -> None:
    a, b = new_stream(server, "scope-a"), new_stream(server, "scope-b")
    r = server.api.post(f"/auth/stream-portal-access/{a}", json={})
    if r.status_code == 404:
        pytest.skip("this build has no POST /auth/stream-portal-access (scoped tokens)")
    assert r.status_code in (200, 201), r.text
    url, token = r.json()["url"], r.json()["token"]
    assert url.endswith(f"/portal/{a}#key={token}")
    as_portal = {"Authorization": f"Bearer {token}"}
    api = f"{server.base}/api/v1"
    for path in (f"/stream/{b}", f"/stream/{b}/sink", f"/stream/{b}/events/latest", "/stream"):
        denied = httpx.get(api + path, headers=as_portal, timeout=10)
        assert denied.status_code == 403, (path, denied.text)
        assert set(denied.json()) >= {"code", "detail"}

    # stream B's page with A's key: a notice, none of B's data
    page.goto(f"{server.base}/portal/{b}#key={token}")
    expect(page.get_by_role("alert")).to_contain_text("does not reach this stream")
    expect(page.get_by_role("heading", name="Sinks")).to_have_count(0)
    assert "scope-b" not in page.content()
    page.shots.take("other-stream")

    # its own stream works, with every panel (templates too)
    page.goto("about:blank")  # a fresh load, not a same-page fragment change
    page.goto(url)
    expect(page.get_by_test_id("stream-name")).to_have_text("scope-a")
    body = {"type": "otelTracing", "uid": "mine", "config": {"url": "http://127.0.0.1:9/v1/traces"}}
    server.call("POST", f"/stream/{a}/sink", 201, json=body)
    open_sink(page, "mine")
    template = page.get_by_label("Start from a bundled handler")
    listed = server.call("GET", f"/stream/{a}/transformation-templates", 200)["data"]
    otel = [t["name"] for t in listed if t["sinkType"] == "otelTracing"]
    expect(template.locator("option")).to_have_text(["Start from…", *otel])
    wait_for_status(page, "ok")

    # logged out: the next poll shows the sign-in notice, not data
    out = httpx.post(f"{api}/auth/stream-logout", headers=as_portal, timeout=10)
    assert out.status_code == 204, out.text
    expect(page.get_by_role("alert")).to_contain_text("expired or was ended", timeout=10_000)
    expect(page.get_by_role("heading", name="Sinks")).to_have_count(0)

    # an expired token: the notice at once
    short = server.api.post(f"/auth/stream-portal-access/{a}", json={"expiry": 1})
    assert short.status_code in (200, 201), short.text
    time.sleep(1.5)
    page.goto("about:blank")
    page.goto(short.json()["url"])
    expect(page.get_by_role("alert")).to_contain_text("expired or was ended")
    assert "scope-a" not in page.get_by_role("main").inner_text()
    page.shots.take("expired")


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
