"""Who is using this browser, without accounts: a workspace id per browser, and the teacher role.

    me = identity.current()      # Identity(owner, teacher, ...): me.actor is what vae.checkpoint asks for
    identity.sidebar_panel()     # the sidebar's "You" line, log in/out where configured, the Teacher expander

- **Workspace.** Each browser gets a random secret id (`secrets.token_urlsafe(24)`), kept in the cookie
  `latent_lab_workspace` for a year (never in the URL: a lesson link carries no identity). The core
  only ever sees `owner = sha256(id)[:16]`, so no file on the server reveals a student's secret.
- **Log in.** Where the server has an identity provider (`[auth]` in secrets.toml), a logged-in user is
  the identity instead: `owner = sha256("user:" + sub or email)[:16]`.
- **Teacher.** The secret is `st.secrets["teacher_secret"]` or `$LATENT_LAB_TEACHER_SECRET`; without one
  there is no teacher. Whoever types it gets, besides the session's role, the cookie `latent_lab_teacher`
  = HMAC-SHA256(secret, "teacher:" + identity), which keeps the role across reloads and is worth nothing
  in another browser (another identity) or once the secret changes. Nothing of this is kept on the server:
  replicas sharing the secret (deploy/README.md) recognise the same cookies, and wrong guesses take turns
  through a lock file in $LATENT_LAB_HOME, so the pause holds across replicas.

Streamlit reads cookies only from the request that opened the session (`st.context.cookies`); they are
written by a tiny component (ui/identity.js) that sets `document.cookie` in the page. Within a session
`st.session_state` holds the id and the teacher proof, so a reload or a new tab finds the cookie and a
session never changes identity midway.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from ui.components import component
from ui.text import plain
from vae.checkpoint import default_library_dir
from vae.fileio import file_lock
from vae.ownership import Actor, is_library_id

WORKSPACE_COOKIE = "latent_lab_workspace"
TEACHER_COOKIE = "latent_lab_teacher"
MODEL_COOKIE = "latent_lab_model"  # the model this browser last had active (ui.state falls back on it)
SECRET_ENV = "LATENT_LAB_TEACHER_SECRET"
WRONG_GUESS_PAUSE_S = 1.5  # after each wrong teacher secret, server-wide (see _guesses)

# session_state keys
WORKSPACE = "identity_workspace"  # this browser's secret workspace id
PROOF = "identity_teacher_proof"  # the teacher proof this session holds ("" once it left the role)
WRITING = "identity_writing"  # this session writes the cookies (in every run, once it has started to)

_VALID_ID = re.compile(r"[A-Za-z0-9_-]{32,64}")  # what token_urlsafe(24) makes; anything else is replaced

_write_cookies = component("latent_lab.identity_cookies", "identity")


@dataclass(frozen=True)
class Identity:
    """The person behind this session, as the core and the pages need them."""

    owner: str  # sha256 of the secret workspace id (or the logged-in user), 16 hex digits
    teacher: bool
    user: str | None = None  # the logged-in user's name or email; None for a browser workspace

    @property
    def actor(self) -> Actor:
        return Actor(self.owner, teacher=self.teacher)


def owner_of(principal: str) -> str:
    """The owner id the core stores: a hash, so no model file reveals the secret it comes from."""
    return hashlib.sha256(principal.encode()).hexdigest()[:16]


def teacher_proof(secret: str, principal: str) -> str:
    """What the teacher cookie holds for this identity: HMAC-SHA256(secret, "teacher:" + identity)."""
    return hmac.new(secret.encode(), f"teacher:{principal}".encode(), hashlib.sha256).hexdigest()


def _secret(key: str):
    """A value from st.secrets, or None: no secrets file (or an unreadable one) is not an error here."""
    try:
        return st.secrets.get(key)
    except FileNotFoundError:  # StreamlitSecretNotFoundError: no secrets.toml, or one that does not parse
        return None


def teacher_secret() -> str | None:
    """The teacher secret from secrets.toml, else the environment; None (no teacher role) when neither is set."""
    value = _secret("teacher_secret") or os.environ.get(SECRET_ENV)
    return str(value) if value else None


def login_providers() -> list[str | None]:
    """The identity providers of secrets.toml's [auth] that a "Log in" button can use (None: its default
    one); none without [auth]."""
    auth = _secret("auth")
    if not isinstance(auth, Mapping):
        return []
    named = [k for k, v in auth.items() if isinstance(v, Mapping)]
    return [None] if "client_id" in auth or not named else named


def _logged_in_user() -> tuple[str, str] | None:
    """(principal, display name) of the user logged in through st.login, else None."""
    user = st.user  # empty outside a script run; is_logged_in only where [auth] is configured
    if not user.get("is_logged_in"):
        return None
    key = user.get("sub") or user.get("email")
    if not key:
        return None
    return f"user:{key}", str(user.get("name") or user.get("email") or "you")


def _cookie(name: str) -> str | None:
    """A cookie of the request that opened the session (AppTest has no request: its stand-in is no text)."""
    value = st.context.cookies.get(name)
    return value if isinstance(value, str) else None


def last_model() -> str | None:
    """The library id of the model this browser last had active (its cookie), if any: what a new session
    opened without a `?model=` starts on, e.g. a page whose server restarted (deploy/README.md)."""
    value = _cookie(MODEL_COOKIE)
    return value if is_library_id(value) else None


def workspace_id() -> str:
    """This browser's secret workspace id: the session's, else the cookie's, else a new one."""
    ws = st.session_state.get(WORKSPACE)
    if not ws:
        ws = _cookie(WORKSPACE_COOKIE) or ""
        if not _VALID_ID.fullmatch(ws):
            ws = secrets.token_urlsafe(24)
        st.session_state[WORKSPACE] = ws
    return ws


