"""The Stream Portal in headless Chromium against a real ``streamsink serve``:
the journeys of the portal issue, each step asserted on what the page shows."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import TOKEN, Server


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
    page.get_by_test_id("stream-name").wait_for()
    assert page.get_by_test_id("stream-name").inner_text() == "bad-key"
    assert "key=" not in page.url
    page.reload()  # the key stays for this tab (sessionStorage)
    page.get_by_test_id("stream-name").wait_for()
