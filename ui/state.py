"""Streamlit-aware glue between the pages and the `vae` core: cached resources and the active model.

Models and services are `st.cache_resource` (shared by every session, never mutated after
loading); arrays are `st.cache_data`; a session holds only small values in `st.session_state`
(the active model's id, the picked digits). Pages call these helpers and render.

The active model is also in the address, `?model=<library id>` on every page (ui/links.py keeps the
rest of a page's view there): a lesson link or a reload opens that model, and picking another one
(`set_active`) rewrites it.

This module imports no torch: every run imports it, the server's first run included, and the
Welcome page with its sidebar draws from the library's metadata and a bundled picture. torch
(1.7 s to import) comes with the first helper that needs it, or from ui.warmup's background
import, started with the server, whichever is first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from ui import identity
from ui.text import plain
from vae.assets import MAPS_DIR, preview_path
from vae.checkpoint import CheckpointError, ModelLibrary, default_library_dir
from vae.ownership import Entry
from vae.paths import BUNDLED_MODELS
from vae.maps.service import MapService, MapStore
from vae.paths import cache_dir

if TYPE_CHECKING:
    from vae.classifier import DigitClassifier
    from vae.data import Dataset
    from vae.models import AutoEncoder

DEFAULT_MODEL = "vae-2d"
ACTIVE = "active_model"  # session_state key: the active model's library id
PICKS = "picked_digits"  # session_state key: test-set indices picked on the map
SENT = "sent_code"  # session_state: (z as a list, label, fingerprint) from ui.state.set_sent_code
MODEL_PARAM = "model"  # the address's parameter naming the active model
_IN_ADDRESS = "model_in_address"  # session_state key: the model id this session last wrote to the address


@st.cache_resource(show_spinner=False)
def library() -> ModelLibrary:
    return ModelLibrary(default_library_dir(), BUNDLED_MODELS)


@st.cache_resource(show_spinner=False, on_release=MapService.close)
def map_service() -> MapService:
    """The server's map service. Made after the first page is drawn (app.py), when it starts its
    worker processes (vae.maps.worker, below the server's CPU priority) and loads their libraries
    (numba compiles UMAP once per machine, cached on disk) before anyone asks for a map. Clearing
    the cache closes it, workers and all, before a new one starts."""
    service = MapService(MapStore(cache_dir() / "maps", readonly_dirs=[MAPS_DIR]), isolate=True)
    service.prestart()
    return service


@st.cache_resource(show_spinner=False, max_entries=24)
def _load(path: str, fingerprint: str) -> tuple[AutoEncoder, dict]:
    from vae.checkpoint import load_checkpoint

    model, meta = load_checkpoint(path)
    model.requires_grad_(False)
    return model, meta


@st.cache_resource(show_spinner=False)
def classifier() -> DigitClassifier:
    """The bundled digit classifier (raises CheckpointError with a sentence when it is missing)."""
    from vae.classifier import load_classifier

    clf = load_classifier()
    clf.requires_grad_(False)
    return clf


@st.cache_resource(show_spinner=False)
def classifier_fingerprint() -> str:
    """A hash of the classifier's weights (vae.classifier.fingerprint): the key of its stored scores."""
    from vae.classifier import fingerprint

    return fingerprint(classifier())


NO_CLASSIFIER = ("The digit classifier is missing, so the \"looks like a digit\" scores are off; rebuild it with "
                 "`python -m vae.classifier` (see assets/README.md).")


def scorer(dataset: str = "mnist") -> tuple[DigitClassifier | None, str]:
    """The digit classifier and "", or None and the sentence saying why there are no scores (it is missing,
    or the model draws something other than digits); pages then show images without scores."""
    if dataset != "mnist":
        return None, (f"The \"looks like a digit\" scores are off: the classifier judges handwritten digits, and "
                      f"this model was trained on {dataset}.")
    try:
        return classifier(), ""
    except CheckpointError:
        return None, NO_CLASSIFIER


@st.cache_resource(show_spinner="Loading the test digits…")
def test_data(name: str) -> Dataset:
    from vae.assets import test_set

    return test_set(name)


@dataclass
class Active:
    """The active model and what every page needs of it."""

    entry: Entry
    model: AutoEncoder
    meta: dict
    fingerprint: str

    @property
    def config(self):
        return self.model.config

    @property
    def dataset(self) -> str:
        return self.meta.get("dataset", "mnist")


def entries() -> list[Entry]:
    return library().entries()


def active_entry() -> Entry | None:
    """The active model's library entry, without loading its weights (or torch)."""
    entry_id = active_id()
    return next((e for e in entries() if e.id == entry_id), None)


@st.cache_data(show_spinner=False, max_entries=32)
def _decoded_preview(entry_id: str, fingerprint: str) -> bytes:
    from vae.images import png_bytes
    from vae.latent import prior_preview

    return png_bytes(prior_preview(get_model(entry_id).model))


def prior_preview(entry: Entry) -> bytes:
    """The Welcome page's picture of prior samples (PNG): a bundled model's from assets/previews,
    any other model's decoded (and cached). Raises CheckpointError for a broken model."""
    fingerprint = entry.fingerprint
    try:
        return preview_path(fingerprint).read_bytes()
    except OSError:
        return _decoded_preview(entry.id, fingerprint)


def set_active(entry_id: str) -> None:
    """Make a model the session's active one (picked, trained, uploaded or loaded), name it in the
    address and start its default maps in the background."""
    st.session_state[ACTIVE] = entry_id
    st.session_state.pop(PICKS, None)
    st.query_params[MODEL_PARAM] = st.session_state[_IN_ADDRESS] = entry_id
    warm_maps(entry_id)


def active_id() -> str | None:
    """The active model's id, kept in the address: a `?model=` this session did not write itself (a
    lesson link, a reload) picks the model; an unknown one is replaced, with a notice."""
    ids = [e.id for e in entries()]
    in_address = st.query_params.get(MODEL_PARAM)
    if in_address is not None and in_address != st.session_state.get(_IN_ADDRESS):
        if in_address in ids:
            if in_address != st.session_state.get(ACTIVE):
                st.session_state.pop(PICKS, None)  # picks of another model; the link's own come with the page
            st.session_state[ACTIVE] = in_address
        else:
            st.toast(plain(f"This link's model “{in_address[:40]}” is not in the library (any more), so "
                               "another one is shown."), icon=":material/link_off:")
    # A new session opened without ?model= (a page switch after its server restarted, a bare address)
    # starts on the model this browser last had active, else the default.
    wanted = st.session_state.get(ACTIVE) or identity.last_model() or DEFAULT_MODEL
    if wanted not in ids:
        wanted = DEFAULT_MODEL if DEFAULT_MODEL in ids else (ids[0] if ids else None)
    if wanted is not None and in_address != wanted:
        st.query_params[MODEL_PARAM] = wanted
    st.session_state[_IN_ADDRESS] = wanted
    return wanted


def get_model(entry_id: str) -> Active:
    entry = library().get(entry_id)
    fp = entry.fingerprint
    model, meta = _load(str(entry.path), fp)
    return Active(entry, model, meta, fp)


def warm_maps(entry_id: str) -> None:
    """Start a model's default maps in the background, so the map page finds them under way or done."""
    from vae.data import DataError

    try:
        a = get_model(entry_id)
        map_service().warm_up(a.fingerprint, codes(a.fingerprint, a.dataset, a.model)[0])
    except (CheckpointError, DataError):
        pass  # the map page computes maps on demand and explains why when it cannot


def active() -> Active | None:
    """The active model, or None (with a message already shown) when there is none or it is broken."""
    entry_id = active_id()
    if entry_id is None:
        return None
    try:
        return get_model(entry_id)
    except CheckpointError as e:
        st.error(f"The active model could not be loaded: {plain(e)}")
        return None


def require_active() -> Active:
    """The active model, or a call to action and `st.stop()`."""
    a = active()
    if a is None:
        st.info("No model is loaded yet. Train one or pick one on **Train & library**.", icon=":material/arrow_back:")
        st.page_link("pages/train.py", label="Go to Train & library", icon=":material/model_training:")
        st.stop()
    return a


def require_test_data(a: Active) -> Dataset:
    from vae.data import DataError

    try:
        return test_data(a.dataset)
    except DataError as e:
        st.warning(f"This model was trained on **{plain(a.dataset)}**, whose test digits are not here. "
                   + plain(e))
        st.stop()


@st.cache_data(show_spinner="Encoding the test digits…", max_entries=32)
def codes(fingerprint: str, dataset: str, _model: AutoEncoder) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means and log-variances of the whole test split. ((N, D), (N, D))"""
    from vae.latent import encode

    return encode(_model, test_data(dataset).x_test, with_logvar=True)


def active_codes(a: Active) -> np.ndarray:
    return codes(a.fingerprint, a.dataset, a.model)[0]


def picks() -> list[int]:
    return list(st.session_state.get(PICKS, []))


def set_picks(indices) -> None:
    st.session_state[PICKS] = [int(i) for i in indices][:500]


def sent_code() -> tuple[np.ndarray, str, str] | None:
    """A latent code sent from another page (a point clicked on empty map space, a drawn digit), for the
    Sliders start and an Interpolate endpoint: (z (D,), label shown to the user, fingerprint of the model
    it belongs to), or None. A code belongs to one model: pages ignore it for any other."""
    held = st.session_state.get(SENT)
    return None if held is None else (np.asarray(held[0], np.float32), str(held[1]), str(held[2]))


def set_sent_code(z, label: str, fingerprint: str) -> None:
    """Keep `z` as the code the next page starts from (one per session; a new one replaces it)."""
    z = np.asarray(z, np.float32).reshape(-1)
    if not np.all(np.isfinite(z)):
        raise ValueError("That point has no finite code, so it cannot be sent.")
    st.session_state[SENT] = (z.tolist(), str(label)[:80], str(fingerprint))
