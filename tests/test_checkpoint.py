"""Checkpoints: bit-exact round trip, one clear CheckpointError for every bad file, atomic writes,
and a model library whose file names no user can steer and that reads each file once per version.
(Hostile files, one by one: tests/test_checkpoint_files.py.)"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from safetensors.torch import save as st_save

from vae import safetensors_header
from vae.checkpoint import (
    FORMAT, TMP_PREFIX, Actor, CheckpointError, ModelLibrary, atomic_write, checkpoint_bytes, load_checkpoint,
    read_checkpoint, save_checkpoint, weights_fingerprint,
)
from vae.config import ModelConfig
from vae.models import build_model
from vae.ownership import clean_name

pytestmark = pytest.mark.usefixtures("torch_one_thread")
TEACHER = Actor("teacher-id", teacher=True)  # may rename and delete any model but a bundled one
GENERATED_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*-[0-9a-f]{8}\.safetensors$")
# what a sentence for a user must not hold: Python's exceptions, type names, reprs of bytes or containers
NOISE = re.compile(r"Error|Exception|Traceback|NoneType|object has|attribute|<class|\\x|\bb'|[\[\]{}]"
                   r"|\b(dict|list|str|tuple|int|float|bool|None)\b")


def tiny(kind="vae", arch="mlp", latent_dim=2) -> ModelConfig:
    return ModelConfig(kind=kind, arch=arch, latent_dim=latent_dim, hidden=(32, 16))


@pytest.fixture
def model():
    return build_model(tiny(), seed=0)


@pytest.fixture
def good_bytes(model) -> bytes:
    return checkpoint_bytes(model, name="good", dataset="mnist")


def assert_same_weights(a, b) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]), k


def assert_plain(error: CheckpointError, max_len: int = 300) -> str:
    """One line for a user: short, no Python internals, no raw error chained behind it."""
    assert type(error) is CheckpointError
    assert error.__suppress_context__ or error.__context__ is None
    msg = str(error)
    assert "\n" not in msg and 0 < len(msg) < max_len and msg.endswith("."), msg
    assert not NOISE.search(msg), msg
    return msg


def assert_rejected(data: bytes, *words: str) -> str:
    with pytest.raises(CheckpointError) as e:
        read_checkpoint(data, "upload.safetensors")
    msg = assert_plain(e.value)
    for w in words:
        assert w.lower() in msg.lower(), msg
    return msg


def raw_safetensors(tensors: dict, meta: dict | None) -> bytes:
    return st_save(tensors, metadata=None if meta is None else {"latent_lab": json.dumps(meta)})


@pytest.fixture(autouse=True)
def never_unpickle(monkeypatch):
    """Loading must never reach pickle, whatever the file holds."""
    def refuse(*a, **k):
        raise AssertionError("a checkpoint was unpickled")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(torch, "load", refuse)


# ------------------------------------------------------------------ round trip


@pytest.mark.parametrize("kind", ["ae", "vae"])
@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_round_trip_is_bit_exact(tmp_path, kind, arch):
    m = build_model(tiny(kind, arch, 3), seed=1)
    meta = {"name": "my model ü", "dataset": "mnist", "metrics": {"test_nats": 101.5, "active_units": 3},
            "history": {"epoch": [1, 2], "test_nats": [130.25, 120.125]}}
    path = save_checkpoint(tmp_path / "m.safetensors", m, **meta)
    loaded, got = load_checkpoint(path)
    assert_same_weights(m, loaded)
    assert not loaded.training
    assert got.pop("config") == m.config
    assert got.pop("format") == FORMAT
    assert got == meta
    assert path.read_bytes() == checkpoint_bytes(m, **meta)  # saving is deterministic


def test_float16_storage_loads_as_float32(tmp_path, model):
    path = save_checkpoint(tmp_path / "half.safetensors", model, storage="float16")
    assert path.stat().st_size < len(checkpoint_bytes(model)) * 0.6
    loaded, _ = load_checkpoint(path)
    for k, v in loaded.state_dict().items():
        assert v.dtype == torch.float32
        assert torch.allclose(v, model.state_dict()[k], atol=1e-3, rtol=1e-3)


def test_refuses_to_save_nan_weights_or_metrics(tmp_path, model):
    with pytest.raises(CheckpointError):
        checkpoint_bytes(model, metrics={"test_nats": float("nan")})
    with torch.no_grad():
        next(model.parameters())[0, 0] = float("nan")
    with pytest.raises(CheckpointError, match="NaN"):
        save_checkpoint(tmp_path / "nan.safetensors", model)
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a temp file


# ------------------------------------------------------------------ rejection


@pytest.mark.parametrize("data", [b"", b"\x00" * 8, b"hello world, not a checkpoint", os.urandom(4096),
                                  b"\xff" * 64], ids=["empty", "zeros", "text", "random", "ff"])
def test_rejects_garbage(data):
    assert_rejected(data)


def test_rejects_corrupt_header(good_bytes):
    data = bytearray(good_bytes)
    data[10:30] = b"#" * 20  # inside the JSON header
    assert_rejected(bytes(data))


@pytest.mark.parametrize("frac", [0.0, 0.001, 0.01, 0.5, 0.99])
def test_rejects_truncated(good_bytes, frac):
    assert_rejected(good_bytes[:max(1, int(len(good_bytes) * frac))])


def test_rejects_truncated_file_on_disk(tmp_path, good_bytes):
    path = tmp_path / "cut.safetensors"
    path.write_bytes(good_bytes[:len(good_bytes) - 100])
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_rejects_torch_save_zip(model):
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    assert_rejected(buf.getvalue(), "pickle")


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_rejects_raw_pickle(model, protocol):
    data = pickle.dumps({"state_dict": {k: v.tolist() for k, v in model.state_dict().items()}}, protocol=protocol)
    assert_rejected(data)


def test_rejects_safetensors_without_our_metadata(model):
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    assert_rejected(st_save(tensors), "not a Latent Lab checkpoint")
    assert_rejected(st_save(tensors, metadata={"format": "pt"}), "not a Latent Lab checkpoint")


@pytest.mark.parametrize("meta", [
    {"format": "someone-else/2", "config": tiny().to_dict()},
    {"format": FORMAT},
    {"format": FORMAT, "config": {"kind": "vae", "latent_dim": 0}},
    {"format": FORMAT, "config": {"kind": "vae", "bogus": 1}},
    {"format": FORMAT, "config": "vae"},
    [1, 2, 3],
], ids=["format", "no-config", "bad-latent", "unknown-field", "config-string", "list"])
def test_rejects_bad_metadata(model, meta):
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    assert_rejected(raw_safetensors(tensors, meta))


def test_rejects_metadata_that_is_not_json(model):
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    assert_rejected(st_save(tensors, metadata={"latent_lab": "{not json"}))


def test_rejects_shapes_that_do_not_match_the_config(model):
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "config": tiny(latent_dim=3).to_dict()}  # weights are for 2-d
    assert_rejected(raw_safetensors(tensors, meta), "shape")


def test_rejects_missing_and_extra_keys(model):
    meta = {"format": FORMAT, "config": model.config.to_dict()}
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    dropped = dict(tensors)
    dropped.pop(next(iter(dropped)))
    assert_rejected(raw_safetensors(dropped, meta), "missing")
    assert_rejected(raw_safetensors({**tensors, "extra.weight": torch.zeros(3)}, meta), "unexpected")


def test_rejects_wrong_dtype(model):
    meta = {"format": FORMAT, "config": model.config.to_dict()}
    tensors = {k: v.to(torch.float64).contiguous() for k, v in model.state_dict().items()}
    assert_rejected(raw_safetensors(tensors, meta))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_rejects_non_finite_weights(model, bad):
    meta = {"format": FORMAT, "config": model.config.to_dict()}
    tensors = {k: v.clone().contiguous() for k, v in model.state_dict().items()}
    last = list(tensors)[-1]
    tensors[last].view(-1)[0] = bad
    assert_rejected(raw_safetensors(tensors, meta), "NaN")


def test_load_missing_file_or_folder(tmp_path):
    with pytest.raises(CheckpointError, match="No checkpoint"):
        load_checkpoint(tmp_path / "nope.safetensors")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path)


# ------------------------------------------------------------------ atomic writes


def test_atomic_write_leaves_no_temp_file(tmp_path, model):
    save_checkpoint(tmp_path / "m.safetensors", model)
    save_checkpoint(tmp_path / "m.safetensors", model, name="again")  # overwrite
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]
    assert load_checkpoint(tmp_path / "m.safetensors")[1]["name"] == "again"


def test_interrupted_write_keeps_the_old_file(tmp_path, model, monkeypatch):
    path = save_checkpoint(tmp_path / "m.safetensors", model, name="old")
    before = path.read_bytes()

    def crash(src, dst):
        raise OSError("disk unplugged")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        save_checkpoint(path, build_model(tiny(), seed=9), name="new")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_atomic_write_killed_mid_write(tmp_path, monkeypatch):
    path = tmp_path / "f.bin"
    atomic_write(path, b"old")

    def die(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", die)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, b"new" * 1000)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


# ------------------------------------------------------------------ the model library


@pytest.fixture
def lib(tmp_path):
    return ModelLibrary(tmp_path / "lib" / "models")


HOSTILE = ["../../etc/passwd", "/abs/path", "a\x00b", "..", ".", "", "   ", "x" * 5000, "ünïcødé 名前 🙂",
           "C:\\Windows\\system32", "name.safetensors", "-", "~/.bashrc", "$(rm -rf /)", "\n\r\t"]


@pytest.mark.parametrize("name", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_names_stay_inside(tmp_path, lib, model, name):
    before = {p for p in tmp_path.rglob("*")}
    entry = lib.save(model, name=name)
    assert entry.path.parent.resolve() == lib.user_dir.resolve()
    assert GENERATED_NAME.match(entry.path.name), entry.path.name
    assert entry.id == entry.path.stem
    created = {p for p in tmp_path.rglob("*")} - before
    assert created == {entry.path}  # nothing written anywhere else, no temp file left
    assert 1 <= len(entry.name) <= 100
    if clean_name(name):
        assert entry.name == clean_name(name)  # the typed name is kept (as plain text), as metadata only
    loaded, meta = lib.load(entry.id)
    assert meta["name"] == entry.name
    assert_same_weights(model, loaded)


def test_library_saves_float16_on_request(lib, model):
    entry = lib.save(model, name="half", storage="float16")
    assert "storage" not in entry.meta
    assert torch.allclose(lib.load(entry.id)[0].state_dict()["decoder.0.0.weight"],
                          model.state_dict()["decoder.0.0.weight"], atol=1e-3)
    assert entry.path.stat().st_size < lib.save(model, name="full").path.stat().st_size * 0.6


def test_same_name_twice_gives_two_files(lib, model):
    a, b = lib.save(model, name="twin"), lib.save(model, name="twin")
    assert a.path != b.path and a.id != b.id
    assert sorted(e.id for e in lib.entries()) == sorted([a.id, b.id])


def test_entries_skip_broken_files(lib, model):
    good = lib.save(model, name="good")
    (lib.user_dir / "broken.safetensors").write_bytes(b"\x01" * 100)
    (lib.user_dir / "empty.safetensors").write_bytes(b"")
    assert [e.id for e in lib.entries()] == [good.id]
    with pytest.raises(CheckpointError):
        lib.get("broken")


def test_rename_keeps_file_and_fingerprint(lib, model):
    entry = lib.save(model, name="before", metrics={"test_nats": 99.0})
    fp, path = entry.fingerprint, entry.path
    renamed = lib.rename(entry.id, "  after  ", TEACHER)
    assert renamed.path == path and renamed.id == entry.id
    assert renamed.name == "after"
    assert renamed.fingerprint == fp == weights_fingerprint(path)
    assert renamed.metrics == {"test_nats": 99.0}
    assert_same_weights(model, lib.load(entry.id)[0])
    assert [p.name for p in lib.user_dir.iterdir()] == [path.name]
    with pytest.raises(CheckpointError, match="blank"):
        lib.rename(entry.id, "   ", TEACHER)


def test_fingerprint_follows_the_weights(lib):
    a = lib.save(build_model(tiny(), seed=0), name="same")
    b = lib.save(build_model(tiny(), seed=0), name="other name")
    c = lib.save(build_model(tiny(), seed=1), name="same")
    assert a.fingerprint == b.fingerprint != c.fingerprint


def test_bundled_models_are_read_only(tmp_path, model):
    bundled = tmp_path / "bundled"
    bundled.mkdir()
    save_checkpoint(bundled / "vae-2d.safetensors", model, name="Bundled")
    lib = ModelLibrary(tmp_path / "user", bundled)
    entry = lib.get("vae-2d")
    assert entry.bundled and entry.name == "Bundled"
    before = entry.path.read_bytes()
    with pytest.raises(CheckpointError, match="bundled"):
        lib.delete("vae-2d", TEACHER)
    with pytest.raises(CheckpointError, match="bundled"):
        lib.rename("vae-2d", "mine now", TEACHER)
    assert entry.path.read_bytes() == before


def test_delete(lib, model):
    entry = lib.save(model, name="doomed")
    lib.delete(entry.id, TEACHER)
    assert not entry.path.exists()
    assert lib.entries() == []
    with pytest.raises(CheckpointError):
        lib.delete(entry.id, TEACHER)


def test_import_bytes_validates(lib, model, good_bytes):
    for bad in (b"junk", pickle.dumps({"a": 1}), good_bytes[:200]):
        with pytest.raises(CheckpointError):
            lib.import_bytes(bad, "evil.safetensors")
    assert list(lib.user_dir.iterdir()) == []
    entry = lib.import_bytes(good_bytes, "../../../etc/evil.safetensors")
    assert entry.path.parent == lib.user_dir and GENERATED_NAME.match(entry.path.name)
    assert entry.name == "good"
    assert_same_weights(model, lib.load(entry.id)[0])


def test_import_uses_the_file_name_when_unnamed(lib, model):
    entry = lib.import_bytes(checkpoint_bytes(model), "My Upload.safetensors")
    assert entry.name == "My Upload"


@pytest.mark.parametrize("key", ["model", "self", "path", "storage", "name", "data", "filename"])
def test_import_survives_metadata_keys_that_shadow_arguments(lib, model, key):
    meta = {"format": FORMAT, "config": model.config.to_dict(), key: "x"}
    data = raw_safetensors({k: v.contiguous() for k, v in model.state_dict().items()}, meta)
    entry = lib.import_bytes(data, "upload.safetensors")
    assert entry.path.parent == lib.user_dir
    assert_same_weights(model, lib.load(entry.id)[0])


def test_sweep_removes_only_old_temp_files(tmp_path, model):
    folder = tmp_path / "models"
    folder.mkdir()
    old, fresh = folder / f"{TMP_PREFIX}old.part", folder / f"{TMP_PREFIX}fresh.part"
    old.write_bytes(b"half a checkpoint")
    fresh.write_bytes(b"a write in progress")
    an_hour_ago = time.time() - 7200
    os.utime(old, (an_hour_ago, an_hour_ago))
    keep = folder / "keep.safetensors"
    keep.write_bytes(checkpoint_bytes(model))
    lib = ModelLibrary(folder)  # the constructor sweeps
    assert not old.exists() and fresh.exists() and keep.exists()
    assert lib.sweep(older_than_s=0) == 1
    assert not fresh.exists() and keep.exists()


def test_header_length_that_starts_like_a_pickle_still_loads():
    """The header length is little-endian, so its first byte can be anything: a real checkpoint
    whose header length starts with 0x80 (pickle's magic byte) must load all the same."""
    from vae.checkpoint import checkpoint_bytes, read_checkpoint

    model = build_model(ModelConfig(kind="vae", latent_dim=2, hidden=(16,)), seed=0)
    for pad in range(512):  # safetensors pads its header to 8 bytes: 0x80 comes round every 256
        data = checkpoint_bytes(model, name="x" * pad)
        if data[:1] == b"\x80":
            break
    assert data[:1] == b"\x80"
    loaded, meta = read_checkpoint(data, "m.safetensors")
    assert meta["name"] == "x" * pad
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)


