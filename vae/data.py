"""Datasets held whole in memory: MNIST, Fashion-MNIST and any folder of IDX files.

    from vae.data import load_dataset
    ds = load_dataset("mnist", root="../shared/data")
    ds.x_train  # (60000, 28, 28) uint8 tensor;  ds.y_train (60000,) int64
    ds.x_test   # (10000, 28, 28) uint8 tensor;  ds.y_test  (10000,) int64

The root comes from the argument, else $LATENT_LAB_DATA, else a per-user cache folder. On a
shared server a training's folder must lie inside `allowed_data_roots()` ($LATENT_LAB_DATA_ROOTS,
else that root): `check_data_folder` resolves symlinks and refuses anything outside.
MNIST and Fashion-MNIST are read from torchvision's layout (`<root>/MNIST/raw/...`) and are
downloaded by torchvision where a network exists. A "custom" dataset is any folder with the
four standard IDX files, plain or gzipped. Every failure is one `DataError` whose message
names the folder and what to put there.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .untrusted import clip

DATASETS = ("mnist", "fashion", "custom")
# torchvision class name and folder for each built-in dataset
_TORCHVISION = {"mnist": "MNIST", "fashion": "FashionMNIST"}
# Debian's dataset-fashion-mnist package puts the files here.
_SYSTEM_DIRS = {"fashion": [Path("/usr/share/datasets/fashion-mnist")]}
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
CLASS_NAMES = {
    "mnist": [str(i) for i in range(10)],
    "fashion": ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"],
}
_MAX_IDX_BYTES = 200_000_000


class DataError(Exception):
    """A dataset could not be read; the message says where and what to do."""


def default_root() -> Path:
    env = os.environ.get("LATENT_LAB_DATA")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "latent-lab" / "data"


def allowed_data_roots() -> list[Path]:
    """The folders a server's users may train from, symlinks resolved: $LATENT_LAB_DATA_ROOTS (folders
    separated by os.pathsep), else the data root (default_root()). The command line reads any folder."""
    raw = os.environ.get("LATENT_LAB_DATA_ROOTS", "")
    roots = [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()] or [default_root()]
    return list(dict.fromkeys(p.resolve() for p in roots))


def check_data_folder(folder: str | os.PathLike, roots: list[Path] | None = None, what: str = "a dataset") -> Path:
    """The folder with its symlinks resolved, if it lies inside one of `roots` (allowed_data_roots() by
    default); else a DataError, so that `..` or a symlink cannot lead a server's training out of them."""
    roots = [Path(r).resolve() for r in (allowed_data_roots() if roots is None else roots)]
    try:
        resolved = Path(folder).expanduser().resolve()
    except (ValueError, OSError, RuntimeError):  # a NUL byte, a symlink loop: no folder at all
        resolved = None
    if resolved is not None and any(resolved.is_relative_to(root) for root in roots):
        return resolved
    inside = " or ".join(str(r) for r in roots) or "no folder (none is configured)"
    raise DataError(f"On this server {what} must be a folder inside {inside}; {clip(str(folder), 120)} is not.")


