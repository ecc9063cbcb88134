"""The Stream Portal in headless Chromium against a real ``streamsink serve``:
who gets in (the key in the link, scoped tokens), and the page in a narrow window."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.browser.conftest import TOKEN, PageWatch, Server
from tests.browser.pages import (
    expect,
    new_stream,
    open_sink,
    portal_url,
    wait_for_status,
)
from tests.helpers.receiver_server import ReceiverServer

# the browser first: without one, skip before starting a server
pytestmark = pytest.mark.usefixtures("browser")


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


def test_the_policy_blocks_injected_inline_script_and_the_watch_reports_it(
    server: Server, browser: Any
) -> None:
    page = browser.new_page()
    try:
        watch = PageWatch(page)
        sid = new_stream(server, "csp")
        page.goto(f"{server.base}/portal/{sid}")
        page.get_by_role("alert").wait_for()
        page.evaluate(
            """() => { const s = document.createElement("script");
                       s.textContent = "window.injected = 1"; document.head.append(s); }"""
        )
        assert page.evaluate("window.injected") is None
        page.wait_for_timeout(200)  # the violation event is dispatched asynchronously
        assert any("script-src" in p for p in watch.problems), watch.problems
    finally:
        page.close()
