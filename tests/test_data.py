"""Datasets: MNIST from the shared root, custom IDX folders, one clear DataError for every bad input, and
the data roots a server's trainings must stay inside."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from vae.data import (
    DataError, Dataset, allowed_data_roots, check_data_folder, default_root, load_dataset, read_idx, to_float,
)

TRAIN_IMG, TRAIN_LBL = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"
TEST_IMG, TEST_LBL = "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"


def idx_bytes(a: np.ndarray) -> bytes:
    """An unsigned-byte IDX file: zero, zero, 0x08, ndim, big-endian sizes, data."""
    a = np.asarray(a, np.uint8)
    header = bytes([0, 0, 0x08, a.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in a.shape)
    return header + a.tobytes()


def write_idx_folder(folder: Path, n_train=12, n_test=6, gz=False, seed=0) -> dict:
    """Four small synthetic IDX files; returns the arrays written."""
    rng = np.random.default_rng(seed)
    arrays = {
        TRAIN_IMG: rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        TRAIN_LBL: rng.integers(0, 10, n_train, dtype=np.uint8),
        TEST_IMG: rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        TEST_LBL: rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, a in arrays.items():
        data = idx_bytes(a)
        if gz:
            (folder / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return arrays


def assert_data_error(folder: Path, **kw) -> str:
    """load_dataset raises exactly DataError (no struct.error, ValueError, ... in the chain) naming the folder."""
    with pytest.raises(DataError) as e:
        load_dataset(kw.pop("name", "custom"), folder, **kw)
    assert type(e.value) is DataError
    assert e.value.__suppress_context__ or e.value.__context__ is None  # no raw error chained behind it
    msg = str(e.value)
    assert str(folder) in msg, msg
    assert "\n" not in msg and "Traceback" not in msg
    return msg


# ------------------------------------------------------------------ the real MNIST


def test_mnist_from_shared_root(mnist):
    assert mnist.name == "mnist"
    assert mnist.x_train.shape == (60000, 28, 28) and mnist.x_train.dtype == torch.uint8
    assert mnist.y_train.shape == (60000,) and mnist.y_train.dtype == torch.int64
    assert mnist.x_test.shape == (10000, 28, 28) and mnist.x_test.dtype == torch.uint8
    assert mnist.y_test.shape == (10000,) and mnist.y_test.dtype == torch.int64
    assert set(mnist.y_test.unique().tolist()) == set(range(10))
    assert mnist.x_train.max() == 255 and mnist.x_train.min() == 0
    assert mnist.class_names == [str(i) for i in range(10)]
    assert Path(mnist.source).is_dir()


def test_mnist_test_split_only(data_root):
    ds = load_dataset("mnist", data_root, download=False, require_train=False)
    assert ds.x_train is None and ds.y_train is None
    assert ds.x_test.shape == (10000, 28, 28)


def test_root_from_environment(data_root, monkeypatch):
    monkeypatch.setenv("LATENT_LAB_DATA", str(data_root))
    assert default_root() == data_root
    assert load_dataset("mnist", download=False, require_train=False).x_test.shape == (10000, 28, 28)


def test_default_root_is_a_user_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("LATENT_LAB_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_root() == tmp_path / "latent-lab" / "data"


def test_to_float():
    x = torch.tensor([[[0, 255], [51, 102]]], dtype=torch.uint8)  # (1, 2, 2)
    f = to_float(x)
    assert f.shape == (1, 1, 2, 2) and f.dtype == torch.float32
    assert torch.allclose(f.flatten(), torch.tensor([0.0, 1.0, 0.2, 0.4]))


# ------------------------------------------------------------------ custom folders


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_custom_folder(tmp_path, gz):
    arrays = write_idx_folder(tmp_path / "digits", gz=gz)
    ds = load_dataset("custom", tmp_path / "digits")
    assert isinstance(ds, Dataset) and ds.name == "custom"
    assert ds.x_train.dtype == torch.uint8 and ds.y_train.dtype == torch.int64
    assert np.array_equal(ds.x_train.numpy(), arrays[TRAIN_IMG])
    assert np.array_equal(ds.y_train.numpy(), arrays[TRAIN_LBL])
    assert np.array_equal(ds.x_test.numpy(), arrays[TEST_IMG])
    assert np.array_equal(ds.y_test.numpy(), arrays[TEST_LBL])


def test_torchvision_layout_under_a_root(tmp_path):
    arrays = write_idx_folder(tmp_path / "MNIST" / "raw")
    ds = load_dataset("mnist", tmp_path, download=False)
    assert np.array_equal(ds.x_test.numpy(), arrays[TEST_IMG])


def test_read_idx_round_trip(tmp_path):
    a = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    (tmp_path / "f").write_bytes(idx_bytes(a))
    assert np.array_equal(read_idx(tmp_path / "f"), a)


# ------------------------------------------------------------------ every bad input: one DataError


def test_truncated_idx(tmp_path):
    folder = tmp_path / "digits"
    write_idx_folder(folder)
    data = (folder / TRAIN_IMG).read_bytes()
    (folder / TRAIN_IMG).write_bytes(data[:len(data) // 2])
    assert "truncated" in assert_data_error(folder)


@pytest.mark.parametrize("keep", [0, 3, 7, 10])
def test_idx_cut_inside_the_header(tmp_path, keep):
    folder = tmp_path / "digits"
    write_idx_folder(folder)
    (folder / TEST_LBL).write_bytes((folder / TEST_LBL).read_bytes()[:keep])
    assert_data_error(folder)


def test_padded_idx(tmp_path):
    folder = tmp_path / "digits"
    write_idx_folder(folder)
    (folder / TEST_IMG).write_bytes((folder / TEST_IMG).read_bytes() + b"\x00" * 10)
    assert_data_error(folder)


@pytest.mark.parametrize("header", [b"\x00\x00\x0d\x03", b"\x08\x00\x00\x03", b"PK\x03\x04", b"\x00\x00\x08\x07"])
def test_wrong_magic(tmp_path, header):
    folder = tmp_path / "digits"
    write_idx_folder(folder)
    data = (folder / TRAIN_IMG).read_bytes()
    (folder / TRAIN_IMG).write_bytes(header + data[4:])
    assert_data_error(folder)


def test_truncated_gzip(tmp_path):
    folder = tmp_path / "digits"
    write_idx_folder(folder, gz=True)
    data = (folder / (TRAIN_IMG + ".gz")).read_bytes()
    (folder / (TRAIN_IMG + ".gz")).write_bytes(data[:len(data) // 2])
    assert_data_error(folder)


def test_corrupt_gzip(tmp_path):
    folder = tmp_path / "digits"
    write_idx_folder(folder, gz=True)
    path = folder / (TRAIN_IMG + ".gz")
    data = bytearray(path.read_bytes())
    data[12:40] = b"\xff" * 28  # inside the deflate stream: zlib fails, not gzip's own header check
    path.write_bytes(bytes(data))
    assert_data_error(folder)


def test_images_that_are_not_28x28(tmp_path):
    folder = tmp_path / "digits"
    write_idx_folder(folder)
    (folder / TEST_IMG).write_bytes(idx_bytes(np.zeros((6, 32, 32), np.uint8)))
    assert "28x28" in assert_data_error(folder)


def test_labels_that_do_not_match(tmp_path):
    folder = tmp_path / "digits"
    write_idx_folder(folder)
    (folder / TEST_LBL).write_bytes(idx_bytes(np.zeros(5, np.uint8)))  # 5 labels for 6 images
    assert_data_error(folder)
    (folder / TEST_LBL).write_bytes(idx_bytes(np.full(6, 11, np.uint8)))  # label 11
    assert_data_error(folder)


def test_empty_split(tmp_path):
    folder = tmp_path / "digits"
    write_idx_folder(folder)
    (folder / TRAIN_IMG).write_bytes(idx_bytes(np.zeros((0, 28, 28), np.uint8)))
    (folder / TRAIN_LBL).write_bytes(idx_bytes(np.zeros(0, np.uint8)))
    assert_data_error(folder)


def test_folder_of_something_else(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "cat.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a digit")
    (folder / "notes.txt").write_text("hello")
    msg = assert_data_error(folder)
    assert "IDX" in msg


def test_folder_with_files_named_like_idx_but_not(tmp_path):
    folder = tmp_path / "fake"
    folder.mkdir()
    for name in (TRAIN_IMG, TRAIN_LBL, TEST_IMG, TEST_LBL):
        (folder / name).write_text("<html>404 Not Found</html>")
    assert_data_error(folder)


def test_custom_path_that_is_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    assert_data_error(tmp_path / "file")


def test_custom_folder_missing(tmp_path):
    assert_data_error(tmp_path / "nowhere")


def test_some_files_missing(tmp_path):
    folder = tmp_path / "digits"
    write_idx_folder(folder)
    (folder / TEST_LBL).unlink()
    assert_data_error(folder)


def test_mnist_missing_without_download(tmp_path):
    msg = assert_data_error(tmp_path / "empty-root", name="mnist", download=False)
    assert "LATENT_LAB_DATA" in msg
    assert not (tmp_path / "empty-root").exists()  # a failed lookup creates nothing


def test_broken_mnist_is_reported_not_skipped(tmp_path):
    folder = tmp_path / "MNIST" / "raw"
    write_idx_folder(folder)
    (folder / TEST_IMG).write_bytes(b"\x00\x00\x08\x03")  # header cut short
    assert_data_error(tmp_path, name="mnist", download=False)


def test_unknown_dataset_name(tmp_path):
    with pytest.raises(DataError, match="Unknown dataset"):
        load_dataset("cifar", tmp_path)


# ------------------------------------------------------------------ the data roots of a server


def test_data_roots_default_to_the_data_root(monkeypatch, tmp_path):
    monkeypatch.delenv("LATENT_LAB_DATA_ROOTS", raising=False)
    monkeypatch.setenv("LATENT_LAB_DATA", str(tmp_path / "data"))
    assert allowed_data_roots() == [(tmp_path / "data").resolve()]


def test_data_roots_from_the_environment(monkeypatch, tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    monkeypatch.setenv("LATENT_LAB_DATA_ROOTS", f"{tmp_path / 'a'}{os.pathsep}{os.pathsep}{tmp_path / 'link'}"
                                                f"{os.pathsep}{tmp_path / 'a'}")
    assert allowed_data_roots() == [tmp_path / "a", tmp_path / "real"]  # resolved, blanks and repeats dropped


@pytest.fixture
def data_tree(tmp_path) -> Path:
    """root/ with a set inside, a symlink leading out of it, and a symlink to a folder inside it."""
    root = tmp_path / "data"
    write_idx_folder(root / "digits")
    write_idx_folder(tmp_path / "outside")
    (root / "escape").symlink_to(tmp_path / "outside")
    (root / "alias").symlink_to(root / "digits")
    return root


def test_a_folder_inside_the_roots_is_accepted(data_tree):
    roots = [data_tree]
    assert check_data_folder(data_tree / "digits", roots) == (data_tree / "digits").resolve()
    assert check_data_folder(data_tree, roots) == data_tree.resolve()  # the root itself
    assert check_data_folder(data_tree / "alias", roots) == (data_tree / "digits").resolve()  # a link that stays in
    assert check_data_folder(data_tree / "digits" / ".." / "digits", roots) == (data_tree / "digits").resolve()


@pytest.mark.parametrize("where", ["/etc", "{root}/../outside", "{root}/escape", "{root}/escape/", "{root}-sibling",
                                   "{root}/digits/../../outside"])
def test_a_folder_outside_the_roots_is_refused(data_tree, where):
    folder = where.format(root=data_tree)
    with pytest.raises(DataError) as e:
        check_data_folder(folder, [data_tree], what="a custom dataset")
    assert str(e.value) == f"On this server a custom dataset must be a folder inside {data_tree.resolve()}; {folder} is not."


def test_a_folder_that_cannot_be_a_path_is_refused_with_the_sentence(data_tree):
    (data_tree / "loop").symlink_to(data_tree / "loop")
    for folder in ("a\x00b", str(data_tree / "loop" / "x")):
        with pytest.raises(DataError, match="must be a folder inside"):
            check_data_folder(folder, [data_tree])


def test_the_refusal_names_every_root(data_tree, tmp_path, monkeypatch):
    other = tmp_path / "more"
    monkeypatch.setenv("LATENT_LAB_DATA_ROOTS", f"{data_tree}{os.pathsep}{other}")
    with pytest.raises(DataError, match=f"inside {data_tree.resolve()} or {other.resolve()};"):
        check_data_folder("/etc")
    assert check_data_folder(other / "x") == other.resolve() / "x"  # need not exist yet: loading says so
