"""The shared sidebar under AppTest: a model picked there becomes active and its maps start at once."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from vae.paths import ROOT
from vae.checkpoint import ModelLibrary, default_library_dir
from vae.paths import BUNDLED_MODELS
from vae.config import ModelConfig
from vae.models import build_model

pytestmark = pytest.mark.usefixtures("fresh_app", "stub_maps")  # no real t-SNE or UMAP here


def open_app() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def test_picking_a_model_starts_its_maps(stub_maps):
    at = open_app()
    assert stub_maps.warmed == []  # showing a page starts no maps
    at.selectbox(key="sidebar_model").set_value("vae-16d").run()
    assert not at.exception, at.exception
    assert at.session_state["active_model"] == "vae-16d"
    entry = ModelLibrary(default_library_dir(), BUNDLED_MODELS).get("vae-16d")
    assert stub_maps.warmed == [(entry.fingerprint, (10_000, 16))]


def test_picking_a_model_without_its_test_digits_starts_nothing(stub_maps):
    model = build_model(ModelConfig(kind="ae", arch="mlp", latent_dim=3, hidden=(16,)), seed=0)
    entry = ModelLibrary(default_library_dir()).save(model, name="fashion model", dataset="fashion")
    at = open_app()
    at.selectbox(key="sidebar_model").set_value(entry.id).run()
    assert not at.exception, at.exception  # the map page explains the missing digits when opened
    assert at.session_state["active_model"] == entry.id and stub_maps.warmed == []


@pytest.mark.parametrize("kind", ["ae", "vae"])
def test_sidebar_names_beta_only_for_a_model_with_a_prior(kind):
    model = build_model(ModelConfig(kind=kind, arch="mlp", latent_dim=2, hidden=(16,), beta=2.5), seed=0)
    entry = ModelLibrary(default_library_dir()).save(model, name=f"tiny {kind}", dataset="mnist")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["active_model"] = entry.id
    at.run()
    assert not at.exception, at.exception
    (caption,) = [c.value for c in at.sidebar.caption if c.value.startswith("Dataset:")]
    assert ("β = 2.5" in caption) == (kind == "vae")  # an AE has no KL term, so no β
