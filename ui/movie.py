"""The latent movie on the pages (ui/movie.js): where ~2,000 test digits sat on a model's map at many
moments of its training (vae.movie), played in the browser, and the latest frame of a training that runs.

    movie.section(a, class_names)        # Latent map, "Watch it learn": the player and the GIF, or why not
    movie.live_frame(job, has_prior, latent_dim)   # Train & library's job panel: the map forming live

Every frame goes to the browser once, as one binary payload: 16-bit positions over fixed axes (the
same for all frames, so frames are comparable), one byte per label and a small JSON header (8 KB a
frame for 2,000 digits: 163 KB for 20 frames, 0.8 MB for 100, the most a training records). Playing,
scrubbing and the loss curve run in the browser: a class of 35 playing the movie costs the server
nothing. The GIF is made only when asked for (the download button's deferred data), once per model
(st.cache_data).
"""

from __future__ import annotations

import json
import struct
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from ui.components import component
from ui.figures import DIGIT_COLORS
from ui.text import plain
from vae.checkpoint import CheckpointError
from vae.data import CLASS_NAMES
from vae.movie import gif_bytes, read_movie

if TYPE_CHECKING:
    from ui.state import Active
    from vae.jobs import JobStatus
    from vae.movie import Movie

_render = component("latent_lab.movie", "movie")

HEIGHT = 440  # the player's map, CSS px
LIVE_HEIGHT = 300  # the training panel's map
FPS = 6  # recorded frames per second at 1x (the dots glide in between)
OFF = 65535  # a quantised coordinate off the view (ui/movie.js draws nothing there)
NO_HISTORY = ("This model was saved without a training history (older or imported models have none); train one "
              "on Train & library to watch it learn.")


def loss_label(has_prior: bool) -> str:
    """What a frame's test loss is: −ELBO for a model with a prior, reconstruction for an AE (no ELBO)."""
    return "−ELBO" if has_prior else "reconstruction"


def axis_titles(plane: str, latent_dim: int) -> tuple[str, str]:
    if plane == "pca":
        return "PCA 1", "PCA 2"
    return ("z₁", "z₂") if latent_dim >= 2 else ("z₁", "(none: a 1-d code)")


def view_range(v: np.ndarray) -> tuple[float, float]:
    """Fixed limits for one axis over every frame: all finite values, widened by 4% each side, except
    far outliers: nothing beyond a quarter of the central span (0.1st to 99.9th percentile) past its
    ends, so one runaway digit cannot shrink everyone else to a dot (it is drawn off the edge, and the
    player says how many are)."""
    ok = np.asarray(v, np.float64).ravel()
    ok = ok[np.isfinite(ok)]
    if not len(ok):
        return -1.0, 1.0
    lo, hi = (float(q) for q in np.quantile(ok, [0.001, 0.999]))
    span = hi - lo
    lo, hi = max(float(ok.min()), lo - span / 4), min(float(ok.max()), hi + span / 4)
    if not hi > lo:
        lo, hi = lo - 1.0, hi + 1.0
    pad = (hi - lo) * 0.04
    return lo - pad, hi + pad


def pack(points: np.ndarray, labels: np.ndarray, header: dict) -> bytes:
    """Frames for ui/movie.js: (F, N, 2) positions and (N,) labels as the module's binary layout (a uint32
    header length, the JSON header with n, frames, xr, yr added, a pad byte to an even offset, F*N*2
    uint16 little-endian, N uint8). Non-finite positions and those beyond the limits are OFF."""
    pts = np.asarray(points, np.float64)
    labels = np.asarray(labels)
    if pts.ndim != 3 or pts.shape[2] != 2 or pts.shape[1] != len(labels) or not len(pts):
        raise ValueError("A movie needs positions (F, N, 2) with F >= 1 and one label per digit.")
    if len(labels) and (labels.min() < 0 or labels.max() > 255):
        raise ValueError("Movie labels must be classes 0-255.")
    q = np.full(pts.shape, OFF, np.uint16)
    ranges = []
    for k in (0, 1):
        lo, hi = view_range(pts[..., k])
        v = pts[..., k]
        inside = np.isfinite(v) & (v >= lo) & (v <= hi)
        q[..., k][inside] = np.rint((v[inside] - lo) / (hi - lo) * (OFF - 1)).astype(np.uint16)
        ranges.append([lo, hi])
    q[(q == OFF).any(axis=2)] = OFF  # off on either axis: off
    head = json.dumps(dict(header, n=int(pts.shape[1]), frames=int(pts.shape[0]), xr=ranges[0], yr=ranges[1]),
                      ensure_ascii=False).encode("utf-8")
    pad = b"\0" if (4 + len(head)) % 2 else b""
    return struct.pack("<I", len(head)) + head + pad + q.astype("<u2").tobytes() + labels.astype(np.uint8).tobytes()


