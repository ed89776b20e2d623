"""The Train & library page under AppTest: it renders with the server's caps, every bad or out-of-range
setting gets one sentence and starts nothing, and the library actions (activate, rename, delete, upload)
work on a private model library. Who may change which model is in tests/test_identity.py. Then the page's
helpers in ui.training on their own: starting, listing and adopting trainings, one-off messages.

Each test has its own LATENT_LAB_HOME (tests/conftest.py), so saved models never leak. A session's
identity is its workspace id in session_state (ui.identity.WORKSPACE), as a browser's cookie gives it.
"""

from __future__ import annotations

from pathlib import Path

import re
import time
from types import SimpleNamespace

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from ui import identity, library, train_form, training
from ui.text import ZWSP, plain
from vae.checkpoint import ModelLibrary, checkpoint_bytes, default_library_dir
from vae.config import ModelConfig
from vae.models import build_model
from vae.paths import BUNDLED_MODELS, ROOT

PAGE = "pages/train.py"
ME = "A" * 32  # this session's secret workspace id (a browser's cookie)
MY_OWNER = identity.owner_of(ME)
HOSTILE = "**x** ![x](http://example.com/a.png) <b>bold</b>"  # a name that must stay text

page_test = pytest.mark.usefixtures("fresh_app", "stub_maps")  # no real t-SNE or UMAP here


def open_page(workspace: str = ME, **session) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state[identity.WORKSPACE] = workspace
    for k, v in session.items():
        at.session_state[k] = v
    at.switch_page(PAGE)
    at.run()
    assert not at.exception, at.exception
    return at


def tiny_model(kind: str = "ae"):
    return build_model(ModelConfig(kind=kind, arch="mlp", latent_dim=3, hidden=(16,)), seed=0)


def save_model(name: str, owner: str | None = MY_OWNER) -> str:
    entry = ModelLibrary(default_library_dir()).save(
        tiny_model(), name=name, owner=owner, dataset="mnist",
        metrics={"test_nats": 150.0, "kl_nats": 0.0, "active_units": 3, "knn_acc": 0.5})
    return entry.id


def texts(elements) -> str:
    """The elements' text as a reader sees it: Markdown escapes (ui.text.plain) read, zero-width spaces dropped."""
    return " | ".join(re.sub(r"\\(.)", r"\1", str(e.value)).replace(ZWSP, "") for e in elements)


@page_test
def test_page_renders_form_and_library_with_the_server_caps(monkeypatch):
    at = open_page()
    assert at.title[0].value.endswith("Train & library")
    assert at.button(key="train_start").label == "Start training"
    assert "Start training" in texts(at.info)  # the empty progress panel says what to do
    caps = training.queue().caps
    # the caps, said before Start
    assert f"at most {train_form.number_text(caps['max_train_seconds'])} seconds" in texts(at.caption)
    table = at.dataframe[0].value
    bundled = [e for e in ModelLibrary(default_library_dir(), BUNDLED_MODELS).entries() if e.bundled]
    assert list(table["Source"]).count("bundled") == len(bundled)
    assert not at.number_input(key="train_beta").disabled
    at.radio(key="train_kind").set_value("ae").run()
    assert at.number_input(key="train_beta").disabled  # β means nothing to an AE
    at.radio(key="train_stop").set_value("epochs").run()
    assert at.number_input(key="train_epochs").value == min(5, caps["max_epochs"])
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
    assert not training.queue().jobs(owner=MY_OWNER)


OUT_OF_RANGE = [  # (field, its key, a value the old bounded widgets silently replaced, the start of the sentence)
    ("time", "train_latent_dim", 1000, "Latent dimensions must be a whole number from 1 to 128; you typed 1000."),
    ("time", "train_latent_dim", 0, "Latent dimensions must be a whole number from 1 to 128; you typed 0."),
    ("time", "train_beta", 250.0, "β (KL weight) must be a number from 0 to 100; you typed 250."),
    ("time", "train_batch", 0, "Batch size must be a whole number from 1 to 8192; you typed 0."),
    ("time", "train_lr", 5.0, "Learning rate must be a number above 0 and at most 1, or empty for auto; you typed 5."),
    ("time", "train_seed", -1, "Seed must be a whole number from 0 to 4,294,967,295; you typed -1."),
    ("time", "train_budget", "cap+1", "Time budget (seconds) must be a whole number from 1 to {cap} on this server"),
    ("time", "train_budget", 0, "Time budget (seconds) must be a whole number from 1 to {cap} on this server; "
                                "you typed 0."),
    ("epochs", "train_epochs", 100_000, "Epochs must be a whole number from 1 to {epochs}"),
    ("time", "train_input_noise", 1.5, "Input noise (denoising) must be a number from 0 to 1; you typed 1.5."),
]


