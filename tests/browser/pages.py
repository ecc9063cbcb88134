"""Helpers of the portal's browser tests: the portal link, the page's parts."""

from __future__ import annotations

import json
from typing import Any

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips (fails under CI) saying why
    expect = None

from tests.browser.conftest import ROOT, TOKEN, Server

SVIX_JS = (ROOT / "transforms" / "svix-webhook-attempts.js").read_text()
SVIX_EVENTS = json.loads(
    (ROOT / "transforms" / "samples" / "svix-webhook-attempts.events.json").read_text()
)
#: The Svix example with its classic mistake: no comma after `name: ...`; V8
#: stops at the next line's `kind`.
BROKEN_JS = SVIX_JS.replace("name: event.eventType,", "name: event.eventType", 1)
BROKEN_LINE = BROKEN_JS.splitlines().index('            kind: isHttp ? "CLIENT" : "INTERNAL",') + 1


def portal_url(server: Server, stream_id: str) -> str:
    """The portal link for a stream from ``stream-portal-access`` (a portal
    token); on a build without scoped tokens, the page with the admin token."""
    r = server.api.post(f"/auth/stream-portal-access/{stream_id}", json={})
    if r.status_code == 404 and r.json().get("detail") == "Not Found":  # no such route
        return f"{server.base}/portal/{stream_id}#key={TOKEN}"
    assert r.status_code in (200, 201), r.text
    return str(r.json()["url"])


def new_stream(server: Server, uid: str) -> str:
    return str(server.call("POST", "/stream", 201, json={"name": uid, "uid": uid})["id"])


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
