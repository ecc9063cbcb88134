"""The operator console (/console) in headless Chromium against a real
``streamsink serve`` of its own (so the platform holds only what these tests
made): sinks failing first with their reason, the last hour's charts, workers
alive, and the local receiver's traces as waterfalls.

``STREAMSINK_UPDATE_SCREENSHOTS=1`` also writes docs/img/console.png.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import ROOT, TOKEN, Server, free_port, wait_until

SAMPLES = ROOT / "transforms" / "samples" / "svix-webhook-attempts.events.json"
HANDLER = ROOT / "transforms" / "svix-webhook-attempts.js"
SCREENSHOT = ROOT / "docs" / "img" / "console.png"
TABLE_ROWS = "[data-testid=streams-table] tbody tr"


@pytest.fixture(scope="module")
def console_server() -> Iterator[Server]:
    with tempfile.TemporaryDirectory(prefix="streamsink-console-") as tmp:
        srv = Server(Path(tmp)).start()
        try:
            yield srv
        finally:
            srv.stop()


@pytest.fixture(scope="module")
def platform(console_server: Server) -> dict[str, Any]:
    """Stream ``webhooks`` with a sink to the server's own OTLP receiver and one
    to a closed port on 127.0.0.1, the Svix webhook example events posted, the
    traces received and the broken sink retrying; stream ``idle`` has no sink."""
    srv = console_server
    code = HANDLER.read_text()
    stream = srv.call("POST", "/stream", 201, json={"name": "webhooks", "uid": "webhooks"})
    sid = stream["id"]

    def sink(uid: str, url: str) -> dict[str, Any]:
        body = {"type": "otelTracing", "uid": uid, "config": {"url": url}}
        created = srv.call("POST", f"/stream/{sid}/sink", 201, json=body)
        path = f"/stream/{sid}/sink/{created['id']}/transformation"
        srv.call("PATCH", path, 200, json={"code": code, "enabled": True})
        return created

    local = sink("local-receiver", f"{srv.base}/v1/traces")
    closed = sink("closed-port", f"http://127.0.0.1:{free_port()}/v1/traces")
    srv.call("POST", "/stream", 201, json={"name": "idle", "uid": "idle"})
    events = json.loads(SAMPLES.read_text())
    srv.call("POST", f"/stream/{sid}/events", 202, json={"events": events})

    def traces() -> Any:
        data = srv.call("GET", "/local/traces", 200)["data"]
        return data if sum(t["spanCount"] for t in data) >= len(events) else None

    wait_until(traces, 30, "the local receiver to get the Svix example's spans")
    broken = wait_until(
        lambda: (
            (s := srv.call("GET", f"/stream/{sid}/sink/{closed['id']}", 200))["failureReason"] and s
        ),
        30,
        "the closed-port sink to fail",
    )
    return {"stream": sid, "local": local, "closed": broken, "events": len(events)}


def _total(page: Any, chart: str) -> int:
    return int(page.get_by_test_id(f"chart-{chart}").get_attribute("data-total") or 0)


def test_console_lists_failing_sinks_first_with_charts_workers_and_traces(
    console_server: Server, platform: dict[str, Any], page: Any
) -> None:
    srv, closed = console_server, platform["closed"]
    page.goto(f"{srv.base}/console#key={TOKEN}")
    page.get_by_test_id("streams-table").wait_for()
    assert "key=" not in page.url  # the token left the address bar

    # the streams and sinks table: the failing sink first, with its badge and reason
    rows = page.locator(TABLE_ROWS)
    first = rows.nth(0)
    assert first.get_attribute("data-sink-id") == closed["id"]
    assert first.get_by_test_id("status-badge").inner_text() in ("retrying", "disabled")
    reason = first.locator(".failure-reason").inner_text()
    assert re.search(r"connection error.*refused", reason, re.I | re.S), reason
    assert first.locator(".next-retry time").count() == 1
    assert first.locator(".lag").inner_text().startswith(f"{platform['events']} events")
    local_row = page.locator(f"{TABLE_ROWS}[data-sink-id='{platform['local']['id']}']")
    assert local_row.get_by_test_id("status-badge").inner_text() == "enabled"
    assert local_row.locator(".lag").inner_text() == "up to date"
    assert "success" in local_row.locator(".last-attempt").inner_text()
    idle = page.locator(TABLE_ROWS).filter(has_text="idle")
    assert "no sinks" in idle.inner_text()
    failing = page.get_by_test_id("failing-sinks")
    assert failing.locator("tbody tr").first.get_attribute("data-sink-id") == closed["id"]
    assert page.get_by_test_id("stat-failing").inner_text() == "1"

    # charts of the last hour (inline SVG): the events in and spans out show
    assert _total(page, "eventsIn") == platform["events"]
    wait_until(lambda: _total(page, "spansOut") >= platform["events"], 20, "spans out chart")
    assert page.get_by_test_id("chart-eventsIn").locator("svg rect").count() >= 1
    label = page.get_by_test_id("chart-eventsIn").locator("svg").get_attribute("aria-label")
    assert f"Events in: {platform['events']} events" in (label or "")
    wait_until(lambda: _total(page, "failures") >= 1, 20, "failures chart")

    # workers alive and the delivery queues
    assert int(page.get_by_test_id("workers-alive").get_attribute("data-alive") or 0) >= 1
    assert page.get_by_test_id("queue-deliver").is_visible()

    # the local receiver's traces: two waterfalls, http.attempt under message.attempt
    traces = page.get_by_test_id("traces")
    traces.locator(".wf-trace").nth(1).wait_for()
    assert traces.locator(".wf-trace").count() == 2
    nested = traces.locator(
        ".wf-span[data-span-name='message.attempt'] > .wf-children"
        " > .wf-span[data-span-name='http.attempt']"
    )
    assert nested.count() == 2
    assert nested.first.get_attribute("data-depth") == "2"
    row = nested.first.locator("> button.wf-row").bounding_box()
    track = nested.first.locator("> button.wf-row .wf-track").bounding_box()
    assert row and track and track["width"] > row["width"] / 4  # the timing bar's column
    page.shots.take("console", full_page=True)

    # keyboard: open a span's attributes with Enter; a refresh keeps it open
    button = nested.first.locator("> button.wf-row")
    button.focus()
    page.keyboard.press("Enter")
    assert button.get_attribute("aria-expanded") == "true"
    assert "atmpt_" in nested.first.locator(".wf-attrs").inner_text()
    if os.environ.get("STREAMSINK_UPDATE_SCREENSHOTS"):
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
    before = page.get_by_test_id("updated").inner_text()
    page.get_by_role("button", name="Refresh now").click()
    wait_until(lambda: page.get_by_test_id("updated").inner_text() != before, 15, "a refresh")
    assert button.get_attribute("aria-expanded") == "true"


def test_console_in_a_narrow_window(
    console_server: Server, platform: dict[str, Any], page: Any
) -> None:
    page.set_viewport_size({"width": 400, "height": 900})
    page.goto(f"{console_server.base}/console#key={TOKEN}")
    page.get_by_test_id("streams-table").wait_for()
    first = page.locator(TABLE_ROWS).nth(0)
    assert first.get_attribute("data-sink-id") == platform["closed"]["id"]
    assert first.locator(".failure-reason").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    page.keyboard.press("Tab")  # the first stop is the skip link
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.shots.take("narrow", full_page=True)


def test_a_wrong_token_gets_a_clear_error_and_no_data(
    console_server: Server, platform: dict[str, Any], page: Any
) -> None:
    base = console_server.base
    page.goto(f"{base}/console#key=not-the-token")
    alert = page.get_by_test_id("login-error")
    alert.wait_for()
    assert "refused this token" in alert.inner_text()
    assert "invalid bearer token" in alert.inner_text()
    assert page.get_by_test_id("streams-table").count() == 0
    assert "key=" not in page.url
    page.shots.take("wrong-token")

    page.get_by_label("Admin token").fill(TOKEN)  # paste the right one
    page.get_by_role("button", name="Open the console").click()
    page.get_by_test_id("streams-table").wait_for()
    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("Admin token").wait_for()
    assert page.get_by_test_id("streams-table").count() == 0
    assert page.evaluate("sessionStorage.getItem('streamsink.console.token')") is None


def test_the_serve_banner_prints_the_console_url(console_server: Server) -> None:
    assert f"{console_server.base}/console" in console_server.log_path.read_text()


def test_console_shows_span_times_exact_to_the_nanosecond(server: Server, page: Any) -> None:
    """1755617092291000001 ns is not a double (JSON.parse reads it as
    ...000064): the API gives it as a string and the waterfall keeps every digit."""
    trace_id = "5e1f0c3a9b7d4e2f8a6b4c2d0e1f3a5b"
    start = 1_755_617_092_291_000_001
    assert float(start) != start

    def span(name: str, sid: str, parent: str, begin: int, end: int) -> dict[str, Any]:
        return {
            "traceId": trace_id,
            "spanId": sid,
            "parentSpanId": parent,
            "name": name,
            "kind": 1,
            "startTimeUnixNano": str(begin),
            "endTimeUnixNano": str(end),
        }

    body = {
        "resourceSpans": [
            {
                "resource": {"attributes": []},
                "scopeSpans": [
                    {
                        "scope": {"name": "ns-test"},
                        "spans": [
                            span("precise-root", "00000000000000a1", "", start, start + 2),
                            span(
                                "precise-child",
                                "00000000000000a2",
                                "00000000000000a1",
                                start + 1,
                                start + 2,
                            ),
                        ],
                    }
                ],
            }
        ]
    }
    r = server.api.post(f"{server.base}/v1/traces", json=body)
    assert r.status_code == 200, r.text

    page.goto(f"{server.base}/console#key={TOKEN}")
    trace = page.locator(f".wf-trace[data-trace-id='{trace_id}']")
    trace.wait_for()
    cells: dict[str, dict[str, str]] = {}
    for name in ("precise-root", "precise-child"):
        item = trace.locator(f".wf-span[data-span-name='{name}']")
        item.locator("> button.wf-row").click()
        table = item.locator("> .wf-detail .wf-attrs")
        cells[name] = {
            key: table.locator("tr", has=page.locator(f"th:text-is('{key}')"))
            .locator("td")
            .inner_text()
            for key in ("start (unix ns)", "end (unix ns)", "duration")
        }
    page.shots.take("ns-times")
    assert cells["precise-root"] == {
        "start (unix ns)": "1755617092291000001",
        "end (unix ns)": "1755617092291000003",
        "duration": "2 ns",
    }
    assert cells["precise-child"] == {
        "start (unix ns)": "1755617092291000002",
        "end (unix ns)": "1755617092291000003",
        "duration": "1 ns",
    }
    child = trace.locator(".wf-span[data-span-name='precise-child']")
    assert child.get_attribute("data-depth") == "2"
    assert child.locator("> button.wf-row .wf-dur").inner_text() == "1 ns"