@page_test
def test_the_form_passes_its_input_noise_on(monkeypatch):
    sent = {}
    monkeypatch.setattr(training, "start_training", lambda q, owner, **form: sent.update(form) or "job1")
    at = open_page()
    assert at.number_input(key="train_input_noise").value == 0.0  # a plain model unless asked
    at.number_input(key="train_input_noise").set_value(0.5).run()
    at.button(key="train_start").click().run()
    assert not at.exception and sent["input_noise"] == 0.5


@pytest.mark.parametrize("stop, key, value, message", OUT_OF_RANGE)
@page_test
def test_an_out_of_range_field_stops_the_start_with_a_sentence(stop, key, value, message):
    at = open_page()
    q = training.queue()
    cap = train_form.time_budget_field(q.caps["max_train_seconds"]).high
    at.radio(key="train_stop").set_value(stop).run()
    at.number_input(key=key).set_value(cap + 1 if value == "cap+1" else value).run()
    assert at.number_input(key=key).value == (cap + 1 if value == "cap+1" else value)  # kept as typed, no clamping
    at.button(key="train_start").click().run()
    assert not at.exception
    assert message.format(cap=train_form.number_text(cap),
                          epochs=train_form.epochs_field(q.caps["max_epochs"]).high) in texts(at.error)
    assert not q.jobs(owner=MY_OWNER)  # nothing started


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
def test_custom_folder_must_be_inside_the_allowed_roots_and_exist(tmp_path, data_root):
    at = open_page()
    at.selectbox(key="train_dataset").set_value("custom").run()
    assert f"must be inside {data_root.resolve()}" in texts(at.caption)  # said before anyone presses Start
    at.text_input(key="train_custom_dir").set_value(str(tmp_path / "elsewhere")).run()
    at.button(key="train_start").click().run()
    assert not at.exception
    assert f"must be a folder inside {data_root.resolve()}" in texts(at.error)  # the core's sentence
    at.text_input(key="train_custom_dir").set_value(str(data_root / "no-such-folder")).run()
    at.button(key="train_start").click().run()
    assert "is not a folder" in texts(at.error)
    assert not training.queue().jobs(owner=MY_OWNER)


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
    assert "cannot be renamed or deleted" in texts(at.caption)
    assert not [b for b in at.button if b.key in ("train_delete", "train_rename")]
    assert [b for b in at.button if b.key == "train_activate"]  # but everyone may use it


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
    assert [(e.name, e.owner) for e in saved] == [("from a friend", MY_OWNER)]  # the uploader's
    assert at.session_state["active_model"] == saved[0].id
    assert "from a friend" in texts(at.success)
    assert stub_maps.warmed == [(saved[0].fingerprint, (10_000, 3))]  # its maps start in the background
    at.run()  # the same upload is not stored twice
    assert len(ModelLibrary(default_library_dir()).entries()) == 1


@page_test
def test_a_refused_cancel_is_a_sentence(monkeypatch):
    at = open_page()
    at.button(key="train_start").click().run()
    q = training.queue()

    def refuse(job_id, owner=None):
        raise ValueError("The training cluster did not answer within 10 s; try again in a minute.")

    monkeypatch.setattr(q, "cancel", refuse)
    at.button(key="train_cancel").click().run()
    assert not at.exception
    assert "The training cluster did not answer within 10 s; try again in a minute." in texts(at.error)
    at.run()  # said once
    assert "did not answer" not in texts(at.error)
    monkeypatch.undo()
    for job in q.jobs(owner=MY_OWNER):
        q.cancel(job.job_id, MY_OWNER)


