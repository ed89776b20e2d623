"""End-to-end fixtures: a real `streamlit run app.py` server and headless Chromium via Playwright.

The browser is Debian's chromium (/usr/bin/chromium, or $LATENT_LAB_CHROMIUM). Where it or
Playwright is missing, these tests skip with a one-line reason; CI installs both and sets
LATENT_LAB_REQUIRE_BROWSER=1, so that a missing browser stops the run with an error instead.
Screenshots go to test-artifacts/ at the repository root.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from vae.paths import ROOT

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("LATENT_LAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]


def _missing_browser() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install -r requirements-test.txt)"
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium, or set LATENT_LAB_CHROMIUM)"
    return None


def pytest_collection_modifyitems(config, items):
    reason = _missing_browser()
    e2e = [item for item in items if "e2e" in str(item.fspath)]
    if reason and e2e and os.environ.get("LATENT_LAB_REQUIRE_BROWSER"):
        raise pytest.UsageError(f"the browser tests must run here (LATENT_LAB_REQUIRE_BROWSER is set), but {reason}")
    for item in e2e:
        item.add_marker(pytest.mark.e2e)
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))


# Every test server's log. The app shows browsers no tracebacks (client.showErrorDetails = "none"),
# so a failed browser test gets the end of these logs in its report: that is where the traceback is.
SERVER_LOGS: list[Path] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed and "e2e" in str(item.fspath):
        for log in SERVER_LOGS:
            report.sections.append((f"server log {log} (last lines)", server_log_tail(log)))


def server_log_tail(log: Path, lines: int = 60) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as e:
        return f"(cannot read it: {e})"
    return "\n".join(text[-lines:]) or "(empty)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_NUMBA_WARM = []


def warm_numba_cache(env: dict) -> None:
    """Compile umap's numba code into the shared cache once, before the first test server starts.
    Otherwise, on a fresh checkout, every server's UMAP worker compiles it at the same time (tens of
    CPU seconds each) while the browser tests run, and a slow machine starves the browser."""
    if _NUMBA_WARM:
        return
    _NUMBA_WARM.append(True)
    subprocess.run([sys.executable, "-c", "from vae.maps.projection import warm_up_umap; warm_up_umap()"],
                   cwd=ROOT, env=env, timeout=600, check=False, stdout=subprocess.DEVNULL)


def start_server(home: Path, data_root: Path | None, port: int | None = None, extra_env=None):
    port = port or free_port()
    env = dict(os.environ, LATENT_LAB_HOME=str(home / "home"), XDG_CACHE_HOME=str(home / "cache"),
               PYTHONUNBUFFERED="1", **(extra_env or {}))
    # every test server starts with empty caches, but numba's compiled umap is shared between them
    env.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".pytest_cache" / "numba"))
    warm_numba_cache(env)
    if data_root is not None:
        env["LATENT_LAB_DATA"] = str(data_root)
    else:
        env["LATENT_LAB_DATA"] = str(home / "no-data")
    log = open(home / "server.log", "w")
    SERVER_LOGS.append(home / "server.log")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited early; see {home / 'server.log'}")
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=1)
            break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        raise RuntimeError("streamlit did not answer within 60 s")
    return proc, url


@contextlib.contextmanager
def running_server(home: Path, extra_env=None):
    """An app server on the shared MNIST data (where it is here) for a `with` block; -> its URL."""
    from tests.conftest import DATA_ROOT

    proc, url = start_server(home, DATA_ROOT if (DATA_ROOT / "MNIST").is_dir() else None, extra_env=extra_env)
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One app server for the whole browser session, on the shared MNIST data."""
    with running_server(tmp_path_factory.mktemp("e2e-home")) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    yield pg
    ctx.close()


def wait_for_app(page, timeout: float = 60_000) -> None:
    """Wait until Streamlit has finished running the script (no 'running' indicator)."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout)
    page.wait_for_function(
        """() => { const s = document.querySelector('[data-testid="stStatusWidget"]');
                   return !s || !s.innerText.match(/Running|Connecting/i); }""", timeout=timeout)
    page.wait_for_timeout(300)


def settled(page) -> None:
    """Wait until the script run is over and no element is greyed out as stale."""
    wait_for_app(page)
    page.wait_for_function("""() => !document.querySelector('[data-stale="true"]')""", timeout=60_000)


def open_from_sidebar(page, server: str, title: str) -> None:
    """Open the app at its root (so that a fresh server switches to app.py's navigation), then click the page
    `title` in the sidebar, as a student does. The caller waits for what its page draws."""
    page.goto(server)
    page.wait_for_selector('[data-testid="stSidebarNav"] a:has-text("Samples & errors")', timeout=90_000)
    wait_for_app(page)
    page.locator('[data-testid="stSidebarNav"] a', has_text=title).click()


def shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def assert_no_exception(page) -> None:
    """No exception box on the page. The box says nothing (the app redacts tracebacks); the failure
    report carries the end of the server's log, with the traceback."""
    box = page.locator('[data-testid="stException"]')
    assert box.count() == 0, box.first.inner_text()