@dataclass
class Dataset:
    name: str
    x_train: torch.Tensor | None  # (N, 28, 28) uint8, or None when only the test split is at hand
    y_train: torch.Tensor | None  # (N,) int64
    x_test: torch.Tensor  # (M, 28, 28) uint8
    y_test: torch.Tensor  # (M,) int64
    source: str = ""  # where it was read from

    @property
    def class_names(self) -> list[str]:
        return CLASS_NAMES.get(self.name, [str(i) for i in range(10)])


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (plain or .gz) into a uint8 array, checking its header and size."""
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            with gzip.open(path, "rb") as f:
                raw = f.read(_MAX_IDX_BYTES + 1)
    except (OSError, EOFError, zlib.error) as e:  # zlib.error: a damaged deflate stream inside a .gz
        raise DataError(f"Could not read {path}: {e}. Replace it with an intact copy.") from None
    if len(raw) < 8 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path} is not an unsigned-byte IDX file (wrong header). "
                        "Use the original MNIST-format files.")
    ndim = raw[3]
    if ndim not in (1, 3) or len(raw) < 4 + 4 * ndim:
        raise DataError(f"{path} has {ndim} dimensions; expected labels (1) or images (3).")
    shape = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    expected = int(np.prod(shape, dtype=np.int64))
    data = raw[4 + 4 * ndim:]
    if len(data) != expected:
        raise DataError(f"{path} is truncated or padded: the header promises {expected:,} bytes "
                        f"of data, the file holds {len(data):,}. Download it again.")
    return np.frombuffer(data, dtype=np.uint8).reshape(shape)


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def read_idx_split(folder: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    img_stem, lbl_stem = SPLIT_FILES[split]
    img_path, lbl_path = _find(folder, img_stem), _find(folder, lbl_stem)
    if img_path is None or lbl_path is None:
        missing = [s for s, p in ((img_stem, img_path), (lbl_stem, lbl_path)) if p is None]
        raise DataError(f"{folder} is missing {' and '.join(missing)} (plain or .gz). "
                        "Put the four standard MNIST-format IDX files there.")
    x, y = read_idx(img_path), read_idx(lbl_path)
    if len(x) == 0:
        raise DataError(f"{img_path} holds no images; put a non-empty {split} split there.")
    if x.ndim != 3 or x.shape[1:] != (28, 28):
        raise DataError(f"{img_path} holds images of shape {x.shape[1:]}; Latent Lab needs 28x28 digits.")
    if y.ndim != 1 or len(y) != len(x):
        raise DataError(f"{lbl_path} has {len(y)} labels for {len(x)} images in {img_path.name}.")
    if y.max(initial=0) > 9:
        raise DataError(f"{lbl_path} has labels above 9; Latent Lab expects ten classes (0-9).")
    return torch.from_numpy(x.copy()), torch.from_numpy(y.astype(np.int64))


def _candidate_folders(name: str, root: Path) -> list[Path]:
    if name == "custom":
        return [root]
    sub = _TORCHVISION[name]
    return [root / sub / "raw", root / sub, root, *_SYSTEM_DIRS.get(name, [])]


def _download(name: str, root: Path) -> None:
    """Let torchvision fetch the files (needs a network); failures become a DataError."""
    try:
        import torchvision.datasets as tvd

        cls = getattr(tvd, _TORCHVISION[name])
        for train in (True, False):
            cls(str(root), train=train, download=True)
    except Exception as e:  # no network, a proxy, a full disk: all mean "put the files there yourself"
        folder = root / _TORCHVISION[name] / "raw"
        raise DataError(
            f"{name} is not in {folder} and could not be downloaded ({type(e).__name__}). "
            f"Copy the four {name} IDX files there, or set LATENT_LAB_DATA to a folder that has them."
        ) from None


def load_dataset(name: str = "mnist", root: str | os.PathLike | None = None, download: bool = True,
                 require_train: bool = True) -> Dataset:
    """Load a whole dataset into memory. `name` is one of DATASETS; for "custom", `root` is the folder."""
    if name not in DATASETS:
        raise DataError(f"Unknown dataset {name!r}; choose one of {', '.join(DATASETS)}.")
    root = Path(root).expanduser() if root else default_root()
    if name == "custom" and not root.is_dir():
        raise DataError(f"{root} is not a folder. Point the custom dataset at a folder of IDX files.")
    splits = ("train", "test") if require_train else ("test",)

    def attempt() -> Dataset | None:
        errors = []
        for folder in _candidate_folders(name, root):
            try:
                parts = {s: read_idx_split(folder, s) for s in splits}
            except DataError as e:
                if folder.is_dir() and any(folder.glob("*idx*")):
                    raise  # the files are there but broken: say so, don't hunt elsewhere
                errors.append(e)
                continue
            train = parts.get("train", (None, None))
            return Dataset(name, train[0], train[1], *parts["test"], source=str(folder))
        return None

    found = attempt()
    if found is None and name != "custom" and download:
        _download(name, root)
        found = attempt()
    if found is None:
        where = root if name == "custom" else root / _TORCHVISION[name] / "raw"
        raise DataError(f"No {name} data in {where}. Put the four MNIST-format IDX files there "
                        "(train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
                        "t10k-labels-idx1-ubyte; .gz is fine), or set LATENT_LAB_DATA to a folder that has them.")
    return found


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 digits (B, 28, 28) -> float images (B, 1, 28, 28) in [0, 1]."""
    return x.unsqueeze(1).float().div_(255.0)
