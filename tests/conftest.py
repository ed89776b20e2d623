"""Shared fixtures: the MNIST data root, a private model library per test, tiny configs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vae.paths import ROOT

DATA_ROOT = Path(os.environ.get("LATENT_LAB_DATA") or ROOT.parent / "shared" / "data")


@pytest.fixture(scope="session")
def data_root() -> Path:
    if not (DATA_ROOT / "MNIST" / "raw").is_dir():
        pytest.skip(f"MNIST is not at {DATA_ROOT}; set LATENT_LAB_DATA to a folder that has MNIST/raw/")
    return DATA_ROOT


@pytest.fixture(scope="session")
def mnist(data_root):
    from vae.data import load_dataset

    return load_dataset("mnist", data_root, download=False)


@pytest.fixture(scope="session")
def mnist_small(mnist):
    """2,000 training and 500 test digits: enough to see a loss fall in seconds."""
    from vae.data import Dataset

    return Dataset("mnist", mnist.x_train[:2000], mnist.y_train[:2000], mnist.x_test[:500], mnist.y_test[:500])


@pytest.fixture(autouse=True)
def private_home(tmp_path, monkeypatch):
    """Each test gets its own model library and caches, never the user's."""
    monkeypatch.setenv("LATENT_LAB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data-home"))
    for name in ("LATENT_LAB_CACHE", "LATENT_LAB_RAY_ADDRESS"):  # a replica's shared cache, a cluster: not here
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def torch_one_thread():
    """Tiny models gain nothing from threads, and where jobs share a few cores extra threads cost up to 10x."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def fresh_app(data_root, monkeypatch):
    """For page tests: the shared MNIST data, and Streamlit caches emptied before and after."""
    import streamlit as st

    monkeypatch.setenv("LATENT_LAB_DATA", str(data_root))
    # Page tests never wait for the map workers' warm-up (UMAP's numba compile): a worker starts
    # only when a page asks for a slow map. tests/test_maps.py tests the warm-up itself.
    monkeypatch.setattr("vae.maps.service.MapService.prestart", lambda self: None)
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture(autouse=True)
def pages_run_through_app(monkeypatch):
    """Every AppTest run goes through app.py's st.navigation, as on a real server after its first run.

    A folder named pages/ makes Streamlit start in its old multipage mode, and AppTest resets that
    mode before every run, so without this each run after a switch_page would execute the page
    alone (no sidebar). The real server's first-run case is covered by tests/e2e/test_deep_link.py.
    """
    from streamlit.runtime.pages_manager import PagesManager

    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)


class StubMaps:
    """Records warm-up requests instead of running t-SNE and UMAP on the test's two cores."""

    def __init__(self):
        self.warmed = []

    def warm_up(self, fingerprint, z, methods=("pca", "tsne", "umap")):
        self.warmed.append((fingerprint, z.shape))


@pytest.fixture
def stub_maps(monkeypatch) -> StubMaps:
    """ui.state.map_service() replaced by a StubMaps for the test."""
    import ui.state

    stub = StubMaps()
    monkeypatch.setattr(ui.state, "map_service", lambda: stub)
    return stub