# ------------------------------------------------------------------ each file read once per version


@pytest.fixture
def header_reads(monkeypatch) -> list[str]:
    """The names of the files whose safetensors header is parsed (every read goes through one function)."""
    calls = []
    real = safetensors_header.raw_header  # split from vae.checkpoint, where the library's reads go through it

    def spy(f, size, name):
        calls.append(name)
        return real(f, size, name)

    monkeypatch.setattr(safetensors_header, "raw_header", spy)
    return calls


def test_listing_does_not_reread_unchanged_files(lib, model, header_reads):
    a, b = lib.save(model, name="a"), lib.save(build_model(tiny(), seed=1), name="b")
    (lib.user_dir / "broken.safetensors").write_bytes(b"\x01" * 100)
    header_reads.clear()
    for _ in range(3):  # three page runs, each listing, fingerprinting and getting
        assert [(e.id, e.fingerprint) for e in lib.entries()] == [(b.id, b.fingerprint), (a.id, a.fingerprint)]
        assert lib.get(b.id).fingerprint == weights_fingerprint(b.path)
    assert header_reads == ["broken.safetensors"] + [b.path.name] * 3  # the broken file once; the rest: the checks


def test_fingerprint_is_not_hashed_on_access(lib, model, monkeypatch):
    entry = lib.save(model, name="m")
    monkeypatch.setattr(safetensors_header, "digest", lambda *a: pytest.fail("hashed again"))
    assert len({entry.fingerprint, *(e.fingerprint for e in lib.entries() for _ in range(3))}) == 1


