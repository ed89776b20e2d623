"""The shared sidebar under AppTest: a model picked there becomes active and its maps start at once; class
models lead the picker, same-named models are told apart, and the identity corner (workspace, Teacher) is there."""

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


def test_sidebar_puts_class_models_first_and_tells_same_names_apart():
    from ui import identity

    lib = ModelLibrary(default_library_dir())
    model = build_model(ModelConfig(kind="ae", arch="mlp", latent_dim=2, hidden=(16,)), seed=0)
    mine = lib.save(model, name="my vae", owner=identity.owner_of("A" * 32), dataset="mnist")
    theirs = lib.save(model, name="my vae", owner=identity.owner_of("B" * 32), dataset="mnist")
    pinned = lib.save(model, name="Lesson 1", owner=None, dataset="mnist")
    lib.set_class_model(pinned.id, True, identity.Actor("teacher", teacher=True))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state[identity.WORKSPACE] = "A" * 32
    at.session_state["active_model"] = theirs.id
    at.run()
    assert not at.exception, at.exception
    picker = at.selectbox(key="sidebar_model")
    assert picker.options[0] == "Lesson 1"  # the teacher's class model leads every picker
    labels = {o for o in picker.options if o.startswith("my vae")}
    assert len(labels) == 2 and any(" · yours · " in o for o in labels) and any(" · a classmate's · " in o
                                                                                 for o in labels)
    assert "a classmate's" in [c.value for c in at.sidebar.caption if c.value.startswith("Dataset:")][0]
    assert mine.id != theirs.id


def test_sidebar_shows_the_workspace_and_the_teacher_expander():
    at = open_app()
    assert any(c.value.startswith("Your workspace:") for c in at.sidebar.caption)
    assert "Teacher" in [e.label for e in at.sidebar.expander]
