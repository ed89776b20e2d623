"""The hover card of the maps (ui/map_hover.js): next to the cursor, the hovered test digit and, where a
page sends its maps' decoders, the decoded image of the point under the cursor (over empty space too),
scored by the digit classifier, all computed in the browser.

    hover_card.hover_digits(dataset)   # once per page, after its maps: the hovered digit only

    # Latent map (pages/map.py; job.key is the map_chart id):
    hover_card.hover_digits(a.dataset, [hover_card.decode_spec(a, "map_scatter", method, z, y, map_id=job.key)])

    # Interpolate (p, y = explore.plane(a)):
    hover_card.hover_digits(a.dataset, [hover_card.decode_spec(a, "interp_map", p.name, state.active_codes(a), y,
                                                               projection=p, map_id=f"{a.fingerprint}-{p.name}")])

    # AE vs VAE (two maps, linked: hovering either shows the same point decoded by both models):
    specs = [hover_card.decode_spec(m, f"compare_map_{k}", p.name, state.active_codes(m), y, projection=p,
                                    label=f"{m.config.kind.upper()} · {m.entry.name}", map_id=f"{m.fingerprint}-{p.name}")
             for k, (m, (p, y)) in enumerate(zip(models, planes))]
    hover_card.hover_digits(models[0].dataset, specs, linked=True)

A spec says how a map point becomes a code: the native plane and PCA exactly (code = mean + [x, y] @
components; PCA's plane is the one `vae.maps.projection.make_projection("pca").fit(codes)` finds, the
map service's), t-SNE and UMAP approximately (the inverse-distance-weighted mean of the codes of the 8
nearest dots, vae.maps.neighbours.approx_codes, in JavaScript). The browser gets the decoders (vae.export,
float16, as the Sliders page), the classifier (once: its bytes never change, and Streamlit does not
resend a message the browser has) and, for t-SNE/UMAP, the test codes as float16 and the map positions.
Digit images are not in the map; the card fetches them in sprite sheets the first time one of a sheet is
hovered, and the browser keeps them for the whole visit.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from ui import state
from ui.components import component
from vae.images import SPRITE_CHUNK, SPRITE_COLS, sprite_chunks, sprite_png

if TYPE_CHECKING:
    from vae.maps.projection import Projection

K = 8  # nearest dots blended on a t-SNE / UMAP map (vae.maps.neighbours.approx_codes's default)
PLANES = ("native", "pca", "approx")


@dataclass(frozen=True, eq=False)
class DecodeSpec:
    """How the card decodes one map: a map point (x, y) -> a code -> the model's decoder.

    plane "native" / "pca": code = mean + [x, y] @ components, exactly. "approx" (t-SNE, UMAP): the
    inverse-distance-weighted mean of the codes of the K nearest dots of `positions`, the dot's own code on
    a dot. `map_id`: the map_chart id of the map this is for; the card does not decode another map under
    the same key (the moment a page switches methods, before the new spec arrives)."""

    map_key: str  # the map_chart key
    label: str  # shown above the decoded image
    fingerprint: str
    decoder: bytes  # ui.decoder_component.packed_decoder(fingerprint, model)
    plane: str
    latent_dim: int
    mean: np.ndarray | None = None  # (D,)
    components: np.ndarray | None = None  # (2, D)
    codes: np.ndarray | None = None  # (N, D) float16, approx only
    positions: np.ndarray | None = None  # (N, 2) float32 map positions of those codes, approx only
    map_id: str | None = None

    def __post_init__(self):
        if self.plane not in PLANES:
            raise ValueError(f"A map's plane is one of {', '.join(PLANES)}, not {self.plane!r}.")
        if self.plane == "approx":
            if self.codes is None or self.positions is None or len(self.codes) != len(self.positions):
                raise ValueError("An approximate map needs its codes and their map positions, one per dot.")
        elif self.mean is None or self.components is None or np.shape(self.components) != (2, self.latent_dim):
            raise ValueError(f"A {self.plane} plane needs its mean ({self.latent_dim},) and components "
                             f"(2, {self.latent_dim}).")

    def to_codes(self, points) -> np.ndarray:
        """The codes (M, D) under map points (M, 2), as the browser computes them (for tests and pages)."""
        points = np.asarray(points, np.float64).reshape(-1, 2)
        if self.plane != "approx":
            return (self.mean + points @ self.components).astype(np.float32)
        from vae.maps.neighbours import approx_codes

        return approx_codes(self.positions, self.codes.astype(np.float32), points, k=K)


def plane_of(method: str, codes: np.ndarray, embedding: np.ndarray, projection: Projection | None = None):
    """(kind, mean (D,), components (2, D)) of the map's exact inverse, or ("approx", None, None).

    native: the first two latent dimensions (a 1-d model's plane has a second axis that is not in its code).
    pca: `projection` where the page has the fitted one, else the PCA of `codes` (the map service's); it is
    used only where it reproduces `embedding`, so a card never decodes a plane other than the one drawn."""
    d = codes.shape[1]
    if method == "native":
        comps = np.zeros((2, d))
        comps[0, 0] = 1.0
        if d > 1:
            comps[1, 1] = 1.0
        return "native", np.zeros(d), comps
    if method != "pca":
        return "approx", None, None
    if projection is None or not hasattr(projection, "components_"):
        projection = _pca(codes)
    comps = np.zeros((2, d))
    comps[:len(projection.components_)] = projection.components_  # a 1-d model's PCA has one component
    mean = np.asarray(projection.mean_, np.float64)
    drawn = np.asarray(embedding, np.float64)
    if drawn.shape != (len(codes), 2):
        return "approx", None, None
    spread = float(np.abs(drawn).max()) if drawn.size else 0.0
    if not np.allclose((codes - mean) @ comps.T, drawn, rtol=0, atol=1e-4 * (1.0 + spread)):
        return "approx", None, None  # not this PCA plane: decode it as a map without an inverse
    return "pca", mean, comps


def _pca(codes: np.ndarray):
    from vae.maps.projection import make_projection

    return make_projection("pca").fit(codes)


@st.cache_data(show_spinner=False, max_entries=32)
def _pca_of(fingerprint: str, n: int, _codes: np.ndarray):
    """The PCA of a model's test codes, once per model (a few ms of SVD, on every hover-card rerun otherwise)."""
    return _pca(_codes)


def decode_spec(a: state.Active, map_key: str, method: str, codes: np.ndarray, embedding: np.ndarray,
                label: str | None = None, projection: Projection | None = None,
                map_id: str | None = None) -> DecodeSpec | None:
    """The spec for the map `map_key` of model `a` drawn by `method` ("native", "pca", "tsne", "umap"):
    `codes` (N, D) are the model's test codes, `embedding` (N, 2) their places on the map. None for a model
    whose decoder cannot run in a browser (an imported ONNX graph): the card then shows the hovered digit."""
    from ui.decoder_component import packed_decoder

    if not getattr(a.model, "runs_in_browser", True):
        return None

    codes = np.asarray(codes, np.float32)
    if method == "pca" and projection is None:
        projection = _pca_of(a.fingerprint, len(codes), codes)
    kind, mean, comps = plane_of(method, codes, embedding, projection)
    extra = {}
    if kind == "approx":
        extra = {"codes": codes.astype(np.float16), "positions": np.asarray(embedding, np.float32)}
    return DecodeSpec(map_key, label if label is not None else a.entry.name, a.fingerprint,
                      packed_decoder(a.fingerprint, a.model), kind, codes.shape[1], mean=mean, components=comps,
                      map_id=map_id, **extra)


def bundle(specs: list[DecodeSpec], linked: bool = False, threshold: float | None = None) -> bytes:
    """The maps' specs as one blob for the browser (vae.export.pack_parts): a header with each map's plane,
    the decoders (once per model) and, for approximate maps, codes and positions."""
    from vae.classifier import CONFIDENT
    from vae.export import pack_parts

    threshold = CONFIDENT if threshold is None else threshold
    parts, maps, decoders = {}, [], {}
    for i, s in enumerate(specs):
        name = decoders.setdefault(s.fingerprint, f"decoder-{len(decoders)}")
        parts[name] = s.decoder
        entry = {"key": s.map_key, "label": s.label, "plane": s.plane, "latentDim": s.latent_dim,
                 "decoder": name, "mapId": s.map_id}
        if s.plane == "approx":
            parts[f"codes-{i}"] = np.ascontiguousarray(s.codes, "<f2").tobytes()
            parts[f"positions-{i}"] = np.ascontiguousarray(s.positions, "<f4").tobytes()
            entry.update(codes=f"codes-{i}", positions=f"positions-{i}", n=len(s.codes))
        else:
            entry.update(mean=[float(v) for v in s.mean], components=[[float(v) for v in r] for r in s.components])
        maps.append(entry)
    header = {"kind": "maps", "maps": maps, "linked": bool(linked), "k": K, "threshold": float(threshold)}
    digest = hashlib.sha1(json.dumps(header, sort_keys=True).encode())
    for name in sorted(parts):
        digest.update(name.encode() + hashlib.sha1(parts[name]).digest())
    return pack_parts({**header, "token": digest.hexdigest()[:16]}, parts)


@st.cache_resource(show_spinner=False, max_entries=1)
def classifier_blob() -> bytes | None:
    """The bundled digit classifier packed for the browser (float16, ~0.8 MB), or None without one."""
    from vae.checkpoint import CheckpointError
    from vae.export import classifier_layers, pack_classifier

    try:
        return pack_classifier(classifier_layers(state.classifier()), "float16")
    except CheckpointError:
        return None


@st.cache_data(show_spinner=False, max_entries=256)
def _sheet(dataset: str, chunk: int) -> str:
    return base64.b64encode(sprite_png(state.test_data(dataset).x_test.numpy(), chunk)).decode("ascii")


_HOVER = component("latent_lab_map_hover", "map_hover", html='<div class="ll-status"></div>',
                   css=".ll-status { font-size: 0.85rem; opacity: 0.65; } .ll-status:empty { display: none; }")
_WANT = "map_hover_want"


def _on_want() -> None:
    value = (st.session_state.get("map_hover") or {}).get("want")
    if isinstance(value, int):
        st.session_state[_WANT] = value


def hover_digits(dataset: str, decoders: list[DecodeSpec] | None = None, linked: bool = False) -> None:
    """Mount the hover card for the maps on this page (once per page, after them). The card says
    "digit 7 · #123" for digit datasets, "Sneaker · #123" for others.

    `decoders`: a DecodeSpec per map whose points the card decodes (see `decode_spec`); without, the card
    shows the hovered digit only. `linked`: hovering one map shows the same point decoded by every map's
    model side by side (AE vs VAE). Scores come with MNIST models only (the classifier judges digits)."""
    _sprites(dataset)
    decoders = [d for d in decoders or [] if d is not None]
    if not decoders:
        return
    clf, _ = state.scorer(dataset)
    blob = classifier_blob() if clf is not None else None
    if blob is not None:
        _HOVER(key="map_hover_classifier", data=blob)
    _HOVER(key="map_hover_maps", data=bundle(list(decoders), linked))


@st.fragment
def _sprites(dataset: str) -> None:
    """Runs as a fragment: fetching a sprite sheet reruns only this, not the page (and never resends a
    figure or the decoders)."""
    noun = "digit" if dataset in ("mnist", "custom") else ""
    data = state.test_data(dataset)
    n = len(data.x_test)
    chunk = st.session_state.pop(_WANT, None)
    png = _sheet(dataset, chunk) if isinstance(chunk, int) and 0 <= chunk < sprite_chunks(n) else None
    # The browser keeps sheets for the whole visit, keyed by where the digits came from.
    source = hashlib.sha1(f"{dataset}|{data.source}|{n}".encode()).hexdigest()[:12]
    _HOVER(key="map_hover", on_want_change=_on_want, data={
        "key": source, "n": n, "size": SPRITE_CHUNK, "cols": SPRITE_COLS, "noun": noun,
        "bytes_per_sheet": sheet_bytes(dataset), "chunk": chunk if png else None, "png": png})


@st.cache_data(show_spinner=False, max_entries=8)
def sheet_bytes(dataset: str) -> int:
    """The PNG size of the first sprite sheet, to tell the user what a hover costs."""
    return len(sprite_png(state.test_data(dataset).x_test.numpy(), 0))