def test_listing_sees_a_rename_and_a_rewrite(lib, model, header_reads):
    entry = lib.save(model, name="a")
    renamed = lib.rename(entry.id, "b", TEACHER)
    assert lib.get(entry.id).name == "b" and renamed.fingerprint == entry.fingerprint
    # a rewrite with other weights, of the same size, with the old mtime put back: a new inode tells it apart
    st = entry.path.stat()
    save_checkpoint(entry.path, build_model(tiny(), seed=5), name="c", owner=None, created=renamed.created)
    os.utime(entry.path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert entry.path.stat().st_size == st.st_size and entry.path.stat().st_mtime_ns == st.st_mtime_ns
    header_reads.clear()
    rewritten = lib.get(entry.id)
    assert rewritten.name == "c" and rewritten.fingerprint == weights_fingerprint(entry.path) != entry.fingerprint
    assert header_reads == [entry.path.name, entry.path.name]  # listed once, and the check above
    lib.delete(entry.id, TEACHER)
    assert lib.entries() == []


def test_many_threads_list_one_library(tmp_path, model, header_reads):
    first = ModelLibrary(tmp_path / "models")
    saved = [first.save(build_model(tiny(), seed=i), name=f"m{i}") for i in range(4)]
    lib = ModelLibrary(first.user_dir)  # a fresh library: nothing read yet
    header_reads.clear()
    with ThreadPoolExecutor(8) as pool:
        listings = list(pool.map(lambda _: [(e.id, e.name, e.fingerprint) for e in lib.entries()], range(64)))
    assert all(listing == [(e.id, e.name, e.fingerprint) for e in reversed(saved)] for listing in listings)  # newest first
    assert 4 <= len(header_reads) <= 4 * 8  # each file read once, or a few times by threads racing to it
    header_reads.clear()
    lib.entries()
    assert header_reads == []