def _floats(v, digits: int) -> list[float | None]:
    return [round(float(x), digits) if np.isfinite(x) else None for x in np.asarray(v, np.float64)]


def movie_payload(movie: Movie, *, movie_id: str, has_prior: bool, latent_dim: int, names: list[str],
                  key: str = "map_movie") -> bytes:
    """The whole movie for the player."""
    return pack(movie.points, movie.labels, dict(
        id=movie_id, key=key, mode="movie", epoch=_floats(movie.epoch, 4), loss=_floats(movie.loss, 2),
        step=[int(s) for s in movie.step], elapsed=_floats(movie.elapsed_s, 2),
        epochs=float(movie.epoch[-1]), lossLabel=loss_label(has_prior), names=list(names),
        colors=DIGIT_COLORS, axes=list(axis_titles(movie.plane, latent_dim)), height=HEIGHT, fps=FPS))


@st.cache_data(show_spinner=False, max_entries=16)
def _player_data(path: str, fingerprint: str, has_prior: bool, latent_dim: int,
                 names: tuple[str, ...], mtime: float = 0.0) -> tuple[bytes, dict] | None:
    """The packed movie of a model and what the captions say of it, or None: it has no history.
    Raises CheckpointError (one sentence) for a history that cannot be read. The file's `mtime` is part
    of the key: the fingerprint is the weights' alone (the same with or without a movie)."""
    movie = read_movie(path, strict=True)
    if movie is None:
        return None
    counts = np.bincount(np.asarray(movie.labels, np.int64), minlength=len(names))
    info = dict(frames=int(movie.frames), epochs=float(movie.epoch[-1]), seconds=float(movie.elapsed_s[-1]),
                plane=movie.plane, digits=int(len(movie.labels)),
                per_class=int(counts[0]) if len(counts) and counts.min() == counts.max() else None,
                story=story(movie, has_prior))
    return movie_payload(movie, movie_id=fingerprint, has_prior=has_prior, latent_dim=latent_dim,
                         names=list(names)), info


@st.cache_data(show_spinner=False, max_entries=8)
def movie_gif(path: str, fingerprint: str, names: tuple[str, ...], mtime: float = 0.0) -> bytes:
    """The movie as an animated GIF (vae.movie.gif_bytes), made once per model."""
    movie = read_movie(path)
    if movie is None:  # only where the file changed under the page since it drew the button
        raise CheckpointError("This model has no training history to export.")
    return gif_bytes(movie, class_names=list(names))


def section(a: Active, class_names: list[str]) -> None:
    """"Watch it learn": the player over the active model's recorded frames and its GIF download, or a
    sentence where the model has no history (an older or imported model; an ONNX pair never has one)."""
    names = tuple(class_names)
    try:
        got = _player_data(str(a.entry.path), a.fingerprint, a.config.has_prior, a.config.latent_dim, names,
                           a.entry.mtime)
    except (CheckpointError, OSError, ValueError) as e:
        st.warning(f"{plain(e)} The model itself and its map are not affected.", icon=":material/movie_off:")
        return
    if got is None:
        st.info(NO_HISTORY, icon=":material/movie_off:")
        st.page_link("pages/train.py", label="Go to Train & library", icon=":material/model_training:")
        return
    payload, info = got
    left, right = st.columns([3, 2], gap="medium")
    with left:
        _render(key="map_movie", data=payload)
    with right:
        each = f" ({info['per_class']:,} of each class)" if info["per_class"] else ""
        st.markdown(f"The same **{info['digits']:,} test digits**{each} at **{info['frames']} moments** of this "
                    f"model's training, from before its first step to its end ({_epochs(info['epochs'])}, "
                    f"{info['seconds']:.0f} s), "
                    + ("on its native latent plane." if info["plane"] == "native" else
                       "on one fixed PCA plane of its final codes, so that the frames are comparable."))
        if info["story"]:
            st.markdown(info["story"])
        st.caption("Press **Play**, or drag the slider (on it, the arrow keys step one frame and Space plays or "
                   "pauses). The curve under the map is the test loss at each frame: click or drag on it to go "
                   "there. Click a digit in the legend to hide its class.")
        gif = partial(movie_gif, str(a.entry.path), a.fingerprint, names, a.entry.mtime)  # made on the click
        st.download_button("Download the movie (GIF)", gif, f"latent-movie-{a.entry.id}.gif", "image/gif",
                           key="map_movie_gif", on_click="ignore",
                           icon=":material/movie:", help="An animated GIF of every frame, for slides: made when you "
                                                         "click (a few seconds the first time).")


