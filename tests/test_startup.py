"""The server's first page draws before torch is imported; torch follows in the background.

On this machine `import torch` takes about 1.7 s, most of the first page's time before. The
Welcome page and the sidebar now draw from the library's metadata and a stored picture, and
ui.warmup imports torch and the rest on a thread, started by app.py's st.App lifespan hook as the
server starts (or after the first page, under AppTest). The tests that look at sys.modules run
in a fresh interpreter, where nothing else could have imported torch.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from vae.assets import preview_path
from vae.checkpoint import ModelLibrary, default_library_dir, load_checkpoint
from vae.images import png_bytes
from vae.latent import prior_preview
from vae.config import ModelConfig
from vae.models import build_model
from ui.text import plain
from vae.paths import BUNDLED_MODELS, ROOT

FIRST_PAGE = """
import json, sys, threading
import ui.state as state
import ui.warmup as warmup
state.map_service = lambda: None  # no map workers in this test
{setup}
from streamlit.testing.v1 import AppTest
at = AppTest.from_file({app!r}, default_timeout=120).run()
torch_after_page = "torch" in sys.modules
for t in threading.enumerate():
    if t.name == warmup.THREAD_NAME:
        t.join(60)
print(json.dumps({{
    "exception": [str(e.value) for e in at.exception],
    "subheaders": [s.value for s in at.subheader],
    "images": len(at.get("image")),
    "model": at.sidebar.selectbox[0].value if at.sidebar.selectbox else None,
    "torch_after_page": torch_after_page,
    "after_warm_up": sorted(m for m in ("torch", "pandas", "vae.latent", "vae.classifier") if m in sys.modules),
}}))
"""


def first_page(tmp_path, setup: str) -> dict:
    env = {**os.environ, "LATENT_LAB_HOME": str(tmp_path / "home"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    code = FIRST_PAGE.format(setup=setup, app=str(ROOT / "app.py"))
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_the_first_page_draws_without_torch(tmp_path):
    r = first_page(tmp_path, "warmup.IMPORTS = warmup.LATER_IMPORTS = ()")
    assert r["exception"] == []
    assert r["subheaders"][0] == f"Dreamed up by {plain('VAE 2-d (bundled)')}" and r["images"] == 1  # the stored picture
    assert r["model"] == "vae-2d"  # the sidebar, from the checkpoints' metadata
    assert not r["torch_after_page"]
    assert r["after_warm_up"] == []


def test_after_the_first_page_torch_and_the_rest_are_imported_in_the_background(tmp_path):
    r = first_page(tmp_path, "warmup.LATER_DELAY_S = 0")
    assert r["exception"] == [] and r["images"] == 1
    assert r["after_warm_up"] == ["pandas", "torch", "vae.classifier", "vae.latent"]


def test_streamlit_run_finds_the_app_whose_lifespan_starts_the_import_and_imports_no_torch():
    """`streamlit run app.py` imports app.py as a module to find its st.App (which must not draw the
    frame, or import torch: that is the background thread's job, started by the lifespan hook)."""
    code = ("import json, sys, asyncio\n"
            "from pathlib import Path\n"
            "from streamlit.web.server.app_discovery import discover_asgi_app\n"
            "found = discover_asgi_app(Path('app.py'))\n"
            "import app, ui.warmup as warmup\n"
            "warmup.IMPORTS = ('json',); warmup.LATER_IMPORTS = ()\n"
            "torch_at_import = 'torch' in sys.modules\n"
            "async def serve():\n"
            "    async with app.app._user_lifespan(app.app):\n"
            "        warmup.start().join(30)\n"
            "asyncio.run(serve())\n"
            "print(json.dumps([found.is_asgi_app, found.import_string, type(app.app).__name__, torch_at_import,\n"
            "                  warmup.start().is_alive(), warmup._thread is not None]))\n")
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    assert json.loads(p.stdout.splitlines()[-1]) == [True, "app:app", "App", False, False, True]


def test_the_library_lists_models_without_torch(tmp_path):
    code = ("import json, sys\n"
            "from vae.checkpoint import ModelLibrary\nfrom vae.paths import BUNDLED_MODELS\n"
            f"entries = ModelLibrary({str(tmp_path)!r}, BUNDLED_MODELS).entries()\n"
            "print(json.dumps([[e.id, e.config.latent_dim, e.fingerprint] for e in entries] + ['torch' in sys.modules]))\n")
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    *entries, torch_loaded = json.loads(p.stdout.splitlines()[-1])
    assert [e[:2] for e in entries] == [["ae-16d", 16], ["ae-2d", 2], ["dae-16d", 16], ["vae-16d", 16],
                                        ["vae-2d", 2]]
    assert not torch_loaded


def test_each_bundled_models_stored_picture_is_what_its_decoder_draws(tmp_path):
    entries = ModelLibrary(tmp_path, BUNDLED_MODELS).entries()
    assert len(entries) == 5
    for entry in entries:
        stored = np.asarray(Image.open(preview_path(entry.fingerprint)))
        model, _ = load_checkpoint(entry.path)
        drawn = np.asarray(prior_preview(model))
        assert stored.shape == drawn.shape == (3 * 62, 3 * 242), entry.id  # 2 rows of 8 digits, 3x
        # the same picture, but for a rounding step at most (float sums differ across CPUs and threads)
        assert np.abs(stored.astype(int) - drawn.astype(int)).max() <= 1, entry.id


@pytest.mark.usefixtures("fresh_app", "stub_maps")
def test_a_model_without_a_stored_picture_gets_its_own(monkeypatch):
    model = build_model(ModelConfig(kind="vae", latent_dim=3, hidden=(32,)), seed=0)
    entry = ModelLibrary(default_library_dir()).save(model, name="tiny vae", dataset="mnist")
    assert not preview_path(entry.fingerprint).exists()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["active_model"] = entry.id
    at.run()
    assert not at.exception, at.exception
    assert at.subheader[0].value == "Dreamed up by tiny vae"
    import ui.state

    assert ui.state.prior_preview(entry) == png_bytes(prior_preview(model))


@pytest.mark.usefixtures("fresh_app", "stub_maps")
def test_a_broken_active_model_says_so_on_the_first_page():
    lib = ModelLibrary(default_library_dir())
    entry = lib.save(build_model(ModelConfig(kind="ae", latent_dim=2, hidden=(16,)), seed=0), name="soon broken")
    data = entry.path.read_bytes()
    entry.path.write_bytes(data[:len(data) - 100])  # the header still reads, the weights do not
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["active_model"] = entry.id
    at.run()
    assert not at.exception, at.exception
    assert "could not be loaded" in at.error[0].value
    assert not at.subheader or not at.subheader[0].value.startswith("Dreamed up by")


def test_the_stored_pictures_are_pngs_of_the_bundled_models_only(tmp_path):
    fingerprints = {e.fingerprint for e in ModelLibrary(tmp_path, BUNDLED_MODELS).entries()}
    stored = {p.name for p in preview_path("x").parent.glob("*")}
    assert stored == {preview_path(f).name for f in fingerprints}
    for f in fingerprints:
        assert Image.open(io.BytesIO(preview_path(f).read_bytes())).format == "PNG"
