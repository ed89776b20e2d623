"""The latent movie on the pages: the player's payload (ui.movie.pack) on its own, the Latent map page's
"Watch it learn" under AppTest (the player and the GIF for a model with a history, a sentence for one
without, one sentence for a damaged history, nothing sent while folded), and the Train & library job
panel's live map from an events file with frame events. The player itself (play, scrub, GIF download)
runs in a real browser: tests/e2e/test_movie_e2e.py.
"""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from tests.apptest import open_page
from ui import movie
from vae.checkpoint import ModelLibrary, default_library_dir
from vae.config import ModelConfig
from vae.movie import Movie, movie_meta, movie_tensors

page_test = pytest.mark.usefixtures("fresh_app")


def synthetic_movie(frames: int = 24, n: int = 200, seed: int = 0) -> Movie:
    """Ten classes that start as one blob at the origin and move out to a ring, with a falling loss."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10), n // 10)
    angle = labels * 2 * np.pi / 10
    ring = np.c_[np.cos(angle), np.sin(angle)] * 3
    noise = rng.standard_normal((n, 2)) * 0.4
    grow = 1 - np.exp(-np.arange(frames) / 5)  # (F,)
    points = (ring[None] * grow[:, None, None] + noise[None] * (0.1 + grow[:, None, None])).astype(np.float32)
    step = np.r_[0, np.unique(np.geomspace(1, 900, frames - 1).astype(np.int64))]
    step = np.r_[step, step[-1] + 1 + np.arange(frames - len(step))]
    return Movie(points=points, labels=labels, index=np.arange(n) * 7, step=step, epoch=step / 300.0,
                 elapsed_s=step * 0.01, loss=150 + 400 * np.exp(-step / 100.0), plane="native", dataset="mnist")


def tiny_model(kind: str):
    from vae.models import build_model

    return build_model(ModelConfig(kind=kind, arch="mlp", latent_dim=2, hidden=(16,)), seed=0)


def save(kind: str = "vae", with_movie: Movie | None = None, tensors: dict | None = None) -> str:
    extra = {}
    if with_movie is not None:
        extra = dict(tensors=movie_tensors(with_movie), movie=movie_meta(with_movie))
    elif tensors is not None:
        extra = dict(tensors=tensors, movie={"version": 1, "plane": "native", "subset": 200, "frames": 3})
    entry = ModelLibrary(default_library_dir()).save(tiny_model(kind), name=f"tiny {kind}", dataset="mnist",
                                                     metrics={"test_nats": 200.0}, **extra)
    return entry.id


def unpack(payload: bytes) -> tuple[dict, np.ndarray, np.ndarray]:
    """ui/movie.js's reading of the payload, in numpy: header, (F, N, 2) uint16, (N,) labels."""
    (h,) = struct.unpack_from("<I", payload)
    head = json.loads(payload[4:4 + h].decode("utf-8"))
    off = 4 + h + ((4 + h) & 1)
    count = head["frames"] * head["n"] * 2
    q = np.frombuffer(payload[off:off + 2 * count], "<u2").reshape(head["frames"], head["n"], 2)
    labels = np.frombuffer(payload[off + 2 * count:], np.uint8)
    assert len(labels) == head["n"]
    return head, q, labels


def movies_on(at) -> list[tuple[dict, np.ndarray, np.ndarray]]:
    return [unpack(el.proto.bytes) for el in at.get("bidi_component") if el.proto.component_name.endswith("movie")]


def texts(elements) -> str:
    return " | ".join(str(e.value) for e in elements)


# ---------------------------------------------------------------- the payload

