"""Live latent sliders: a small st.components.v2 component that decodes in the browser.

Streamlit's own slider reports only on release, so the digit could not follow a drag. This
component receives the decoder's weights once (vae.export's packed bytes, float16), renders
its own range inputs and decodes in JavaScript (ui/decoder_component.js) on every input event,
drawing to a canvas. It reports the code back to Python only when a slider is released.

    live = live_sliders(a, z0, dims, ranges, labels, resets=0, code=None)
    live.z             # the code the sliders show (`code` or z0 until the first release)

Streamlit caches large messages in the browser by hash, so as long as the start, the shown
dimensions and the model stay the same, a rerun does not send the weights again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import streamlit as st

from ui.components import component
from ui.state import Active
from vae.export import pack_decoder, with_extra
from vae.models import decoder_layers

_render = component("latent_lab.live_sliders", "decoder_component")


@st.cache_data(show_spinner=False, max_entries=16)
def packed_decoder(fingerprint: str, _model, dtype: str = "float16") -> bytes:
    """The active model's decoder packed for the browser (cached per model)."""
    return pack_decoder(decoder_layers(_model), dtype)


@dataclass
class LiveCode:
    z: np.ndarray  # (D,) the code the sliders show, as of the last release
    moved: bool  # whether the code differs from the start
    payload_bytes: int  # what the component's data weighs on the wire


def live_sliders(a: Active, start, dims: list[int], ranges, labels: list[str], resets: int = 0,
                 key: str = "sliders_live", code=None) -> LiveCode:
    """Mount the sliders for `dims` (ranges: (D, 2) for every dim) starting at `start`, or showing
    `code` first (a lesson link's slider values, (D,)) where one is given.

    The component resets whenever the model, the start, `code` or `resets` changes: keep `code` the same
    over a visit (the sliders report their own moves), or every change resends the decoder."""
    start = np.asarray(start, np.float32)
    first = start if code is None else np.asarray(code, np.float32)
    ranges = np.asarray(ranges, np.float32)
    token = hashlib.sha1(f"{a.fingerprint}:{resets}:".encode() + start.tobytes() + first.tobytes()).hexdigest()[:12]
    blob = with_extra(packed_decoder(a.fingerprint, a.model), {
        "start": [float(v) for v in first], "dims": [int(d) for d in dims],
        "ranges": [[float(lo), float(hi)] for lo, hi in ranges[list(dims)]], "labels": list(labels),
        "token": token})
    result = _render(key=key, data=blob, on_code_change=lambda: None)
    reported = result.get("code") if result else None
    z = first
    if isinstance(reported, dict) and reported.get("token") == token and len(reported.get("z") or []) == len(start):
        zr = np.asarray(reported["z"], np.float32)
        if np.all(np.isfinite(zr)):
            z = zr
    return LiveCode(z, bool(np.any(z != start)), len(blob))


def server_sliders(a: Active, start, dims: list[int], ranges, labels: list[str], resets: int = 0,
                   key: str = "sliders_live", code=None) -> LiveCode:
    """Streamlit's own sliders, decoded on the server, for a model whose decoder cannot run in a browser
    (an imported ONNX graph): the digit is redrawn when a slider is released, not while it is dragged."""
    from vae.images import image_grid
    from vae.latent import decode

    start = np.asarray(start, np.float32)
    z = (start if code is None else np.asarray(code, np.float32)).copy()
    ranges = np.asarray(ranges, np.float32)
    token = hashlib.sha1(f"{a.fingerprint}:{resets}:".encode() + start.tobytes()).hexdigest()[:8]
    view, rows = st.columns([1, 3])
    for d, label in zip(dims, labels):
        lo, hi = (float(v) for v in ranges[d])
        z[d] = rows.slider(label, lo, hi, float(np.clip(z[d], lo, hi)), step=(hi - lo) / 200 or None,
                           key=f"{key}_{token}_{d}")
    view.image(image_grid(decode(a.model, z[None]), cols=1, scale=5), width=140)
    return LiveCode(z, bool(np.any(z != start)), 0)
