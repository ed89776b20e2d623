"""The Train & library page under AppTest: it renders, bad settings get one sentence, and the
library actions (activate, rename, delete, upload) work on a private model library. Then the page's
helpers in ui.training on their own: starting, polling and adopting trainings, one-off messages.

Each test has its own LATENT_LAB_HOME (tests/conftest.py), so saved models never leak.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from vae.paths import ROOT
from ui import training
from vae.checkpoint import ModelLibrary, checkpoint_bytes, default_library_dir
from vae.paths import BUNDLED_MODELS
from vae.config import ModelConfig
from vae.models import build_model

PAGE = "pages/train.py"


page_test = pytest.mark.usefixtures("fresh_app", "stub_maps")  # no real t-SNE or UMAP here


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


@page_test
def test_page_renders_form_and_library():
    at = open_page()
    assert at.title[0].value.endswith("Train & library")
    assert at.button(key="train_start").label == "Start training"
    assert "Start training" in texts(at.info)  # the empty progress panel says what to do
    table = at.dataframe[0].value
    bundled = [e for e in ModelLibrary(default_library_dir(), BUNDLED_MODELS).entries() if e.bundled]
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
@page_test
def test_bad_settings_get_one_sentence(field, value, message):
    at = open_page()
    at.text_input(key=field).set_value(value).run()
    at.button(key="train_start").click().run()
    assert not at.exception
    assert message in texts(at.error)
    assert "train_jobs" not in at.session_state or not at.session_state["train_jobs"]


@page_test
def test_missing_data_says_where_and_how(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENT_LAB_DATA", str(tmp_path / "nowhere"))
    at = open_page()
    assert "LATENT_LAB_DATA" in texts(at.warning)  # said before anyone presses Start
    at.button(key="train_start").click().run()
    assert not at.exception
    err = texts(at.error)
    assert str(tmp_path / "nowhere") in err and "LATENT_LAB_DATA" in err


@page_test
def test_custom_folder_must_exist(tmp_path):
    at = open_page()
    at.selectbox(key="train_dataset").set_value("custom").run()
    at.text_input(key="train_custom_dir").set_value(str(tmp_path / "no-such-folder")).run()
    at.button(key="train_start").click().run()
    assert not at.exception
    assert "is not a folder" in texts(at.error)


@page_test
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


@page_test
def test_rename_to_blank_is_refused():
    model_id = save_model("keep me")
    at = open_page()
    at.selectbox(key="train_pick").set_value(model_id).run()
    at.text_input(key=f"train_rename_{model_id}").set_value("   ").run()
    at.button(key="train_rename").click().run()
    assert "not blank" in texts(at.error)
    assert ModelLibrary(default_library_dir()).get(model_id).name == "keep me"


@page_test
def test_bundled_models_cannot_be_deleted_or_renamed():
    if not (BUNDLED_MODELS / "vae-2d.safetensors").is_file():
        pytest.skip("the bundled models are not built")
    at = open_page()
    at.selectbox(key="train_pick").set_value("vae-2d").run()
    assert "cannot be deleted" in texts(at.caption)
    assert not [b for b in at.button if b.key == "train_delete"]
    assert at.button(key="train_rename").disabled


@page_test
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


@page_test
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


@page_test
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


# ---------------------------------------------------------------- ui.training's helpers on their own

@pytest.fixture
def session(monkeypatch) -> dict:
    """A plain dict as st.session_state (outside a script run)."""
    store: dict = {}
    monkeypatch.setattr(st, "session_state", store)
    return store


@pytest.fixture
def activated(monkeypatch) -> list:
    """The ids that state.set_active was given (it starts no maps here)."""
    ids: list = []
    monkeypatch.setattr(training.state, "set_active", ids.append)
    return ids


def job(job_id: str, state: str) -> SimpleNamespace:
    return SimpleNamespace(job_id=job_id, state=state, finished=state in ("done", "error", "cancelled"),
                           entry_id=f"model-{job_id}" if state == "done" else None)


class FakeQueue:
    def __init__(self, jobs=()):
        self.jobs = {j.job_id: j for j in jobs}
        self.submitted = []

    def status(self, job_id):
        return self.jobs.get(job_id)

    def submit(self, model_cfg, train_cfg, dataset, data_dir, name):
        self.submitted.append((model_cfg, train_cfg, dataset, data_dir, name))
        return f"job{len(self.submitted)}"


def test_a_finished_training_becomes_active_exactly_once(session, activated):
    running = [job("a", "running"), job("b", "queued")]
    assert training.adopt_finished(running) == [] and activated == []

    ended = [job("a", "done"), job("b", "cancelled")]
    assert [j.job_id for j in training.adopt_finished(ended)] == ["a", "b"]
    assert activated == ["model-a"]  # a cancelled training saved nothing
    assert session[training.FOLLOW] is True  # the manage picker follows the new active model

    session.pop(training.FOLLOW)
    assert training.adopt_finished(ended) == []  # the next look: nothing new, nothing re-activated
    assert activated == ["model-a"] and training.FOLLOW not in session
    assert [j.job_id for j in training.adopt_finished([*ended, job("c", "done")])] == ["c"]
    assert activated == ["model-a", "model-c"]


def test_session_jobs_forget_what_the_queue_does_not_know(session):
    session[training.JOBS] = ["old", "a", "b"]  # "old": from before a server restart
    q = FakeQueue([job("a", "done"), job("b", "running")])
    assert [j.job_id for j in training.session_jobs(q)] == ["a", "b"]
    assert session[training.JOBS] == ["a", "b"]
    assert training.any_running(q)
    q.jobs["b"] = job("b", "error")
    assert not training.any_running(q)


def test_the_panel_shows_the_newest_running_training_else_the_latest():
    assert training.shown_job([job("a", "running"), job("b", "queued"), job("c", "done")]).job_id == "b"
    assert training.shown_job([job("a", "done"), job("b", "cancelled")]).job_id == "b"


def test_start_training_converts_the_form_and_counts_the_job(session):
    q = FakeQueue()
    form = dict(kind="vae", arch="mlp", latent_dim=2.0, hidden_text="64, 32", beta=1, batch_size=128.0, lr=None,
                seed=3.0, dataset="mnist", name="mine")
    assert training.start_training(q, **form, epochs=None, time_budget=60, data_dir="  ") == "job1"
    assert training.start_training(q, **form, epochs=5, time_budget=None, data_dir=" /data ") == "job2"
    (m1, t1, _, dir1, name), (_, t2, _, dir2, _) = q.submitted
    assert m1 == dict(kind="vae", arch="mlp", latent_dim=2, hidden=(64, 32), beta=1.0) and name == "mine"
    assert t1 == dict(epochs=None, time_budget=60.0, batch_size=128, lr=None, seed=3) and dir1 is None
    assert (t2["epochs"], t2["time_budget"], dir2) == (5, None, "/data")
    assert session[training.JOBS] == ["job1", "job2"]
    with pytest.raises(ValueError, match="whole numbers"):
        training.start_training(q, **{**form, "hidden_text": "lots"}, epochs=1, time_budget=None, data_dir=None)
    assert session[training.JOBS] == ["job1", "job2"]  # a refused training is not counted


def _flash_script():
    import streamlit as st

    from ui import training

    if level := st.session_state.pop("level", None):
        training.flash(level, f"a {level} message")
    training.show_flash()


@pytest.mark.parametrize("level", ["success", "info", "error"])
def test_a_flash_message_shows_once_at_its_level(level):
    at = AppTest.from_function(_flash_script, default_timeout=60)
    at.session_state["level"] = level
    at.run()
    assert not at.exception
    shown = {name: [e.value for e in getattr(at, name)] for name in ("success", "info", "error")}
    assert shown == {name: [f"a {level} message"] if name == level else [] for name in shown}
    at.run()
    assert not (at.success or at.info or at.error)  # shown once, then forgotten


def test_an_unknown_flash_level_is_refused(session):
    with pytest.raises(ValueError, match="success, info, error"):
        training.flash("warning", "hm")
    assert training.FLASH not in session