def _principal() -> tuple[str, str | None]:
    user = _logged_in_user()
    return user if user else (workspace_id(), None)


def current() -> Identity:
    """Who this session is: its owner id, whether it holds the teacher role, the logged-in user if any."""
    principal, user = _principal()
    secret = teacher_secret()
    proof = st.session_state.get(PROOF)
    if proof is None:
        proof = _cookie(TEACHER_COOKIE) or ""
    teacher = bool(secret) and hmac.compare_digest(proof.encode(), teacher_proof(secret, principal).encode())
    return Identity(owner_of(principal), teacher, user)


@st.cache_resource(show_spinner=False)
def _guesses() -> threading.Lock:
    """One teacher-secret check at a time for the whole server, a wrong one followed by a pause while it is
    held: guessing stays slow however many tabs or browsers try at once."""
    return threading.Lock()


def become_teacher(typed: str) -> bool:
    """Check a typed teacher secret; on success this session (and, by its cookie, this browser) is the teacher."""
    secret = teacher_secret()
    if not secret or not typed:
        return False
    principal, _ = _principal()
    if hmac.compare_digest(typed.encode(), secret.encode()):
        # Checked outside the lock: students queueing wrong guesses never keep the teacher waiting.
        st.session_state[PROOF] = teacher_proof(secret, principal)
        return True
    with _guesses(), file_lock(_guesses_file()):  # wrong guesses take turns, each followed by the pause, on
        time.sleep(WRONG_GUESS_PAUSE_S)                 # every replica that shares LATENT_LAB_HOME too
    return False


def _guesses_file() -> Path:
    """The lock file that makes wrong guesses take turns across replicas: in the folder they share."""
    home = default_library_dir().parent
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass  # file_lock then holds nothing: the in-process lock still does
    return home / ".teacher-guesses.lock"


def leave_teacher() -> None:
    st.session_state[PROOF] = ""


def sync_cookies(active_model: str | None = None) -> None:
    """Write the cookies this browser should hold (with the active model's id, when given). Mounted where
    the ones it opened the session with differ (a first visit, a new teacher, one who left, another model),
    and from then on in every run of the session, so that a change later in the same session (leaving
    teacher mode) reaches the browser too."""
    wanted: dict[str, str] = {}
    if is_library_id(active_model):
        wanted[MODEL_COOKIE] = active_model
    if _logged_in_user() is None:
        wanted[WORKSPACE_COOKIE] = workspace_id()
    proof = st.session_state.get(PROOF)
    if proof is not None:
        wanted[TEACHER_COOKIE] = proof
    if st.session_state.get(WRITING) or any(_cookie(k) != (v or None) for k, v in wanted.items()):
        st.session_state[WRITING] = True
        put = {k: v for k, v in wanted.items() if v}
        _write_cookies(key="identity_cookies", height=0, data={"json": json.dumps({"set": put, "clear": sorted(set(wanted) - set(put))})})


def _teacher_form(me: Identity) -> None:
    if me.teacher:
        st.caption("You are the teacher in this browser: you can rename and delete every saved model, "
                   "and pin class models, which every picker shows first.")
        st.button("Leave teacher mode", key="identity_leave_teacher", on_click=leave_teacher,
                  icon=":material/logout:")
        return
    if teacher_secret() is None:
        st.caption(f"No teacher role on this server. To enable it, set `{SECRET_ENV}` in the server's "
                   "environment (or `teacher_secret` in `.streamlit/secrets.toml`) and restart it.")
        return
    with st.form("identity_teacher_form", clear_on_submit=True, border=False):
        typed = st.text_input("Teacher secret", type="password", key="identity_teacher_secret")
        sent = st.form_submit_button("Enter teacher mode", icon=":material/school:")
    if sent:
        if become_teacher(typed):
            st.rerun()  # the whole page: every manage button follows the new role
        st.error("That is not the teacher secret.", icon=":material/lock:")


def sidebar_panel(active_model: str | None = None) -> None:
    """The sidebar's identity corner: who you are, log in or out where configured, the Teacher expander."""
    me = current()
    if me.user is not None:
        st.caption(f"Logged in as {plain(me.user)}. Models you train or upload are yours to rename or delete.")
        if st.button("Log out", key="identity_logout", icon=":material/logout:"):
            st.logout()
    else:
        st.caption(f"Your workspace: **{me.owner[:6]}** (kept in this browser). Models you train or upload "
                   "are yours to rename or delete.")
        for provider in login_providers():
            label = "Log in" if provider is None else f"Log in with {provider}"
            if st.button(label, key=f"identity_login_{provider or 'default'}", icon=":material/login:"):
                st.login(provider)
    with st.expander("Teacher", icon=":material/school:", expanded=False):
        _teacher_form(me)
    sync_cookies(active_model)