@page_test
def test_your_trainings_wait_in_line_are_found_again_and_both_cancel():
    at = open_page()
    at.button(key="train_start").click().run()
    at.text_input(key="train_name").set_value(HOSTILE).run()
    at.button(key="train_start").click().run()
    q = training.queue()
    assert not at.exception and len(q.jobs(owner=MY_OWNER)) == 2
    assert "number 1" in texts(at.info)  # the newest job waits behind the first (one slot by default)
    (title,) = [m.value for m in at.markdown if m.value.startswith("#### ")]
    assert title == f"#### {plain(HOSTILE)}" and not at.get("imgs")  # the name is text, not Markdown
    caps = q.caps  # the panel restates what runs: the form's values, the server's caps
    assert (f"VAE · MLP · 2 latent dims · hidden 512,256 · β 1 · {caps['max_epochs']} epochs or 60 s, whichever "
            "ends first · batch 256 · learning rate auto (") in texts(at.caption)
    assert "· seed 0 · MNIST digits" in texts(at.caption)
    at.button(key="train_start").click().run()  # a third: over the per-person cap
    assert "per person" in texts(at.error) and len(q.jobs(owner=MY_OWNER)) == 2

    again = open_page()  # a reload (the same browser: the same workspace) finds both
    assert "number 1" in texts(again.info) and "Your other trainings (1)" in [e.label for e in again.expander]
    assert not [b for b in open_page("B" * 32).button if b.key == "train_cancel"]  # a classmate sees none

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
    assert not at.exception and len(training.queue().jobs(owner=MY_OWNER)) == 1
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
    monkeypatch.setattr(library.state, "set_active", ids.append)
    return ids


def job(job_id: str, state: str) -> SimpleNamespace:
    return SimpleNamespace(job_id=job_id, state=state, finished=state in ("done", "error", "cancelled"),
                           entry_id=f"model-{job_id}" if state == "done" else None)


class FakeQueue:
    caps = {"max_train_seconds": 600, "max_epochs": 50, "max_per_user": 2}

    def __init__(self):
        self.submitted = []

    def submit(self, model_cfg, train_cfg, dataset, data_dir, name, owner):
        self.submitted.append((model_cfg, train_cfg, dataset, data_dir, name, owner))
        return f"job{len(self.submitted)}"


def test_a_training_seen_running_becomes_active_exactly_once(session, activated):
    running = [job("a", "running"), job("b", "queued")]
    assert training.adopt_finished(running) == [] and activated == []

    ended = [job("a", "done"), job("b", "cancelled")]
    assert [j.job_id for j in training.adopt_finished(ended)] == ["a", "b"]
    assert activated == ["model-a"]  # a cancelled training saved nothing
    assert session[library.FOLLOW] is True  # the manage picker follows the new active model

    session.pop(library.FOLLOW)
    assert training.adopt_finished(ended) == []  # the next look: nothing new, nothing re-activated
    assert activated == ["model-a"] and library.FOLLOW not in session
    session[training.PENDING] = ["c"]  # started in this session (start_training counts it)
    assert [j.job_id for j in training.adopt_finished([*ended, job("c", "done")])] == ["c"]
    assert activated == ["model-a", "model-c"]


def test_trainings_that_ended_before_the_session_looked_are_not_reactivated(session, activated):
    # a reload, a new tab, a restarted server: the queue lists them, nobody re-activates an old model
    assert training.adopt_finished([job("old", "done"), job("new", "running")]) == []
    assert activated == [] and session[training.PENDING] == ["new"]


def test_the_panel_shows_the_newest_running_training_else_the_latest():
    assert training.shown_job([job("a", "running"), job("b", "queued"), job("c", "done")]).job_id == "b"
    assert training.shown_job([job("a", "done"), job("b", "cancelled")]).job_id == "b"


