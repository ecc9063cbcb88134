"""The API documentation works offline: /docs and /redoc reference only
same-origin assets, served from the package. And which routes are open (no
token) is exactly what the README says."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

URL_ATTR = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")
JS_MARKERS = {"swagger-ui-bundle.js": b"SwaggerUIBundle", "redoc.standalone.js": b"Redoc"}


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_everything_from_the_server(client: TestClient, page: str) -> None:
    r = client.get(page, headers={"Authorization": ""})  # no token needed
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "/openapi.json" in html
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", html, re.I), html  # no CDN
    urls = URL_ATTR.findall(html)
    scripts = [u for u in urls if u.endswith(".js")]
    assert scripts, html
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url
        asset = client.get(url, headers={"Authorization": ""})
        assert asset.status_code == 200, url
        assert len(asset.content) > 100, url
        name = url.rsplit("/", 1)[-1]
        if name.endswith(".js"):
            assert "javascript" in asset.headers["content-type"], url
            assert JS_MARKERS[name] in asset.content, url
        elif name.endswith(".css"):
            assert asset.headers["content-type"].startswith("text/css"), url


def test_openapi_document_is_open(client: TestClient) -> None:
    r = client.get("/openapi.json", headers={"Authorization": ""})
    assert r.status_code == 200 and r.json()["info"]["title"] == "streamsink"


def test_asset_paths_stay_in_the_asset_directory(client: TestClient) -> None:
    for path in ("/docs/static/../docs.py", "/docs/static/%2e%2e/docs.py", "/docs/static/nope.js"):
        assert client.get(path).status_code == 404, path


#: Routes that answer without a token (the README's "Tokens" paragraph says so).
OPEN = {"/health", "/api/v1/health", "/docs", "/redoc", "/openapi.json", "/v1/traces"}


def test_every_other_route_needs_the_token(client: TestClient) -> None:
    """Every operation of the OpenAPI document, and the pages outside it."""
    paths = client.get("/openapi.json").json()["paths"]
    operations = [(m.upper(), p) for p, ops in paths.items() for m in ops]
    operations += [("GET", "/docs"), ("GET", "/redoc"), ("GET", "/openapi.json")]
    open_seen = set()
    for method, path in operations:
        r = client.request(method, re.sub(r"\{[^}]+\}", "x", path), headers={"Authorization": ""})
        if path in OPEN:
            assert r.status_code != 401, (method, path)
            open_seen.add(path)
        else:
            assert r.status_code == 401, (method, path, r.status_code)
    assert open_seen == OPEN and len(operations) > 20
