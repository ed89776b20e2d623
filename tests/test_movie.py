"""The latent movie (vae.movie): its history's shape and monotone frame times, the subset that is the
same for every model, the schedule, the planes, the checkpoint round trip (save, upload, rename), hostile
movie tensors, the GIF, the command lines and the frame events."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save as st_save

from tests.test_checkpoint import TEACHER, assert_plain
from vae.checkpoint import FORMAT, CheckpointError, ModelLibrary, checkpoint_bytes, load_checkpoint, read_checkpoint
from vae.checkpoint import save_checkpoint, weights_fingerprint
from vae.config import ModelConfig
from vae.data import Dataset
from vae.events import EventLog, EventWriter, FrameEvent, event_to_dict
from vae.models import build_model
from vae.movie import (
    DIGIT_COLORS, MAX_FRAMES, MIN_FRAMES, SUBSET, Movie, frame_image, gif_bytes, movie_meta, movie_tensors,
    read_movie, subset_index,
)
from vae.movie import cli as movie_cli
from vae.movie.frames import LivePlane, fixed_plane, frame_count, frame_thresholds
from vae.paths import ROOT
from vae.train import TrainConfig, iter_train, train
from vae.train.job import TrainingJob

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def tiny(kind="vae", latent_dim=2) -> ModelConfig:
    return ModelConfig(kind=kind, latent_dim=latent_dim, hidden=(64,))


def cfg(**kw) -> TrainConfig:
    return TrainConfig(**{"epochs": 1, "batch_size": 50, "lr": 3e-3, "warmup_steps": 5, "eval_batch": 500, **kw})


@pytest.fixture(scope="module")
def small(mnist_small) -> Dataset:
    """2,000 training digits (40 steps of 50), 500 test digits."""
    return mnist_small


def trained(small, kind="vae", latent_dim=2, seed=0, **kw):
    model = build_model(tiny(kind, latent_dim), seed=seed)
    events = []
    done = train(model, small, cfg(seed=seed, **kw), callback=events.append)
    return model, done, [e for e in events if isinstance(e, FrameEvent)]


@pytest.fixture(scope="module")
def run2d(small):
    return trained(small)


def synthetic(frames=5, n=50, plane="native", seed=0) -> Movie:
    rng = np.random.default_rng(seed)
    return Movie(points=rng.normal(size=(frames, n, 2)).astype(np.float32), labels=np.arange(n) % 10,
                 index=np.arange(n) * 3, step=np.arange(frames) * 10, epoch=np.arange(frames) * 0.5,
                 elapsed_s=np.arange(frames) * 1.5, loss=200.0 - np.arange(frames), plane=plane,
                 dataset="mnist", class_names=tuple(str(i) for i in range(10)))


# ------------------------------------------------------------------ the history recorded by a training

@pytest.mark.parametrize("kind,latent_dim,plane", [("vae", 2, "native"), ("ae", 8, "pca"), ("vae", 1, "native")])
def test_history_shape_and_monotone_frame_times(small, kind, latent_dim, plane):
    model, done, frames = trained(small, kind, latent_dim)
    movie = done.movie
    n = len(small.y_test)  # fewer test digits than SUBSET: all of them
    assert done.reason == "completed" and MIN_FRAMES <= movie.frames <= MAX_FRAMES
    assert movie.points.shape == (movie.frames, n, 2) and movie.points.dtype == np.float32
    assert movie.plane == plane and np.isfinite(movie.points).all()
    assert movie.step[0] == 0 and movie.epoch[0] == 0 and 0 <= movie.elapsed_s[0] < 0.05
    assert (np.diff(movie.step) > 0).all() and (np.diff(movie.epoch) >= 0).all() and (np.diff(movie.elapsed_s) >= 0).all()
    assert movie.step[-1] == 40 and movie.epoch[-1] == 1.0  # the last frame is the end
    assert np.array_equal(movie.index, subset_index(small.y_test.numpy()))
    assert np.array_equal(movie.labels, small.y_test.numpy()[movie.index])
    assert [f.step for f in frames] == movie.step.tolist() and [f.frame for f in frames] == list(range(movie.frames))
    assert np.allclose([f.loss for f in frames], movie.loss)
    if latent_dim == 1:
        assert (movie.points[:, :, 1] == 0).all()  # z1 against 0, as on the Latent map page
    if plane == "native":  # the live frames are the stored ones
        assert np.array_equal(frames[-1].points, movie.points[-1])


def test_frames_come_closer_together_early(run2d):
    gaps = np.diff(run2d[1].movie.step)
    assert gaps[:5].mean() < gaps[-5:].mean()


def test_an_untrained_frame_differs_from_the_last(run2d):
    movie = run2d[1].movie
    first, last = movie.points[0], movie.points[-1]
    assert np.abs(first - last).mean() > 0.5 * last.std()
    assert first.std() < last.std()  # the untrained encoder squeezes every digit near one place
    assert movie.loss[-1] < movie.loss[0] - 5


def test_recording_does_not_change_the_training(small):
    with_movie, _, frames = trained(small)
    without, done, none = trained(small, movie=False)
    assert frames and not none and done.movie is None
    for k, v in with_movie.state_dict().items():
        assert torch.equal(v, without.state_dict()[k]), k


def test_a_time_budget_training_gets_its_frames(small):
    model = build_model(tiny(), seed=0)
    done = train(model, small, cfg(epochs=1000, time_budget=2.0))
    assert done.reason == "time_budget" and done.movie.frames >= MIN_FRAMES
    assert done.movie.step[-1] == round(done.movie.epoch[-1] * 40)


def test_a_cancelled_training_ends_with_a_frame_of_where_it_stopped(small):
    model, steps = build_model(tiny(), seed=0), []

    def cancel():
        return len(steps) >= 1

    events = []
    for ev in iter_train(model, small, cfg(), cancel=cancel, report_every_s=0.0):
        events.append(ev)
        if ev.kind == "step":
            steps.append(ev)
    done = events[-1]
    assert done.reason == "cancelled" and done.movie.frames >= 2 and done.movie.step[-1] == steps[-1].global_step


# ------------------------------------------------------------------ the subset, the schedule, the planes

def test_the_subset_is_the_same_for_every_model_and_seed(mnist, small):
    labels = mnist.y_test.numpy()
    index = subset_index(labels)
    assert len(index) == SUBSET and len(np.unique(index)) == SUBSET and (np.diff(index) > 0).all()
    assert np.bincount(labels[index]).tolist() == [SUBSET // 10] * 10  # stratified: 200 of each digit
    assert np.array_equal(index, subset_index(labels.copy()))
    a = trained(small, "vae", 2, seed=0)[1].movie.index
    b = trained(small, "ae", 8, seed=5)[1].movie.index
    assert np.array_equal(a, b)


def test_a_small_class_gives_its_share_to_the_others():
    labels = np.r_[np.zeros(50), np.ones(1000), np.full(1000, 2)].astype(np.int64)
    counts = np.bincount(labels[subset_index(labels, 600)]).tolist()
    assert counts == [50, 275, 275]
    assert len(subset_index(labels[:30])) == 30  # fewer digits than asked: all of them


def test_schedule_counts_and_spacing():
    assert frame_count(234, 0.02, 0.08) == MIN_FRAMES  # a 1-epoch training: the floor
    assert frame_count(100 * 234, 0.02, 0.08) == MAX_FRAMES  # a long one: the cap
    assert MIN_FRAMES < frame_count(12 * 234, 0.02, 0.05) < MAX_FRAMES
    assert frame_count(10, 0.02, 0.08) == 11  # never more than one a step
    for frames, p_start, steps in ((20, 8 / 234, 234), (100, 8 / 11700, 11700), (21, 1 / 20, 20), (20, 0.5, 400)):
        at = frame_thresholds(frames, p_start, steps)
        assert len(at) == frames - 2 and (np.diff(at) > 0).all() and 0 < at[0] and at[-1] < 1
        assert (np.diff(np.round(at * steps)) >= 1).all()  # at least a step apart
    at = frame_thresholds(40, 8 / 2340, 2340)
    assert np.diff(at)[:5].max() < np.diff(at)[-5:].min()


def test_live_frames_do_not_flip():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(500, 6)) * np.array([5, 3, 1, 0.5, 0.2, 0.1])
    rotation = np.linalg.qr(rng.normal(size=(6, 6)))[0]
    live = LivePlane()
    a = live.project(z.astype(np.float32))
    b = live.project((z @ rotation).astype(np.float32))  # the same map, turned in latent space
    assert np.abs(a - b).max() < 1e-3 * np.abs(a).max()


def test_the_stored_plane_is_the_last_frames_pca():
    from vae.maps.projection import PCAProjection

    rng = np.random.default_rng(1)
    codes = [rng.normal(size=(200, 5)).astype(np.float16) for _ in range(3)]
    points, plane = fixed_plane(codes)
    assert plane == "pca" and points.shape == (3, 200, 2)
    assert np.allclose(points[-1], PCAProjection().fit_transform(codes[-1].astype(np.float32)), atol=1e-4)


def test_movie_refuses_inconsistent_arrays():
    good = synthetic()
    with pytest.raises(ValueError, match="steps"):
        Movie(**{**vars(good), "step": good.step[::-1]})
    with pytest.raises(ValueError, match="NaN"):
        Movie(**{**vars(good), "loss": np.full(good.frames, np.nan)})


# ------------------------------------------------------------------ in the checkpoint

def saved(tmp_path, movie: Movie, name="m.safetensors") -> Path:
    model = build_model(tiny(), seed=0)
    return save_checkpoint(tmp_path / name, model, tensors=movie_tensors(movie), movie=movie_meta(movie), name="m")


def assert_same(a: Movie, b: Movie) -> None:
    assert a.frames == b.frames and a.plane == b.plane and a.class_names == b.class_names
    assert np.allclose(a.points, b.points, atol=2e-3 * np.abs(a.points).max())  # float16 storage
    for k in ("labels", "index", "step", "epoch", "elapsed_s", "loss"):
        assert np.array_equal(getattr(a, k), getattr(b, k)), k


def test_round_trip_through_a_checkpoint(tmp_path, run2d):
    model, done, _ = run2d
    path = save_checkpoint(tmp_path / "m.safetensors", model, tensors=movie_tensors(done.movie),
                           movie=movie_meta(done.movie), name="m")
    loaded, meta = load_checkpoint(path)  # the model ignores the movie's tensors
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)
    assert meta["movie"]["plane"] == "native" and meta["movie"]["frames"] == done.movie.frames
    assert_same(done.movie, read_movie(path))
    assert_same(done.movie, read_movie(path.read_bytes()))


def test_float16_overflow_is_stored_as_float32(tmp_path):
    movie = synthetic()
    big = Movie(**{**vars(movie), "points": movie.points * 1e5})
    assert movie_tensors(big)["movie.points"].dtype == np.float32
    assert np.array_equal(read_movie(saved(tmp_path, big)).points, big.points)


def test_library_save_rename_and_upload_keep_the_movie(tmp_path):
    lib, movie, model = ModelLibrary(tmp_path / "lib"), synthetic(), build_model(tiny(), seed=0)
    entry = lib.save(model, name="with a movie", tensors=movie_tensors(movie), movie=movie_meta(movie))
    assert_same(movie, read_movie(entry.path))
    renamed = lib.rename(entry.id, "renamed", TEACHER)
    assert renamed.name == "renamed" and renamed.fingerprint == entry.fingerprint
    assert_same(movie, read_movie(renamed.path))
    uploaded = lib.import_bytes(entry.path.read_bytes(), "upload.safetensors", owner="bob")
    assert_same(movie, read_movie(uploaded.path))
    assert weights_fingerprint(uploaded.path) == entry.fingerprint


def test_a_checkpoint_without_a_movie(tmp_path, capsys):
    path = tmp_path / "old.safetensors"
    save_checkpoint(path, build_model(tiny(), seed=0), name="old")
    assert read_movie(path) is None and read_movie(path, strict=True) is None
    assert read_movie(tmp_path) is None  # a folder (an imported ONNX pair is one)
    code = movie_cli.main([str(path), "--out", str(tmp_path / "x.gif")])
    out, err = capsys.readouterr()
    assert code == 2 and not (tmp_path / "x.gif").exists()
    assert err.count("\n") == 1 and err.startswith("error: ") and "no recorded history" in err
    assert json.loads(out)["error"] in err
    with pytest.raises(CheckpointError):
        read_movie(tmp_path / "missing.safetensors")


def movie_file(model, tensors: dict, info) -> bytes:
    """A checkpoint with these movie tensors and this "movie" metadata, written by hand (as an attacker would)."""
    all_tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    all_tensors.update({k: torch.as_tensor(np.ascontiguousarray(v)) for k, v in tensors.items()})
    meta = {"format": FORMAT, "config": model.config.to_dict(), "name": "hostile"}
    if info is not None:
        meta["movie"] = info
    return st_save(all_tensors, metadata={"latent_lab": json.dumps(meta)})


def patched_header(data: bytes, change) -> bytes:
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    change(header)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + data[8 + n:]


def _set(key, value):
    return lambda t, info: t.__setitem__("movie." + key, value)


GOOD = synthetic()
HOSTILE = {
    "points of the wrong shape": _set("points", np.zeros((5, 50, 3), np.float16)),
    "points as small integers": _set("points", np.zeros((5, 50, 2), np.int8)),
    "points as booleans": _set("points", np.zeros((5, 50, 2), np.bool_)),
    "infinite points": _set("points", np.full((5, 50, 2), np.inf, np.float32)),
    "a NaN loss": _set("loss", np.r_[1.0, np.nan, 1.0, 1.0, 1.0]),
    "steps out of order": _set("step", np.array([0, 20, 10, 30, 40])),
    "steps not from 0": _set("step", np.array([5, 20, 30, 40, 50])),
    "epochs backwards": _set("epoch", np.array([0.0, 1.0, 0.5, 1.5, 2.0])),
    "labels of another length": _set("labels", np.zeros(49, np.int32)),
    "a repeated index": _set("index", np.zeros(50, np.int32)),
    "a negative index": _set("index", -np.arange(1, 51, dtype=np.int32)),
    "no steps": lambda t, info: t.pop("movie.step"),
    "no description": lambda t, info: info.clear(),
    "an unknown plane": lambda t, info: info.__setitem__("plane", "tsne"),
    "another version": lambda t, info: info.__setitem__("version", 99),
    "class names that are numbers": lambda t, info: info.__setitem__("classes", [1, 2]),
    "too many frames": lambda t, info: t.update({"movie.points": np.zeros((1001, 1, 2), np.float16),
                                                  "movie.labels": np.zeros(1, np.int32),
                                                  "movie.index": np.zeros(1, np.int32),
                                                  **{"movie." + k: np.arange(1001.0) for k in ("epoch", "elapsed_s", "loss")},
                                                  "movie.step": np.arange(1001)}),
}


@pytest.mark.parametrize("case", HOSTILE, ids=list(HOSTILE))
def test_hostile_movie_tensors_leave_the_model_loadable(tmp_path, case):
    model = build_model(tiny(), seed=0)
    tensors, info = movie_tensors(GOOD), movie_meta(GOOD)
    HOSTILE[case](tensors, info)
    data = movie_file(model, tensors, info)
    loaded, _ = read_checkpoint(data, "upload.safetensors")  # the model loads, its weights intact
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())
    assert read_movie(data) is None
    with pytest.raises(CheckpointError) as e:
        read_movie(data, strict=True)
    assert "recorded history" in assert_plain(e.value)
    lib = ModelLibrary(tmp_path / "lib")
    entry = lib.import_bytes(data, "upload.safetensors", owner="eve")
    assert [e.id for e in lib.entries()] == [entry.id] and read_movie(entry.path) is None


@pytest.mark.parametrize("change", [
    lambda h: h["movie.points"].__setitem__("shape", [10**9, 2000, 2]),  # absurd, and not what the bytes hold
    lambda h: h["movie.points"].__setitem__("data_offsets", [0, 10**12]),
    lambda h: h["movie.loss"].__setitem__("dtype", "X9"),
    lambda h: h["movie.step"].__setitem__("shape", "five"),
], ids=["absurd shape", "offsets past the end", "unknown dtype", "shape not numbers"])
def test_hostile_movie_headers_are_one_sentence(tmp_path, change):
    good = checkpoint_bytes(build_model(tiny(), seed=0), tensors=movie_tensors(GOOD), movie=movie_meta(GOOD))
    data = patched_header(good, change)
    try:
        read_checkpoint(data, "upload.safetensors")
    except CheckpointError as e:  # safetensors checks sizes against the bytes: damaged
        assert_plain(e)
    assert read_movie(data) is None
    with pytest.raises(CheckpointError) as e:
        read_movie(data, strict=True)
    assert_plain(e.value)


def test_a_checkpoint_refuses_to_save_a_tensor_that_is_not_beside_the_weights():
    with pytest.raises(CheckpointError, match="beside the weights"):
        checkpoint_bytes(build_model(tiny(), seed=0), tensors={"encoder.0.weight": np.zeros(3)})


def test_onnx_export_of_a_checkpoint_with_a_movie(tmp_path):
    pytest.importorskip("onnx")
    from vae.onnx.export import export_checkpoint

    result = export_checkpoint(saved(tmp_path, GOOD), tmp_path / "onnx")
    assert Path(result["encoder"]).stat().st_size > 0 and Path(result["decoder"]).stat().st_size > 0


# ------------------------------------------------------------------ the GIF and the command line

def test_gif_has_every_frame(run2d):
    movie = run2d[1].movie
    data = gif_bytes(movie, size=240, fps=10)
    gif = Image.open(io.BytesIO(data))
    assert gif.format == "GIF" and gif.is_animated and gif.n_frames == movie.frames and gif.size == (240, 240)
    gif.seek(movie.frames - 1)
    assert gif.info["duration"] >= 1000  # the trained map is held
    first, last = (np.asarray(frame_image(movie, f, 240)) for f in (0, movie.frames - 1))
    assert first.shape == (240, 240, 3) and (first != last).mean() > 0.01


def test_gif_refuses_bad_options():
    with pytest.raises(ValueError, match="size"):
        gif_bytes(GOOD, size=10)
    with pytest.raises(ValueError, match="second"):
        gif_bytes(GOOD, fps=0)


def test_the_movies_colours_are_the_apps():
    from ui.figures import DIGIT_COLORS as APP_COLORS

    assert DIGIT_COLORS == APP_COLORS


def test_cli_writes_a_gif(tmp_path, capsys):
    path, out = saved(tmp_path, GOOD), tmp_path / "movie.gif"
    assert movie_cli.main([str(path), "--out", str(out), "--size", "200", "--fps", "4"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["frames"] == GOOD.frames and Image.open(out).n_frames == GOOD.frames
    assert result["bytes"] == out.stat().st_size


@pytest.mark.parametrize("args,code,words", [
    (["NOPE", "--out", "{tmp}/x.gif"], 2, "No checkpoint"),
    (["{tmp}/not.safetensors", "--out", "{tmp}/x.gif"], 2, "safetensors"),
    (["{ckpt}", "--out", "{tmp}/missing/x.gif"], 2, "does not exist"),
    (["{ckpt}", "--out", "{tmp}"], 2, "folder"),
    (["{ckpt}", "--out", "{tmp}/x.gif", "--size", "5"], 2, "--size"),
    (["{tmp}", "--out", "{tmp}/x.gif"], 2, "recorded history"),
])
def test_cli_bad_input_is_one_sentence(tmp_path, capsys, args, code, words):
    (tmp_path / "not.safetensors").write_bytes(b"hello")
    ckpt = saved(tmp_path, GOOD)
    argv = [a.format(tmp=tmp_path, ckpt=ckpt) for a in args]
    assert movie_cli.main(argv) == code
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and err.startswith("error: ") and words in err and "Traceback" not in err
    assert json.loads(out)["error"] in err


def test_cli_unwritable_output(tmp_path, capsys, monkeypatch):
    def refuse(path, data):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(movie_cli, "atomic_write", refuse)
    assert movie_cli.main([str(saved(tmp_path, GOOD)), "--out", str(tmp_path / "x.gif")]) == 1
    assert "Could not write" in capsys.readouterr().err


@pytest.mark.slow
def test_the_training_command_records_and_the_movie_command_renders(tmp_path, data_root):
    env = {"OMP_NUM_THREADS": "1", "LATENT_LAB_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    ckpt, events, gif = tmp_path / "m.safetensors", tmp_path / "m.jsonl", tmp_path / "m.gif"
    p = subprocess.run([sys.executable, "-m", "vae.train", "--latent-dim", "2", "--hidden", "64", "--threads", "1",
                        "--time-budget", "3", "--data-dir", str(data_root), "--out", str(ckpt), "--events", str(events),
                        "--no-progress"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    movie, progress = read_movie(ckpt, strict=True), EventLog(events).read(final=True)
    assert movie.frames >= MIN_FRAMES and progress.frames == movie.frames and len(movie.labels) == SUBSET
    assert progress.frame["step"] == movie.step[-1] and np.allclose(progress.frame["points"], movie.points[-1],
                                                                    atol=1e-2)
    assert max(len(line) for line in events.read_text().splitlines() if '"frame"' in line) < 20_000
    p = subprocess.run([sys.executable, "-m", "vae.movie", str(ckpt), "--out", str(gif)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert Image.open(gif).n_frames == movie.frames
    p = subprocess.run([sys.executable, "-m", "vae.train", "--latent-dim", "2", "--hidden", "64", "--threads", "1",
                        "--time-budget", "1", "--data-dir", str(data_root), "--out", str(ckpt), "--no-movie",
                        "--no-progress"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert read_movie(ckpt) is None


# ------------------------------------------------------------------ frame events

def test_frame_events_round_trip_through_the_events_file(tmp_path, run2d):
    frames = run2d[2]
    writer = EventWriter(tmp_path / "e.jsonl")
    for ev in frames:
        writer.write(ev)
    writer.close()
    log = EventLog(tmp_path / "e.jsonl")
    progress = log.read()
    assert progress.frames == len(frames) and log.bad_lines == 0
    last = frames[-1]
    assert progress.frame["step"] == last.step and progress.frame["epoch"] == last.epoch
    assert progress.frame["loss"] == last.loss and np.array_equal(progress.frame["labels"], last.labels)
    assert progress.frame["points"].shape == last.points.shape
    assert np.allclose(progress.frame["points"], last.points, atol=2e-3 * np.abs(last.points).max())
    line = json.dumps(event_to_dict(last))
    assert len(line) < 4 * len(last.labels) * 2 + 1000  # base64 float16, not thousands of JSON floats


def test_a_broken_frame_line_is_a_bad_line(tmp_path, run2d):
    good = event_to_dict(run2d[2][0])
    path = tmp_path / "e.jsonl"
    path.write_text("\n".join(json.dumps(d) for d in (
        {**good, "n": 10**9}, {**good, "points": "not base64!"}, {**good, "labels": ""}, good)) + "\n")
    log = EventLog(path)
    assert log.read().frames == 1 and log.bad_lines == 3


def test_train_config_movie_setting(tmp_path):
    with pytest.raises(ValueError, match="movie"):
        TrainConfig(movie="yes")
    job = TrainingJob(tiny(), TrainConfig(movie=False))
    job.write(tmp_path / "j.json")
    assert TrainingJob.read(tmp_path / "j.json").train.movie is False
