"""The Train & library page under AppTest: it renders, bad settings get one sentence, and the
library actions (activate, rename, delete, upload) work on a private model library.

Each test has its own LATENT_LAB_HOME (tests/conftest.py), so saved models never leak.
"""

from __future__ import annotations

import time

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT
from vae.checkpoint import BUNDLED_DIR, ModelLibrary, checkpoint_bytes, default_library_dir
from vae.models import ModelConfig, build_model

PAGE = "pages/train.py"


pytestmark = pytest.mark.usefixtures("fresh_app", "stub_maps")  # no real t-SNE or UMAP here


def open_page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.switch_page(PAGE)
    at.run()
    assert not at.exception, at.exception
    return at


def tiny_model(kind: str = "ae"):
    return build_model(ModelConfig(kind=kind, arch="mlp", latent_dim=3, hidden=(16,)), seed=0)


def save_model(name: str) -> str:
    entry = ModelLibrary(default_library_dir()).save(
        tiny_model(), name=name, dataset="mnist",
        metrics={"test_nats": 150.0, "kl_nats": 0.0, "active_units": 3, "knn_acc": 0.5})
    return entry.id


def texts(elements) -> str:
    return " | ".join(str(e.value) for e in elements)


def test_page_renders_form_and_library():
    at = open_page()
    assert at.title[0].value.endswith("Train & library")
    assert at.button(key="train_start").label == "Start training"
    assert "Start training" in texts(at.info)  # the empty progress panel says what to do
    table = at.dataframe[0].value
    bundled = [e for e in ModelLibrary(default_library_dir(), BUNDLED_DIR).entries() if e.bundled]
    assert list(table["Source"]).count("bundled") == len(bundled)
    assert not at.number_input(key="train_beta").disabled
    at.radio(key="train_kind").set_value("ae").run()
    assert at.number_input(key="train_beta").disabled  # β means nothing to an AE
    at.radio(key="train_stop").set_value("epochs").run()
    assert at.number_input(key="train_epochs").value == 5
    assert not at.exception


@pytest.mark.parametrize("field, value, message", [
    ("train_hidden", "512, lots", "Hidden sizes must be whole numbers"),
    ("train_hidden", "4", "Hidden layer sizes must be whole numbers from 8 to 4096"),
    ("train_hidden", "64,64,64,64,64", "between one and four hidden layer sizes"),
])
def test_bad_settings_get_one_sentence(field, value, message):
    at = open_page()
    at.text_input(key=field).set_value(value).run()
    at.button(key="train_start").click().run()
    assert not at.exception
    assert message in texts(at.error)
    assert "train_jobs" not in at.session_state or not at.session_state["train_jobs"]