def test_start_training_checks_and_converts_the_form(session):
    q = FakeQueue()
    form = dict(kind="vae", arch="mlp", latent_dim=2.0, hidden_text="64, 32", beta=1, batch_size=128.0, lr=None,
                seed=3.0, dataset="mnist", name="mine")
    assert training.start_training(q, "me", **form, stop="time", epochs=None, time_budget=60, data_dir="  ") == "job1"
    assert training.start_training(q, "me", **form, stop="epochs", epochs=5, time_budget=60,
                                   data_dir=" /data ") == "job2"
    (m1, t1, _, dir1, name, owner), (_, t2, _, dir2, _, _) = q.submitted
    assert m1 == dict(kind="vae", arch="mlp", latent_dim=2, hidden=(64, 32), beta=1.0, input_noise=0.0)  # no noise
    assert name == "mine"
    assert t1 == dict(epochs=None, time_budget=60, batch_size=128, lr=None, seed=3) and dir1 is None
    assert (t2["epochs"], t2["time_budget"], dir2, owner) == (5, None, "/data", "me")  # only the chosen stop
    assert session[training.PENDING] == ["job1", "job2"]
    with pytest.raises(ValueError, match="whole numbers"):
        training.start_training(q, "me", **{**form, "hidden_text": "lots"}, stop="epochs", epochs=1, time_budget=None,
                                data_dir=None)
    with pytest.raises(ValueError, match="Epochs must be a whole number from 1 to 50 on this server; you typed 51."):
        training.start_training(q, "me", **form, stop="epochs", epochs=51, time_budget=None, data_dir=None)
    with pytest.raises(ValueError, match=r"Latent dimensions must be a whole number from 1 to 128; you typed 2\.5\."):
        training.start_training(q, "me", **{**form, "latent_dim": 2.5}, stop="time", epochs=None, time_budget=60,
                                data_dir=None)
    assert len(q.submitted) == 2 and session[training.PENDING] == ["job1", "job2"]  # refused: nothing queued


@pytest.mark.parametrize("field, value", [(train_form.LATENT_DIM, None), (train_form.BETA, float("nan")),
                                          (train_form.SEED, 2**32), (train_form.LEARNING_RATE, 0.0)])
def test_every_field_names_itself_and_its_range(field, value):
    with pytest.raises(ValueError) as e:
        field.check(value)
    assert str(e.value).startswith(field.rule()) and str(e.value).endswith(".") and "\n" not in str(e.value)
    assert train_form.LEARNING_RATE.check(None) is None  # empty: auto


def _flash_script():
    import streamlit as st

    from ui import library

    if level := st.session_state.pop("level", None):
        library.flash(level, f"a {level} message")
    library.show_flash()


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
        library.flash("warning", "hm")
    assert library.FLASH not in session


# ---------------------------------------------------------------- ONNX in and out on the page

def upload_pair(at: AppTest, encoder: bytes, decoder: bytes, **options) -> AppTest:
    if not at.toggle(key="train_onnx_open").value:  # the form is folded away until asked for
        assert not [u for u in at.get("file_uploader") if "train_onnx" in u.proto.id]
        at.toggle(key="train_onnx_open").set_value(True).run()
    at.file_uploader(key="train_onnx_encoder").set_value(("enc.onnx", encoder, "application/octet-stream"))
    at.file_uploader(key="train_onnx_decoder").set_value(("dec.onnx", decoder, "application/octet-stream"))
    for key, value in options.items():
        widget = at.text_input(key=f"train_onnx_{key}") if key == "name" else \
            at.selectbox(key=f"train_onnx_{key}") if key == "dataset" else at.radio(key=f"train_onnx_{key}")
        widget.set_value(value)
    at.run()
    assert not at.exception, at.exception
    at.button(key="train_onnx_import").click().run()
    assert not at.exception, at.exception
    return at


