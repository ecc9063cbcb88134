"""The portal issue's journeys in headless Chromium against a real
``streamsink serve``, each step asserted on what the page shows: create a sink,
write a handler (syntax error marked, preview as traces), save, deliver; a
receiver that goes away and comes back."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.conftest import ARTIFACTS, Server
from tests.browser.pages import (
    BROKEN_JS,
    BROKEN_LINE,
    SVIX_EVENTS,
    SVIX_JS,
    expect,
    new_stream,
    open_sink,
    portal_url,
    set_editor_code,
    sink_card,
    wait_for_status,
)
from tests.helpers.receiver_server import ReceiverServer

# the browser first: without one, skip before starting a server
pytestmark = pytest.mark.usefixtures("browser")


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