def story(movie: Movie, has_prior: bool) -> str:
    """What the recorded numbers say about this training, in two sentences (Markdown; numbers only)."""
    loss, epoch = np.asarray(movie.loss, np.float64), np.asarray(movie.epoch, np.float64)
    ok = np.isfinite(loss)
    if movie.frames < 2 or ok.sum() < 2:
        return ""
    first, last = loss[ok][0], loss[ok][-1]
    text = ""
    if first > last:
        half = float(epoch[ok][np.argmax(loss[ok] <= (first + last) / 2)])
        d = 0 if first - last >= 10 else 1 if first - last >= 0.2 else 2  # never "fell from 206 to 206"
        text = (f"Its test {loss_label(has_prior)} on these digits fell from **{first:.{d}f}** to "
                f"**{last:.{d}f} nats**; half of that fall came in the first **{_epochs(half)}**. ")
    mid = float(epoch[movie.frames // 2])
    if epoch[-1] > 0 and mid < 0.4 * epoch[-1]:
        text += (f"The frames are densest at the start, where the map changes fastest: half of them show the "
                 f"first {_epochs(mid)}.")
    return text.strip()


def epoch_text(e: float) -> str:
    """0.137 -> '0.14' (early frames are a fraction of an epoch apart), 3.24 -> '3.2', as ui/movie.js writes them."""
    return "0" if e <= 0 else f"{e:.2f}" if e < 1 else f"{e:.1f}"


def _epochs(e: float) -> str:
    """2 -> '2 epochs', 0.34 -> '0.34 epochs', 1 -> '1 epoch'."""
    text = f"{e:.2f}" if e < 1 else f"{e:.1f}"
    text = text.rstrip("0").rstrip(".") if "." in text else text
    return f"{text} epoch{'' if text == '1' else 's'}"


# --- live, during training -----------------------------------------------------------------------------

@st.cache_data(show_spinner=False, max_entries=64)
def _live_data(job_id: str, step: int, _frame: dict, has_prior: bool, latent_dim: int, plane: str,
               names: tuple[str, ...]) -> bytes:
    f = _frame
    return pack(np.asarray(f["points"], np.float32)[None], np.asarray(f["labels"]), dict(
        id=job_id, key="train_movie", mode="live", epoch=_floats([f["epoch"]], 4), loss=_floats([f["loss"]], 2),
        step=[int(step)], elapsed=[], epochs=float(f["epoch"]), lossLabel=loss_label(has_prior), names=list(names),
        colors=DIGIT_COLORS, axes=list(axis_titles(plane, latent_dim)), height=LIVE_HEIGHT, fps=FPS))


def live_frame(job: JobStatus, has_prior: bool, latent_dim: int) -> None:
    """The latest recorded frame of a training (JobStatus.frame, vae.events.frame_from_dict's dict) as a map,
    and a caption: its number, epoch and test loss. Each refresh that brings a new frame glides the dots
    there. Nothing where there is no frame yet (or an odd one: the next refresh brings another)."""
    f = job.frame
    if not f:
        return
    try:
        step, epoch, loss, plane = int(f["step"]), float(f["epoch"]), float(f["loss"]), str(f.get("plane", "native"))
        n = len(f["labels"])
        payload = _live_data(job.job_id, step, f, has_prior, latent_dim, plane,
                             tuple(CLASS_NAMES.get(job.dataset, [str(i) for i in range(10)])))
    except (KeyError, TypeError, ValueError):
        return
    _render(key="train_movie", data=payload)
    where = "its latent plane" if plane == "native" else "a PCA plane of its codes"
    loss_text = f"{loss:.1f} nats" if np.isfinite(loss) else "not measured"
    if job.finished:
        st.caption(f"Its last frame: {n:,} test digits on {where} · {job.frames} frames recorded · "
                   f"epoch {epoch_text(epoch)} · test {loss_label(has_prior)} {loss_text} on these digits."
                   + (" The whole movie is on Latent map, under Watch it learn." if job.state == "done" else ""))
    else:
        st.caption(f"The map forming: {n:,} test digits on {where} · frame {job.frames} so far · epoch {epoch_text(epoch)}"
                   f"{'' if job.time_budget else f' of {job.epochs}'} · test {loss_label(has_prior)} {loss_text} on "
                   "these digits. The dots move as the model learns; the whole movie is on Latent map once it is "
                   "saved.")