def test_missing_data_says_where_and_how(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENT_LAB_DATA", str(tmp_path / "nowhere"))
    at = open_page()
    assert "LATENT_LAB_DATA" in texts(at.warning)  # said before anyone presses Start
    at.button(key="train_start").click().run()
    assert not at.exception
    err = texts(at.error)
    assert str(tmp_path / "nowhere") in err and "LATENT_LAB_DATA" in err


def test_custom_folder_must_exist(tmp_path):
    at = open_page()
    at.selectbox(key="train_dataset").set_value("custom").run()
    at.text_input(key="train_custom_dir").set_value(str(tmp_path / "no-such-folder")).run()
    at.button(key="train_start").click().run()
    assert not at.exception
    assert "is not a folder" in texts(at.error)


def test_activate_rename_and_delete_a_saved_model():
    model_id = save_model("my model")
    at = open_page()
    at.selectbox(key="train_pick").set_value(model_id).run()
    at.button(key="train_activate").click().run()
    assert at.session_state["active_model"] == model_id
    assert "now the active model" in texts(at.success)
    assert at.button(key="train_activate").disabled

    at.text_input(key=f"train_rename_{model_id}").set_value("  my better model ").run()
    at.button(key="train_rename").click().run()
    assert not at.exception
    assert ModelLibrary(default_library_dir()).get(model_id).name == "my better model"
    assert "my better model" in list(at.dataframe[0].value["Name"])

    assert at.button(key="train_delete").disabled  # nothing is deleted without the confirmation
    at.checkbox(key=f"train_confirm_delete_{model_id}").check().run()
    at.button(key="train_delete").click().run()
    assert not at.exception
    assert "Deleted" in texts(at.info)
    assert not list(default_library_dir().glob("*.safetensors"))
    assert model_id not in at.selectbox(key="train_pick").options


def test_rename_to_blank_is_refused():
    model_id = save_model("keep me")
    at = open_page()
    at.selectbox(key="train_pick").set_value(model_id).run()
    at.text_input(key=f"train_rename_{model_id}").set_value("   ").run()
    at.button(key="train_rename").click().run()
    assert "not blank" in texts(at.error)
    assert ModelLibrary(default_library_dir()).get(model_id).name == "keep me"


def test_bundled_models_cannot_be_deleted_or_renamed():
    if not (BUNDLED_DIR / "vae-2d.safetensors").is_file():
        pytest.skip("the bundled models are not built")
    at = open_page()
    at.selectbox(key="train_pick").set_value("vae-2d").run()
    assert "cannot be deleted" in texts(at.caption)
    assert not [b for b in at.button if b.key == "train_delete"]
    assert at.button(key="train_rename").disabled


def test_upload_a_checkpoint_and_refuse_a_bad_one(stub_maps):
    at = open_page()
    at.file_uploader(key="train_upload").upload("evil.safetensors", b"\x80\x04 pickled", "application/octet-stream")
    at.run()
    assert not at.exception
    assert "pickle" in texts(at.error) and "\n" not in texts(at.error)
    assert not list(default_library_dir().glob("*.safetensors"))  # nothing saved

    data = checkpoint_bytes(tiny_model("vae"), name="from a friend", dataset="mnist")
    at.file_uploader(key="train_upload").set_value(("friend.safetensors", data, "application/octet-stream"))
    at.run()
    assert not at.exception
    saved = ModelLibrary(default_library_dir()).entries()
    assert [e.name for e in saved] == ["from a friend"]
    assert at.session_state["active_model"] == saved[0].id
    assert "from a friend" in texts(at.success)
    assert stub_maps.warmed == [(saved[0].fingerprint, (10_000, 3))]  # its maps start in the background
    at.run()  # the same upload is not stored twice
    assert len(ModelLibrary(default_library_dir()).entries()) == 1


def test_second_training_waits_in_line_and_both_cancel():
    at = open_page()
    at.button(key="train_start").click().run()
    at.text_input(key="train_name").set_value("second").run()
    at.button(key="train_start").click().run()
    assert not at.exception and len(at.session_state["train_jobs"]) == 2
    assert "number 1" in texts(at.info)  # the newest job waits behind the first (one slot by default)
    at.button(key="train_cancel").click().run()
    assert "queue" not in texts(at.info)
    assert "Cancel training" in [b.label for b in at.button]  # now the first, still running, is shown
    at.button(key="train_cancel").click().run()
    deadline = time.time() + 60
    while "cancelled" not in texts(at.warning) and time.time() < deadline:
        time.sleep(0.5)
        at.run()
    assert "Training was cancelled; nothing was saved." in texts(at.warning)
    assert "Cancel training" not in [b.label for b in at.button]
    assert not list(default_library_dir().glob("*.safetensors"))


@pytest.mark.slow
def test_a_short_training_becomes_the_active_model(stub_maps):
    at = open_page()
    at.text_input(key="train_name").set_value("page-trained").run()
    at.number_input(key="train_budget").set_value(2).run()
    at.button(key="train_start").click().run()
    assert not at.exception and len(at.session_state["train_jobs"]) == 1
    deadline = time.time() + 240
    while "saved in the library" not in texts(at.success) and time.time() < deadline:
        time.sleep(1)
        at.run()  # AppTest does not run fragments on a timer; a full rerun shows the same panel
        assert not at.exception
    assert "saved in the library" in texts(at.success)
    entry = next(e for e in ModelLibrary(default_library_dir()).entries() if e.name == "page-trained")
    assert at.session_state["active_model"] == entry.id
    assert at.selectbox(key="train_pick").value == entry.id  # the manage picker follows
    assert stub_maps.warmed == [(entry.fingerprint, (10_000, 2))]