@page_test
def test_import_an_onnx_pair_on_the_page(stub_maps):
    pytest.importorskip("onnxruntime")
    from tests.test_onnx_hostile import GOOD_D, GOOD_E, encoder

    at = open_page()
    at.toggle(key="train_onnx_open").set_value(True).run()
    assert at.button(key="train_onnx_import").disabled  # both files first
    t0 = time.perf_counter()
    upload_pair(at, encoder(outputs=1), GOOD_D, name=HOSTILE, kind="ae", output="logits")
    print(f"upload to active model: {time.perf_counter() - t0:.2f} s")
    saved = ModelLibrary(default_library_dir()).entries()
    assert [(e.name, e.owner, e.config.kind, e.config.latent_dim) for e in saved] == [(HOSTILE, MY_OWNER, "ae", 4)]
    assert saved[0].path.suffix == ".onnxmodel" and saved[0].meta["files"] == ["enc.onnx", "dec.onnx"]
    assert saved[0].metrics["test_nats"] > 0 and "recon_nats" in saved[0].metrics  # measured, as the CLI does
    assert at.session_state["active_model"] == saved[0].id
    assert plain(HOSTILE) in [s.value for s in at.success][0]  # the name as text, not Markdown
    assert stub_maps.warmed and stub_maps.warmed[-1][0] == saved[0].fingerprint

    at.button(key="train_onnx_import").click().run()  # the same files and options again: stored once
    assert len(ModelLibrary(default_library_dir()).entries()) == 1
    upload_pair(at, GOOD_E, GOOD_D, kind="auto", output="auto", name="", dataset="fashion-mnist")
    second = ModelLibrary(default_library_dir()).entries()[0]
    assert (second.config.kind, second.meta["dataset"], second.name) == ("vae", "fashion-mnist", "VAE · ONNX · 4-d")
    assert at.session_state["active_model"] == second.id


@page_test
def test_a_refused_onnx_pair_gets_its_sentence_and_stores_nothing():
    pytest.importorskip("onnxruntime")
    from tests.test_onnx_hostile import CASES

    at = open_page()
    active = at.session_state["active_model"] if "active_model" in at.session_state else None
    for case in ("a pickle", "decoder returning 3x32x32", "mismatched latent sizes"):
        enc, dec, _, word = CASES[case]
        upload_pair(at, enc, dec)
        errors = [e.value for e in at.error]
        assert len(errors) == 1 and word in texts(at.error) and "\n" not in errors[0], (case, errors)
        assert list(default_library_dir().iterdir()) in ([], [default_library_dir() / "class-models.json"]), case
        assert (at.session_state["active_model"] if "active_model" in at.session_state else None) == active


@page_test
def test_export_a_model_as_onnx_then_import_it_back(stub_maps):
    """Export on the page (a child process; the zip kept in the cache), then the zip's two files through the
    upload: the imported model codes the test digits as the original does."""
    pytest.importorskip("onnxscript")
    import io
    import zipfile

    import numpy as np

    from vae.assets import bundled_test_set
    from vae.checkpoint import load_checkpoint
    from vae.latent import encode
    from vae.onnx import exports

    def onnx_downloads():
        return [b for b in at.get("download_button") if b.proto.id.endswith("-train_onnx_download")]

    at = open_page(train_pick="ae-2d")
    assert not onnx_downloads() and [b for b in at.button if b.key == "train_onnx_export"]
    t0 = time.perf_counter()
    at.button(key="train_onnx_export").click().run()
    print(f"export on the page: {time.perf_counter() - t0:.1f} s")
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert len(onnx_downloads()) == 1  # offered in the run that exported it
    native = next(e for e in ModelLibrary(default_library_dir(), BUNDLED_MODELS).entries() if e.id == "ae-2d")
    path = exports.cached(native.fingerprint)
    assert path is not None and path.parent == exports.folder()
    with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as z:
        assert sorted(z.namelist()) == ["decoder.onnx", "encoder.onnx"]
        enc, dec = z.read("encoder.onnx"), z.read("decoder.onnx")
    at.run()  # made once: the next run offers the download without exporting again
    assert not [b for b in at.button if b.key == "train_onnx_export"] and len(onnx_downloads()) == 1

    upload_pair(at, enc, dec, name="ae-2d back")
    entry = next(e for e in ModelLibrary(default_library_dir()).entries() if e.name == "ae-2d back")
    assert at.session_state["active_model"] == entry.id and entry.config.kind == "ae"
    x = bundled_test_set().x_test[:200]
    np.testing.assert_allclose(encode(load_checkpoint(entry.path)[0], x),
                               encode(load_checkpoint(native.path)[0], x), atol=1e-4)


@page_test
def test_a_jobs_folder_without_file_locks_is_one_sentence_not_a_traceback(monkeypatch):
    from ui import training
    from vae.jobfiles import NoFileLocks

    def refuse():
        raise NoFileLocks(Path("/shared/jobs"), OSError(37, "No locks available"))

    monkeypatch.setattr(training, "queue", refuse)
    at = open_page()
    assert "takes no file locks" in texts(at.error) and not at.exception
