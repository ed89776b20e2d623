"""Two replicas behind HAProxy (deploy/replicas.sh 2, deploy/haproxy.cfg) in a real Chromium.

A browser's session keeps working through the proxy over page switches and reruns (its websocket, its images
under /media/ and its upload all reach the replica holding the session: the LLSERVER cookie), a second browser
lands on the other replica and sees the model the first one uploaded (one shared folder) but may not delete it
(its owner's rights travel with the file), and when the first browser's replica is killed its open page
reconnects to a new session elsewhere with its identity, its active model and its rights (cookies and the
address: nothing held by one replica), while replicas.sh starts the killed replica again.

Needs haproxy (apt-get install haproxy): without it the test skips, unless LATENT_LAB_REQUIRE_PROXY=1 (CI).
Screenshots: test-artifacts/proxy-1-a-uploaded.png, proxy-2-b-other-replica.png, proxy-3-a-after-its-replica-died.png.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from tests.e2e.conftest import (SERVER_LOGS, assert_no_exception, free_port, shot, wait_for_app,
                                warm_numba_cache)
from tests.e2e.test_classroom_e2e import VIEWPORT, manage, train_page, workspace
from vae.paths import ROOT

NAME = "uploaded through the proxy"
COOKIE = "LLSERVER"  # deploy/haproxy.cfg's stickiness cookie; its value names the replica (r1, r2)


def _free_pair() -> int:
    """A free port whose next port is free too (the replicas take consecutive ports)."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
                return port
            except OSError:
                continue
    raise RuntimeError("no two consecutive free ports")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    """deploy/replicas.sh 2 on a fresh shared folder; -> the proxy's URL and the first replica's port."""
    if shutil.which("haproxy") is None:
        if os.environ.get("LATENT_LAB_REQUIRE_PROXY"):
            pytest.fail("LATENT_LAB_REQUIRE_PROXY is set, but haproxy is not installed (apt-get install haproxy)")
        pytest.skip("haproxy is not installed (apt-get install haproxy); LATENT_LAB_REQUIRE_PROXY=1 makes this fail")
    from tests.conftest import DATA_ROOT

    tmp = tmp_path_factory.mktemp("e2e-proxy")
    port, first = free_port(), _free_pair()
    env = dict(os.environ, LATENT_LAB_HOME=str(tmp / "shared"), LATENT_LAB_PROXY_PORT=str(port),
               LATENT_LAB_REPLICA_PORT=str(first), PYTHONUNBUFFERED="1",
               LATENT_LAB_DATA=str(DATA_ROOT if (DATA_ROOT / "MNIST").is_dir() else tmp / "no-data"))
    env.pop("LATENT_LAB_CACHE", None)  # replicas.sh puts it in the shared folder
    env.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".pytest_cache" / "numba"))
    warm_numba_cache(env)
    log = tmp / "replicas.log"
    run = tmp / "shared" / "cache" / f"replicas-{socket.gethostname()}-{port}"
    SERVER_LOGS.extend([log, run / "replica-1.log", run / "replica-2.log", run / "haproxy.log"])
    proc = subprocess.Popen(["bash", str(ROOT / "deploy" / "replicas.sh"), "2"], env=env, cwd=tmp,
                            stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"deploy/replicas.sh exited early: {log.read_text()}")
            try:
                urllib.request.urlopen(url + "/_stcore/health", timeout=2)
                break
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError("the proxy did not answer within 180 s")
                time.sleep(0.3)
        yield url, first
    finally:
        proc.send_signal(signal.SIGTERM)  # the script stops its replicas and the proxy
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.fixture(scope="module")
def checkpoint_file(tmp_path_factory):
    from vae.checkpoint import save_checkpoint
    from vae.config import ModelConfig
    from vae.models import build_model

    path = tmp_path_factory.mktemp("upload") / "proxy.safetensors"
    model = build_model(ModelConfig(kind="vae", arch="mlp", latent_dim=2, hidden=(32,)), seed=0)
    save_checkpoint(path, model, name=NAME, dataset="mnist", metrics={"test_nats": 160.0})
    return path


