"""The portal with a read-only portal token (``readOnly`` in
stream-portal-access) shows no control that writes, and says why; with a
normal token of the same stream every one of them is there. Headless Chromium
against a real ``streamsink serve``: an otelTracing sink failing on a closed
port (its attempt log offers "Skip past"), an http sink and a poller sink."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.conftest import Server, free_port
from tests.browser.pages import expect, new_stream, open_sink

pytestmark = pytest.mark.usefixtures("browser")

#: Every button of the portal that writes (by its accessible name).
WRITES = re.compile(
    r"^(New sink|Disable|Enable|Force retry|Rotate secret|Show poller token|Skip past.*"
    r"|Edit settings|Delete|Save transformation)$"
)


@pytest.fixture(scope="module")
def stream(server: Server) -> str:
    sid = new_stream(server, "read-only")
    closed = f"http://127.0.0.1:{free_port()}"
    for body in (
        {"type": "otelTracing", "uid": "otel", "config": {"url": f"{closed}/v1/traces"}},
        {"type": "http", "uid": "hook", "config": {"url": f"{closed}/hook"}},
        {"type": "poller", "uid": "pull", "config": {}},
    ):
        server.call("POST", f"/stream/{sid}/sink", 201, json=body)
    event = {"eventType": "order.paid", "payload": {"n": 1}}
    server.call("POST", f"/stream/{sid}/events", 202, json={"events": [event]})
    return sid


def portal(server: Server, stream_id: str, **body: Any) -> str:
    r = server.api.post(f"/auth/stream-portal-access/{stream_id}", json=body)
    assert r.status_code == 200, r.text
    return str(r.json()["url"])


def open_failing_otel_sink(page: Any) -> None:
    """Open sink ``otel`` once its attempt log shows the failed delivery."""
    open_sink(page, "otel")
    expect(page.locator("table.attempts tr[data-outcome='retrying']").first).to_be_visible(
        timeout=30_000
    )
    expect(page.locator(".transform .cm-content")).to_be_visible()


def test_a_read_only_token_sees_no_write_control(server: Server, stream: str, page: Any) -> None:
    page.goto(portal(server, stream, readOnly=True))
    note = page.get_by_test_id("read-only-note")
    expect(note).to_be_visible()
    expect(note).to_contain_text("read-only")
    buttons = page.get_by_role("button", name=WRITES)
    expect(buttons).to_have_count(0)

    open_failing_otel_sink(page)
    expect(page.get_by_test_id("transform-read-only")).to_be_visible()
    expect(buttons).to_have_count(0)
    page.shots.take("otel")
    open_sink(page, "hook")
    expect(page.get_by_role("button", name="Show secret")).to_be_visible()  # a read
    expect(buttons).to_have_count(0)
    open_sink(page, "pull")
    expect(page.get_by_role("heading", name="Attempt log")).to_be_visible()
    expect(buttons).to_have_count(0)
    assert page.locator(".skip-form, .sink-form").count() == 0
    page.shots.take("poller")


def test_a_normal_token_sees_every_write_control(server: Server, stream: str, page: Any) -> None:
    page.goto(portal(server, stream))
    expect(page.get_by_role("button", name="New sink")).to_be_visible()
    open_failing_otel_sink(page)
    for name in (
        "Disable",
        "Force retry",
        "Skip past event",
        "Edit settings",
        "Delete",
        "Save transformation",
    ):
        expect(page.get_by_role("button", name=name, exact=True)).to_be_visible()
    expect(
        page.get_by_role("button", name=re.compile(r"^Skip past event \S")).first
    ).to_be_visible()
    open_sink(page, "hook")
    expect(page.get_by_role("button", name="Rotate secret")).to_be_visible()
    open_sink(page, "pull")
    expect(page.get_by_role("button", name="Show poller token")).to_be_visible()
    assert page.get_by_test_id("read-only-note").count() == 0
