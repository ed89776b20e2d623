"""Identity without accounts (ui.identity) and names as text (ui.text): the workspace id and its hash,
the teacher's proof, the secret's sources, the sidebar's Teacher expander under AppTest.

The browser side (the cookie written, a reload keeping the identity) is tests/e2e/test_classroom_e2e.py.
"""

from __future__ import annotations

import threading

import json
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from ui import identity
from ui.text import ZWSP, plain
from vae.paths import ROOT

HOSTILE_NAMES = ["![x](http://example.com/a.png)", "[link](http://x)", "<b>bold</b>", "**x**",
                 "# big", ":red[red] :material/home: $x^2$", "see www.example.org or me@example.org"]


@pytest.fixture
def browser_cookies(monkeypatch) -> dict:
    """The cookies the session's opening request carried (st.context.cookies), and a plain dict as
    st.session_state (outside a script run)."""
    cookies: dict = {}
    monkeypatch.setattr(identity, "_cookie", cookies.get)
    monkeypatch.setattr(st, "session_state", {})
    monkeypatch.delenv(identity.SECRET_ENV, raising=False)
    return cookies


def test_a_new_browser_gets_a_random_workspace_and_only_its_hash_is_the_owner(browser_cookies):
    me = identity.current()
    ws = st.session_state[identity.WORKSPACE]
    assert len(ws) >= 32 and me.owner == identity.owner_of(ws) and len(me.owner) == 16
    assert ws not in me.owner and me.actor.owner == me.owner and not me.teacher
    assert identity.current() == me  # the session keeps it
    st.session_state.clear()
    assert identity.current().owner != me.owner  # another browser: another workspace


def test_the_cookie_brings_the_workspace_back_and_a_bad_one_is_replaced(browser_cookies):
    ws = "A" * 32
    browser_cookies[identity.WORKSPACE_COOKIE] = ws
    assert identity.current().owner == identity.owner_of(ws)  # a reload: the same identity
    st.session_state.clear()
    browser_cookies[identity.WORKSPACE_COOKIE] = "short;evil"
    assert identity.workspace_id() != "short;evil"


def test_no_secret_no_teacher_and_no_secrets_file_is_fine(browser_cookies):
    assert identity.teacher_secret() is None  # no secrets.toml, no variable: no crash, no default password
    assert identity.login_providers() == []  # no [auth]: no "Log in" button
    assert not identity.become_teacher("") and not identity.become_teacher("admin")
    assert not identity.current().teacher


def test_wrong_guesses_queued_by_others_never_keep_the_teacher_waiting(browser_cookies, monkeypatch):
    monkeypatch.setenv(identity.SECRET_ENV, "sesame")
    browser_cookies[identity.WORKSPACE_COOKIE] = "D" * 32
    from streamlit.runtime.scriptrunner import add_script_run_ctx, get_script_run_ctx

    result = []
    attempt = threading.Thread(target=lambda: result.append(identity.become_teacher("sesame")), daemon=True)
    add_script_run_ctx(attempt, get_script_run_ctx())
    with identity._guesses():  # as while other sessions' wrong guesses take their turns
        attempt.start()
        attempt.join(5)
    assert result == [True] and identity.current().teacher


