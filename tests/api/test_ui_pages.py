"""The portal and console pages and their assets: served from the package with
a strict Content-Security-Policy; the bundled handlers as an API route; compile
errors answer with their line and column."""

from __future__ import annotations

import base64
import glob
import hashlib
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from streamsink.api.app import create_app
from streamsink.api.routes.ui import UI_DIR, VENDOR_DIR
from streamsink.settings import Settings

from .util import AUTH, TOKEN

ROOT = Path(__file__).resolve().parents[2]


def csp_of(response: Any) -> dict[str, str]:
    policy = response.headers["content-security-policy"]
    return {d.split(" ", 1)[0]: d.split(" ", 1)[1] for d in policy.split("; ")}


def test_portal_page_has_a_strict_policy_and_its_import_map_hash(client: TestClient) -> None:
    r = client.get("/portal/strm_anything", headers={"Authorization": ""})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    policy = csp_of(r)
    assert policy["default-src"] == "'self'"
    assert "unsafe-inline" not in r.headers["content-security-policy"]
    assert "unsafe-eval" not in r.headers["content-security-policy"]
    assert policy["frame-ancestors"] == "'self'"
    assert policy["object-src"] == "'none'"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-store"
    # the only inline script is the import map, allowed by its exact hash
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", r.text, re.S)
    inline = [body for attrs, body in scripts if "src=" not in attrs]
    assert len(inline) == 1
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    assert policy["script-src"] == f"'self' 'sha256-{digest}'"
    assert "http" not in r.text.replace("http-equiv", "")  # no other origin named
    # the editor's <style> elements: a nonce, new for each answer, given to the page
    nonce = re.search(r'<meta name="csp-style-nonce" content="([\w-]+)">', r.text)
    assert nonce and policy["style-src"] == f"'self' 'nonce-{nonce.group(1)}'"
    again = client.get("/portal/strm_anything")
    assert csp_of(again)["style-src"] != policy["style-src"]


def test_frame_ancestors_follow_the_setting(redis_client: Any) -> None:
    settings = Settings(auth_token=TOKEN, portal_frame_ancestors="'self'  https://app.example.com")
    with TestClient(create_app(settings, redis_client)) as c:
        policy = csp_of(c.get("/portal/s"))
    assert policy["frame-ancestors"] == "'self' https://app.example.com"


@pytest.mark.parametrize("bad", ["'self'; script-src *", "a,b", ""])
def test_frame_ancestors_setting_refuses_what_would_break_the_header(bad: str) -> None:
    with pytest.raises(ValueError, match="STREAMSINK_PORTAL_FRAME_ANCESTORS"):
        Settings(portal_frame_ancestors=bad)


def test_assets_are_served_with_types_and_caching(client: TestClient) -> None:
    own = client.get("/ui/waterfall.js")
    assert own.status_code == 200
    assert own.headers["content-type"].startswith("text/javascript")
    assert own.headers["cache-control"] == "no-cache" and own.headers.get("etag")
    assert own.headers["x-content-type-options"] == "nosniff"
    vendored = client.get("/ui/vendor/@codemirror/view/index.js")
    assert vendored.status_code == 200
    assert vendored.headers["cache-control"].startswith("public, max-age=")
    again = client.get("/ui/waterfall.js", headers={"If-None-Match": own.headers["etag"]})
    assert again.status_code == 304
    assert client.get("/ui/portal.html").status_code == 404  # only as /portal/{id}
    assert client.get("/ui/../routes/ui.py").status_code == 404
    assert client.get("/ui/%2e%2e/routes/ui.py").status_code == 404


def test_console_is_404_until_its_page_ships(client: TestClient) -> None:
    r = client.get("/console")
    if (UI_DIR / "console.html").is_file():
        assert r.status_code == 200 and "content-security-policy" in r.headers
    else:
        assert r.status_code == 404 and r.json()["code"] == "not_found"