def test_the_payload_holds_every_frame_on_fixed_axes_within_a_pixel():
    m = synthetic_movie()
    pts = m.points.copy()
    pts[-1, 0] = [500.0, -500.0]  # one runaway digit in the last frame
    head, q, labels = unpack(movie.pack(pts, m.labels, {"id": "x", "mode": "movie"}))
    assert (head["frames"], head["n"]) == (m.frames, len(m.labels)) and (labels == m.labels).all()
    (x0, x1), (y0, y1) = head["xr"], head["yr"]
    assert x1 - x0 < 20 and y1 - y0 < 20  # the runaway does not squash everyone else
    assert (q[-1, 0] == movie.OFF).all() and (q != movie.OFF).sum() == q.size - 2  # it alone is off the edge
    back = np.stack([x0 + q[..., 0] / (movie.OFF - 1) * (x1 - x0), y0 + q[..., 1] / (movie.OFF - 1) * (y1 - y0)], -1)
    on = q[..., 0] != movie.OFF
    assert np.abs(back[on] - pts[on]).max() <= (max(x1 - x0, y1 - y0)) / 65534  # far below a pixel
    with pytest.raises(ValueError, match="positions"):
        movie.pack(pts[0], m.labels, {})


def test_the_view_keeps_every_ordinary_digit():
    v = np.random.default_rng(1).standard_normal(20_000)
    lo, hi = movie.view_range(v)
    assert lo < v.min() and hi > v.max()  # no far outliers: all of them in view
    lo, hi = movie.view_range(np.r_[v, 1e4])
    assert hi < 10 and lo < v.min()
    assert movie.view_range(np.full(5, np.nan)) == (-1.0, 1.0)


def test_the_story_is_told_from_the_recorded_numbers():
    m = synthetic_movie()
    text = movie.story(m, has_prior=True)
    assert "−ELBO on these digits fell from **550** to **150 nats**" in text and "densest at the start" in text
    flat = Movie(**{**{k: getattr(m, k) for k in ("points", "labels", "index", "step", "epoch", "elapsed_s")},
                    "loss": np.full(m.frames, 100.0), "plane": "native"})
    assert "fell" not in movie.story(flat, has_prior=False)
    small = Movie(**{**{k: getattr(flat, k) for k in ("points", "labels", "index", "step", "epoch", "elapsed_s")},
                     "loss": np.linspace(206.5, 205.7, m.frames), "plane": "native"})
    assert "fell from **206.5** to **205.7 nats**" in movie.story(small, has_prior=False)


# ---------------------------------------------------------------- Latent map: Watch it learn

@page_test
@pytest.mark.parametrize("kind, label", [("vae", "−ELBO"), ("ae", "reconstruction")])
def test_the_map_page_plays_a_models_recorded_history(kind, label):
    m = synthetic_movie()
    model_id = save(kind, with_movie=m)
    folded = open_page("pages/map.py", model_id)
    assert not movies_on(folded)  # folded: nothing of the movie is read or sent
    assert "Watch it learn: this map forming during training" in [e.label for e in folded.expander]

    at = open_page("pages/map.py", model_id, map_movie_open=True)
    ((head, q, labels),) = movies_on(at)
    assert head["mode"] == "movie" and head["frames"] == m.frames and head["n"] == len(m.labels)
    assert head["lossLabel"] == label and head["step"] == m.step.tolist() and head["axes"] == ["z₁", "z₂"]
    assert np.allclose(head["loss"], m.loss, atol=0.01) and head["epochs"] == pytest.approx(m.epoch[-1])
    assert (labels == m.labels).all() and (q != movie.OFF).all()
    assert f"at **{m.frames} moments**" in texts(at.markdown)
    assert f"Its test {label} on these digits fell from" in texts(at.markdown)
    assert "map_movie_gif" in [b.key for b in at.get("download_button")]


@page_test
def test_a_model_without_a_history_says_so():
    at = open_page("pages/map.py", save("vae"), map_movie_open=True)
    assert not movies_on(at)
    assert movie.NO_HISTORY in texts(at.info)
    assert "map_movie_gif" not in [b.key for b in at.get("download_button")]


def test_an_onnx_pair_has_no_history(tmp_path):
    pair = tmp_path / "mine.onnxmodel"  # an imported model is a folder: never a history, never an error
    pair.mkdir()
    assert movie._player_data(str(pair), "fp", True, 2, ("0",)) is None


@page_test
def test_a_damaged_history_is_one_sentence_and_the_map_still_works():
    m = synthetic_movie(frames=3)
    tensors = movie_tensors(m)
    tensors["movie.step"] = np.array([0, 5, 2], np.int64)  # steps out of order
    at = open_page("pages/map.py", save("vae", tensors=tensors), map_movie_open=True)
    assert not movies_on(at) and "cannot be read" in texts(at.warning) and "not affected" in texts(at.warning)
    assert "Native latent plane of all 10,000 test digits" in texts(at.caption)


