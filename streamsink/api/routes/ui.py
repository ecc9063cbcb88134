"""The browser pages: ``/portal/{stream_id}`` (one stream, by a portal token),
``/console`` (the admin token) and their assets under ``/ui/``.

Everything is served from the package (``static/ui``, vendored libraries in
``static/ui/vendor``, see its VENDORED.md): no build step, nothing fetched from
another origin. The pages get a strict Content-Security-Policy: scripts only
from this origin plus the one inline import map (allowed by its hash), no
``eval``, no inline styles, no plugins; ``frame-ancestors`` of the portal is
``STREAMSINK_PORTAL_FRAME_ANCESTORS`` (embeddable, as Svix's portal is).

The pages hold no token: the portal reads it from the URL fragment
(``#key=``), which browsers never send to the server, and every action is a
call to the public REST API with ``Authorization: Bearer``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope

from streamsink.errors import NotFound

UI_DIR = Path(__file__).parents[1] / "static" / "ui"
VENDOR_DIR = UI_DIR / "vendor"
UI_URL = "/ui"
IMPORTMAP_MARK = "<!-- importmap -->"
NONCE_MARK = "{{style-nonce}}"

router = APIRouter(include_in_schema=False)


def csp(
    script_hashes: tuple[str, ...] = (), frame_ancestors: str = "'none'", style_nonce: str = ""
) -> str:
    """The Content-Security-Policy of every UI answer."""
    scripts = " ".join(["'self'", *(f"'sha256-{h}'" for h in script_hashes)])
    styles = f"'self' 'nonce-{style_nonce}'" if style_nonce else "'self'"
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src {scripts}",
            f"style-src {styles}",
            "img-src 'self' data:",
            "connect-src 'self'",
            "font-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            f"frame-ancestors {frame_ancestors}",
        ]
    )


SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


@lru_cache(maxsize=1)
def import_map() -> str:
    """The import map of the vendored ES modules: each package directory with
    an ``index.js`` maps its npm name to that file (bare imports resolve
    without a bundler)."""
    imports: dict[str, str] = {}
    for index in sorted(VENDOR_DIR.rglob("index.js")):
        name = index.parent.relative_to(VENDOR_DIR).as_posix()
        imports[name] = f"{UI_URL}/vendor/{name}/index.js"
    imports["htm/preact"] = f"{UI_URL}/html.js"  # html + Preact + hooks in one import
    return json.dumps({"imports": imports}, indent=1, sort_keys=True)


def _sha256(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


@lru_cache(maxsize=8)
def _page(name: str) -> tuple[str, str] | None:
    """The page ``name`` with the import map in place of its marker, and the
    hash that lets the map run; None when the page is not shipped."""
    path = UI_DIR / name
    if not path.is_file():
        return None
    script = import_map()
    head = (
        f'<meta name="csp-style-nonce" content="{NONCE_MARK}">\n'
        f'  <script type="importmap">{script}</script>'
    )
    html = path.read_text(encoding="utf-8").replace(IMPORTMAP_MARK, head, 1)
    return html, _sha256(script)


def page_response(name: str, frame_ancestors: str) -> HTMLResponse:
    page = _page(name)
    if page is None:
        raise NotFound(f"this build has no {name} page")
    html, digest = page
    nonce = secrets.token_urlsafe(18)  # fresh per answer: the page is never cached
    headers = {
        **SECURITY_HEADERS,
        "Content-Security-Policy": csp((digest,), frame_ancestors, style_nonce=nonce),
        "Cache-Control": "no-store",
    }
    return HTMLResponse(html.replace(NONCE_MARK, nonce, 1), headers=headers)


@router.get("/portal/{stream_id}")
async def portal(stream_id: str, request: Request) -> HTMLResponse:
    """The Stream Portal of one stream (the page reads the stream from its path)."""
    return page_response("portal.html", request.app.state.settings.portal_frame_ancestors)


@router.get("/console")
async def console() -> HTMLResponse:
    """The operator console (served when the package ships ``console.html``)."""
    return page_response("console.html", "'self'")


class UiFiles(StaticFiles):
    """The UI's static files with the security headers; vendored files are
    cached for a day, the UI's own revalidated (ETag) on each load."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        if path.endswith(".html"):  # pages only through their routes (import map, nonce)
            raise NotFound("not found")
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        response.headers["Content-Security-Policy"] = csp()
        vendored = path.startswith("vendor/")
        response.headers["Cache-Control"] = "public, max-age=86400" if vendored else "no-cache"
        if path.endswith(".js"):
            response.headers["Content-Type"] = "text/javascript; charset=utf-8"
        elif path.endswith("LICENSE") or path.endswith(".md"):
            response.headers["Content-Type"] = "text/plain; charset=utf-8"
        return response


def install_ui(app: FastAPI) -> None:
    """Add the pages and mount their assets on ``app``."""
    app.include_router(router)
    app.mount(UI_URL, UiFiles(directory=UI_DIR), name="ui-assets")