def test_every_vendored_package_has_its_license_and_ships_in_the_wheel() -> None:
    for index in VENDOR_DIR.rglob("*.js"):
        assert (index.parent / "LICENSE").is_file(), f"{index} has no LICENSE beside it"
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["streamsink"]
    package = ROOT / "streamsink"
    shipped = {f for g in globs for f in glob.glob(g, root_dir=package, recursive=True)}
    for path in [*UI_DIR.rglob("*"), *(package / "transform" / "templates").rglob("*")]:
        if path.is_file():
            rel = path.relative_to(package).as_posix()
            assert rel in shipped, f"{rel} is not in package-data"
    assert (VENDOR_DIR / "VENDORED.md").is_file()


def test_templates_are_the_bundled_handlers_with_their_samples(
    client: TestClient, stream: dict[str, Any]
) -> None:
    url = f"/api/v1/stream/{stream['id']}/transformation-templates"
    r = client.get(url)
    assert r.status_code == 200, r.text
    by_name = {t["name"]: t for t in r.json()["data"]}
    on_disk = {p.name for p in (ROOT / "transforms").glob("*.js")}
    assert set(by_name) == on_disk
    svix = by_name["svix-webhook-attempts.js"]
    assert svix["code"] == (ROOT / "transforms" / "svix-webhook-attempts.js").read_text()
    assert [e["eventType"] for e in svix["sampleEvents"]] == [
        "message.attempt",
        "http.attempt",
        "message.attempt",
        "http.attempt",
    ]
    assert "message.attempt" in svix["description"]
    assert client.get(url, headers={"Authorization": ""}).status_code == 401
    assert client.get("/api/v1/stream/nope/transformation-templates").status_code == 404
    assert client.get(f"/api/v1/stream/{stream['uid']}/transformation-templates").json() == r.json()


def test_templates_run_in_simulate(client: TestClient, stream: dict[str, Any]) -> None:
    url = f"/api/v1/stream/{stream['id']}/transformation-templates"
    templates = client.get(url).json()["data"]
    assert {t["name"]: t["sinkType"] for t in templates if t["sinkType"] == "http"} == {
        "http-default.js": "http"
    }
    for t in templates:
        events = t["sampleEvents"] or [{"eventType": "order.paid", "payload": {"n": 1}}]
        body = {"type": t["sinkType"], "code": t["code"], "events": events}
        r = client.post("/api/v1/stream/transformations/simulate", json=body)
        assert r.status_code == 200, (t["name"], r.text)
        assert r.json()["otlp" if t["sinkType"] == "otelTracing" else "http"], t["name"]


SYNTAX_ERROR = "function handler(input) {\n  return {spans: [}\n}"


def test_simulate_compile_error_has_line_and_column(client: TestClient) -> None:
    body = {"code": SYNTAX_ERROR, "events": [{"eventType": "a", "payload": {}}]}
    r = client.post("/api/v1/stream/transformations/simulate", json=body)
    assert r.status_code == 400
    assert r.json()["code"] == "invalid_transformation"
    assert (r.json()["line"], r.json()["column"]) == (2, 19)
    assert "SyntaxError" in r.json()["detail"]


def test_simulate_handler_error_has_line_and_column(client: TestClient) -> None:
    code = "function handler(input) {\n  return input.nope.deeper;\n}"
    body = {"code": code, "events": [{"eventType": "a", "payload": {}}]}
    r = client.post("/api/v1/stream/transformations/simulate", json=body)
    assert r.status_code == 400 and r.json()["code"] == "handler_error"
    assert r.json()["line"] == 2 and isinstance(r.json()["column"], int)


def test_saving_code_that_does_not_compile_names_line_and_column(
    client: TestClient, sink: dict[str, Any], stream: dict[str, Any]
) -> None:
    url = f"/api/v1/stream/{stream['id']}/sink/{sink['id']}/transformation"
    r = client.patch(url, json={"code": SYNTAX_ERROR})
    assert r.status_code == 400
    assert r.json()["code"] == "invalid_transformation"
    assert (r.json()["line"], r.json()["column"]) == (2, 19)


def test_other_errors_keep_the_two_fields(client: TestClient) -> None:
    r = client.get("/api/v1/stream/strm_nope", headers=AUTH)
    assert set(r.json()) == {"code", "detail"}