def test_the_teacher_proof_is_an_hmac_of_the_secret_and_this_identity(browser_cookies, monkeypatch):
    monkeypatch.setenv(identity.SECRET_ENV, "sesame")
    monkeypatch.setattr(identity, "WRONG_GUESS_PAUSE_S", 0.0)
    browser_cookies[identity.WORKSPACE_COOKIE] = ws = "B" * 32
    assert not identity.become_teacher("wrong") and not identity.current().teacher
    assert identity.become_teacher("sesame") and identity.current().teacher
    proof = st.session_state[identity.PROOF]
    assert proof == identity.teacher_proof("sesame", ws) and "sesame" not in proof

    st.session_state.clear()  # a reload: the cookie keeps the role
    browser_cookies[identity.TEACHER_COOKIE] = proof
    assert identity.current().teacher
    st.session_state.clear()  # the same cookie in another browser (another workspace) is worth nothing
    browser_cookies[identity.WORKSPACE_COOKIE] = "C" * 32
    assert not identity.current().teacher
    st.session_state.clear()  # nor once the secret has changed
    browser_cookies[identity.WORKSPACE_COOKIE] = ws
    monkeypatch.setenv(identity.SECRET_ENV, "new secret")
    assert not identity.current().teacher
    monkeypatch.setenv(identity.SECRET_ENV, "sesame")
    assert identity.current().teacher
    identity.leave_teacher()  # leaving wins over the cookie for the rest of the session
    assert not identity.current().teacher


def test_cookies_are_written_until_the_browser_has_them_and_a_leaving_teacher_is_cleared(browser_cookies,
                                                                                       monkeypatch):
    writes: list = []
    monkeypatch.setattr(identity, "_write_cookies", lambda **kw: writes.append(json.loads(kw["data"]["json"])))
    monkeypatch.setenv(identity.SECRET_ENV, "sesame")
    browser_cookies[identity.WORKSPACE_COOKIE] = ws = "E" * 32
    identity.sync_cookies()
    assert writes == []  # the browser already holds its workspace: nothing is mounted
    assert identity.become_teacher("sesame")
    identity.sync_cookies()
    proof = identity.teacher_proof("sesame", ws)
    assert writes[-1] == {"set": {identity.WORKSPACE_COOKIE: ws, identity.TEACHER_COOKIE: proof}, "clear": []}
    identity.leave_teacher()  # in the same session: the cookie written a moment ago must go too
    identity.sync_cookies()
    assert writes[-1] == {"set": {identity.WORKSPACE_COOKIE: ws}, "clear": [identity.TEACHER_COOKIE]}


def test_log_in_buttons_follow_the_auth_section(monkeypatch):
    sections = {"auth": {"redirect_uri": "u", "cookie_secret": "c", "client_id": "i"}}
    monkeypatch.setattr(identity, "_secret", sections.get)
    assert identity.login_providers() == [None]  # one default provider
    sections["auth"] = {"redirect_uri": "u", "cookie_secret": "c", "google": {"client_id": "g"},
                        "microsoft": {"client_id": "m"}}
    assert identity.login_providers() == ["google", "microsoft"]


def test_a_logged_in_user_is_the_identity(browser_cookies, monkeypatch):
    monkeypatch.setattr(identity, "_logged_in_user", lambda: ("user:abc", "Ada"))
    me = identity.current()
    assert me.owner == identity.owner_of("user:abc") and me.user == "Ada"


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_plain_escapes_every_markdown_special(name):
    text = plain(name)
    assert "\n" not in plain(name + "\n# heading")
    unescaped = [c for i, c in enumerate(text) if c in "![]()<>*#:$@" and (i == 0 or text[i - 1] != "\\")]
    assert unescaped == []
    assert text.replace("\\", "").replace(ZWSP, "") == name


# ---------------------------------------------------------------- the sidebar under AppTest

def open_app(**session) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    for k, v in session.items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, at.exception
    return at


def texts(elements) -> str:
    return " | ".join(str(e.value) for e in elements)


@pytest.mark.usefixtures("fresh_app", "stub_maps")
def test_sidebar_without_a_secret_says_how_to_enable_the_teacher(monkeypatch):
    monkeypatch.delenv(identity.SECRET_ENV, raising=False)
    at = open_app()
    assert identity.SECRET_ENV in texts(at.sidebar.caption)
    assert not [t for t in at.text_input if t.key == "identity_teacher_secret"]