def replica_pids(port: int) -> list[int]:
    """The `streamlit run` processes listening on `port` (from their command lines)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"streamlit" in b" ".join(args) and b"--server.port" in args and str(port).encode() in args:
            pids.append(int(proc.name))
    return pids


def answers(port: int) -> bool:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
        return True
    except OSError:
        return False


def replica(ctx) -> str | None:
    return {c["name"]: c["value"] for c in ctx.cookies()}.get(COOKIE)


def go(page, title: str) -> None:
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=title).click()
    wait_for_app(page)
    assert_no_exception(page)


def images_loaded(page, at_least: int) -> bool:
    """Whether `at_least` of the page's pictures (st.image: /media/ files kept in the memory of the replica
    that drew them) load within 30 s."""
    try:
        page.wait_for_function("""n => [...document.querySelectorAll('[data-testid="stImage"] img, '
                                          + '[data-testid="stImageContainer"] img')]
                                        .filter(i => i.complete && i.naturalWidth > 0).length >= n""",
                               arg=at_least, timeout=30_000)
        return True
    except Exception:  # playwright's TimeoutError
        print(page.evaluate("() => [...document.querySelectorAll('img')].map(i => [i.src.slice(0, 80), "
                            "i.complete, i.naturalWidth, i.closest('[data-testid]')?.dataset.testid])"))
        return False


def test_sessions_through_the_proxy(deployment, browser, checkpoint_file):
    proxy, first_port = deployment
    contexts = []
    try:
        a_ctx = browser.new_context(viewport=VIEWPORT)
        contexts.append(a_ctx)
        a = a_ctx.new_page()
        a.goto(proxy)
        wait_for_app(a)
        home = replica(a_ctx)
        assert home in ("r1", "r2")
        me = workspace(a)
        for title in ("Samples & errors", "Sliders", "Latent map", "Samples & errors", "Train & library"):
            go(a, title)
            if title == "Samples & errors":
                assert images_loaded(a, 2)  # served by the replica that drew them
            assert replica(a_ctx) == home and workspace(a) == me  # the same session, on the same replica
        train_page(a)
        a.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(checkpoint_file))
        a.get_by_text("to the library; it is now the active model").wait_for(timeout=60_000)  # the upload's POST
        wait_for_app(a)
        uploaded = parse_qs(urlparse(a.url).query)["model"][0]
        assert_no_exception(a)
        assert a.get_by_role("button", name="Delete").count() == 1 and replica(a_ctx) == home
        shot(a, "proxy-1-a-uploaded")

        # Other browsers: while A's websocket is open, leastconn sends the next one to the other replica.
        other = None
        for _ in range(4):
            ctx = browser.new_context(viewport=VIEWPORT)
            contexts.append(ctx)
            b = ctx.new_page()
            b.goto(proxy)
            wait_for_app(b)
            if replica(ctx) not in (None, home):
                other = (ctx, b)
                break
        assert other is not None, "every browser landed on the same replica"
        b_ctx, b = other
        train_page(b)
        manage(b, NAME)  # the other replica lists A's upload: one shared folder
        assert_no_exception(b)
        assert b.get_by_role("button", name="Make active").is_enabled()
        assert b.get_by_role("button", name="Delete").count() == 0  # and A's rights hold there too
        shot(b, "proxy-2-b-other-replica")

        # A's replica dies (SIGKILL, as the OOM killer would) while her page is open: the page reconnects,
        # through the proxy, to a new session on another process, with her identity, her active model and
        # her page (all in the browser: cookies and the address), and replicas.sh starts the dead one again.
        port = first_port + int(home[1:]) - 1
        (pid,) = replica_pids(port)
        frames: dict = {}  # the page's websockets opened from now on: frames each received

        def opened(ws):
            frames[ws] = 0
            ws.on("framereceived", lambda _: frames.__setitem__(ws, frames[ws] + 1))

        a.on("websocket", opened)
        os.kill(pid, signal.SIGKILL)
        # The page keeps what it shows and reconnects (a new, empty session on whichever process answers);
        # Streamlit reruns it at the student's next action, with the address's page and model.
        deadline = time.time() + 90
        while not any(not ws.is_closed() for ws in frames):
            assert time.time() < deadline, "the page did not reconnect"
            a.wait_for_timeout(250)
        a.wait_for_timeout(1000)
        go(a, "Samples & errors")
        assert any(n > 0 for n in frames.values())  # that run came over the new connection
        assert images_loaded(a, 2)  # drawn by the process that holds the new session
        assert workspace(a) == me and f"model={uploaded}" in a.url
        train_page(a)
        assert a.locator('[data-testid="stSidebar"]').get_by_text(NAME).count() >= 1  # still the active model
        manage(a, NAME)
        assert a.get_by_role("button", name="Delete").count() == 1  # still hers, on whichever process
        shot(a, "proxy-3-a-after-its-replica-died")
        deadline = time.time() + 90
        while not replica_pids(port) or not answers(port):
            assert time.time() < deadline, "replicas.sh did not start the killed replica again"
            time.sleep(0.5)
        assert replica_pids(port) != [pid]
    finally:
        for ctx in contexts:
            ctx.close()