def test_the_gif_is_made_from_the_checkpoint(tmp_path):
    st_cache_clear()
    m = synthetic_movie(frames=5)
    path = ModelLibrary(default_library_dir()).get(save("ae", with_movie=m)).path
    gif = movie.movie_gif(str(path), "fp", tuple(str(i) for i in range(10)))
    assert gif[:6] == b"GIF89a"
    from PIL import Image
    import io

    assert Image.open(io.BytesIO(gif)).n_frames >= m.frames


def st_cache_clear():
    import streamlit as st

    st.cache_data.clear()


# ---------------------------------------------------------------- Train & library: the live map

def _panel_script(events: str, jobs_dir: str, kind: str):
    from types import SimpleNamespace

    from ui import training
    from vae.events import EventLog
    from vae.jobs import JobStatus

    p = EventLog(events).read()
    job = JobStatus(job_id="j1", name="live", state="running", position=0, label=f"{kind.upper()} · MLP · 2-d",
                    dataset="mnist", epochs=5, time_budget=None, epoch=p.epoch, step=p.step,
                    steps_per_epoch=p.steps_per_epoch, progress=p.progress, eta_s=p.eta_s,
                    samples_per_s=p.samples_per_s, elapsed_s=p.elapsed_s, history=p.history, steps=p.steps,
                    originals=p.originals, reconstructions=p.reconstructions, checkpoint=None, metrics=None,
                    error=None, cancelling=False, submitted_at=0.0, frame=p.frame, frames=p.frames)
    training.job_panel(SimpleNamespace(jobs_dir=__import__("pathlib").Path(jobs_dir)), job)


@pytest.mark.parametrize("kind", ["vae", "ae"])
def test_the_training_panel_shows_the_latest_frame_from_the_events(tmp_path, kind):
    from streamlit.testing.v1 import AppTest

    from vae.events import EpochEvent, EventWriter, FrameEvent

    m = synthetic_movie(frames=3)
    path = tmp_path / "events.jsonl"
    w = EventWriter(path)
    for f in range(3):
        w.write(FrameEvent(frame=f, step=int(m.step[f]), epoch=float(m.epoch[f]), elapsed_s=float(m.elapsed_s[f]),
                           loss=float(m.loss[f]), points=m.points[f], labels=m.labels))
    digits = np.zeros((8, 28, 28), np.uint8)
    w.write(EpochEvent(epoch=1, epochs=5, train={"loss": 160.0, "recon": 150.0, "kl": 10.0},
                       test={"nats": 158.0, "recon": 149.0, "kl": 9.0, "kl_per_dim": [4.5, 4.5]}, elapsed_s=3.0,
                       eta_s=12.0, originals=digits, reconstructions=digits))
    w.close()
    at = AppTest.from_function(_panel_script, args=(str(path), str(tmp_path), kind), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    ((head, q, labels),) = movies_on(at)
    assert head["mode"] == "live" and head["frames"] == 1 and head["step"] == [int(m.step[2])]
    assert (labels == m.labels).all() and (q != movie.OFF).all()
    loss = "−ELBO" if kind == "vae" else "reconstruction"
    assert (f"frame 3 so far · epoch {movie.epoch_text(m.epoch[2])} of 5 · test {loss} {m.loss[2]:.1f} nats on these digits"
            in texts(at.caption))
    shown = {e.label: e.value for e in at.metric}
    assert shown["Recon. nats"] == "149.0" and "Test nats" not in shown
    assert (shown["−ELBO nats"], shown["KL nats"]) == (("158.0", "9.00") if kind == "vae" else ("–", "–"))


def test_the_training_panel_shows_no_map_before_the_first_frame(tmp_path):
    from streamlit.testing.v1 import AppTest

    (tmp_path / "events.jsonl").write_text("")
    at = AppTest.from_function(_panel_script, args=(str(tmp_path / "events.jsonl"), str(tmp_path), "vae"),
                               default_timeout=60)
    at.run()
    assert not at.exception and not movies_on(at)