@pytest.mark.usefixtures("fresh_app", "stub_maps")
def test_sidebar_teacher_login_wrong_then_right_then_leave(monkeypatch):
    monkeypatch.setenv(identity.SECRET_ENV, "sesame")
    monkeypatch.setattr(identity, "WRONG_GUESS_PAUSE_S", 0.0)
    at = open_app(**{identity.WORKSPACE: "D" * 32})
    assert "Your workspace" in texts(at.sidebar.caption)
    at.text_input(key="identity_teacher_secret").input("guess")
    at.button[[b.label for b in at.button].index("Enter teacher mode")].click().run()
    assert "not the teacher secret" in texts(at.sidebar.error)
    assert identity.PROOF not in at.session_state
    at.text_input(key="identity_teacher_secret").input("sesame")
    at.button[[b.label for b in at.button].index("Enter teacher mode")].click().run()
    assert not at.exception, at.exception
    assert at.session_state[identity.PROOF] == identity.teacher_proof("sesame", "D" * 32)
    assert "You are the teacher" in texts(at.sidebar.caption)
    at.button(key="identity_leave_teacher").click().run()
    assert at.session_state[identity.PROOF] == ""
    assert [t for t in at.text_input if t.key == "identity_teacher_secret"]


@pytest.mark.usefixtures("fresh_app", "stub_maps")
def test_teacher_secret_from_secrets_toml(monkeypatch):
    monkeypatch.delenv(identity.SECRET_ENV, raising=False)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.secrets["teacher_secret"] = "from-secrets"
    at.run()
    assert not at.exception, at.exception
    assert [t for t in at.text_input if t.key == "identity_teacher_secret"]  # the role exists


# ---------------------------------------------------------------- the classroom rules on Train & library

TEACHER_SECRET = "correct horse battery staple"


@pytest.fixture
def classroom(monkeypatch):
    """Page tests with a teacher secret on the server and no pause after a wrong guess."""
    monkeypatch.setenv(identity.SECRET_ENV, TEACHER_SECRET)
    monkeypatch.setattr(identity, "WRONG_GUESS_PAUSE_S", 0.0)


def state_library():
    from vae.checkpoint import ModelLibrary, default_library_dir
    from vae.paths import BUNDLED_MODELS

    return ModelLibrary(default_library_dir(), BUNDLED_MODELS)


def managed_keys(at) -> set:
    return {b.key for b in at.button} & {"train_rename", "train_delete", "train_pin"}


@pytest.mark.usefixtures("fresh_app", "stub_maps", "classroom")
def test_a_classmate_uses_but_cannot_rename_or_delete_anothers_model():
    from tests.test_page_train import ME, open_page, save_model

    model_id = save_model("Ada's VAE")  # trained by ME
    other = open_page("B" * 32)
    other.selectbox(key="train_pick").set_value(model_id).run()
    assert managed_keys(other) == set()  # nothing to rename, delete or pin
    assert "only whoever trained or uploaded it, or the teacher" in texts(other.caption)
    assert "a classmate's" in list(other.dataframe[0].value["Source"])
    other.button(key="train_activate").click().run()  # everyone may use every model
    assert other.session_state["active_model"] == model_id

    mine = open_page(ME)
    mine.selectbox(key="train_pick").set_value(model_id).run()
    assert managed_keys(mine) == {"train_rename", "train_delete"}  # the owner may; only the teacher pins
    assert "yours" in list(mine.dataframe[0].value["Source"])


@pytest.mark.usefixtures("fresh_app", "stub_maps", "classroom")
def test_the_teacher_renames_pins_and_deletes_anyones_model():
    from tests.test_page_train import open_page, save_model

    model_id = save_model("Ada's VAE")
    at = open_page("T" * 32, **{identity.PROOF: identity.teacher_proof(TEACHER_SECRET, "T" * 32)})
    at.selectbox(key="train_pick").set_value(model_id).run()
    assert managed_keys(at) == {"train_rename", "train_delete", "train_pin"}
    at.button(key="train_pin").click().run()
    lib = state_library()
    assert lib.get(model_id).class_model
    assert at.selectbox(key="sidebar_model").options[0] == "Ada's VAE"  # class models first in every picker
    assert at.selectbox(key="train_pick").options[0] == "Ada's VAE"
    at.text_input(key=f"train_rename_{model_id}").set_value("Class VAE").run()
    at.button(key="train_rename").click().run()
    assert lib.get(model_id).name == "Class VAE"
    at.checkbox(key=f"train_confirm_delete_{model_id}").check().run()
    at.button(key="train_delete").click().run()
    assert not at.exception
    assert model_id not in [e.id for e in lib.entries()]


@pytest.mark.usefixtures("fresh_app", "stub_maps", "classroom")
def test_a_refusal_is_one_sentence_and_loses_nothing():
    from tests.test_page_train import ME, open_page, save_model

    teacher = identity.Actor("teacher", teacher=True)
    state_library().set_class_model(save_model("Class VAE", owner=None), True, teacher)
    model_id = save_model("mine for now")
    at = open_page(ME)
    at.selectbox(key="train_pick").set_value(model_id).run()
    at.text_input(key=f"train_rename_{model_id}").set_value("class vae").run()
    at.button(key="train_rename").click().run()  # a class model's name is reserved
    assert not at.exception
    assert [e.value for e in at.error] == [plain("“class vae” is the name of a class model; choose another name.")]
    assert at.text_input(key=f"train_rename_{model_id}").value == "class vae"  # what was typed stays
    assert state_library().get(model_id).name == "mine for now"

    at.text_input(key=f"train_rename_{model_id}").set_value("my new name").run()
    state_library().set_class_model(model_id, True, teacher)  # meanwhile the teacher pins it: theirs to change now
    at.button(key="train_rename").click().run()  # the click that was already on its way
    assert not at.exception
    assert [e.value for e in at.error] == [plain("Only the teacher can rename a class model.")]
    assert state_library().get(model_id).name == "mine for now"
    assert "only the teacher can rename or delete it" in texts(at.caption)  # and the panel says why


@pytest.mark.usefixtures("fresh_app", "stub_maps")
@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_names_are_never_rendered_as_markup(name):
    from tests.test_page_train import ME, open_page, save_model

    model_id = save_model(name)
    at = open_page(ME, active_model=model_id)
    at.selectbox(key="train_pick").set_value(model_id).run()
    at.session_state["active_model"] = "vae-2d"
    at.run()
    at.button(key="train_activate").click().run()  # its flash message names it
    assert not at.exception, at.exception
    shown = [m.value for m in [*at.markdown, *at.caption, *at.success, *at.info, *at.error]]
    assert f"**{plain(name)}**" in [m.value for m in at.sidebar.markdown]  # the sidebar names the active model
    assert f"**{plain(name)}** is now the active model." in [s.value for s in at.success]
    assert not [v for v in shown if name in v and plain(name) not in v]  # wherever it shows, escaped
    assert not at.get("imgs")  # no picture from a name


def test_the_active_model_is_remembered_in_a_cookie_and_a_hostile_one_is_ignored(browser_cookies, monkeypatch):
    writes: list = []
    monkeypatch.setattr(identity, "_write_cookies", lambda **kw: writes.append(json.loads(kw["data"]["json"])))
    browser_cookies[identity.WORKSPACE_COOKIE] = "F" * 32
    identity.sync_cookies("vae-16d")
    assert writes[-1]["set"][identity.MODEL_COOKIE] == "vae-16d"
    identity.sync_cookies("x; Domain=evil.example")  # never written as a cookie
    assert identity.MODEL_COOKIE not in writes[-1]["set"]
    browser_cookies[identity.MODEL_COOKIE] = "ae-2d"
    assert identity.last_model() == "ae-2d"  # what a new session without ?model= starts on
    for bad in ("../etc/passwd", "a b", "x" * 121, "ae-2d\n"):
        browser_cookies[identity.MODEL_COOKIE] = bad
        assert identity.last_model() is None
