"""The latent movie in a checkpoint: tensors named `movie.*` beside the weights, and a small "movie"
entry in the Latent Lab metadata (plane, subset size, frames, dataset, class names).

    save_checkpoint(path, model, tensors=movie_tensors(movie), movie=movie_meta(movie), **meta)
    movie = read_movie(path)            # Movie, or None: no history (older, imported, ONNX) or a damaged one
    read_movie(path, strict=True)       # the same, but a damaged history is a CheckpointError with a sentence

Reading never imports torch and reads only the header and the movie's own bytes (about 0.8 MB for
100 frames of 2,000 digits), each checked against the header (names, dtypes, shapes, offsets, size)
before it is read, then as a Movie (finite values, steps from 0 increasing, times never backwards).
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np

from ..checkpoint import BESIDE
from ..onnx import store as onnx_store
from ..safetensors_header import FORMAT, CheckpointError, latent_lab_meta, raw_header, read_path
from ..untrusted import clip
from .frames import MAX_STORED_FRAMES, MAX_STORED_POINTS, Movie

VERSION = 1
# safetensors dtype -> numpy dtype, and which of them each of the movie's arrays may be stored in
NUMPY = {"F16": "<f2", "F32": "<f4", "F64": "<f8", "U8": "u1", "I16": "<i2", "I32": "<i4", "I64": "<i8"}
ARRAYS = {"points": ("F16", "F32"), "labels": ("U8", "I16", "I32", "I64"), "index": ("I32", "I64"),
          "step": ("I32", "I64"), "epoch": ("F32", "F64"), "elapsed_s": ("F32", "F64"), "loss": ("F32", "F64")}
MAX_VALUES = MAX_STORED_FRAMES * MAX_STORED_POINTS * 2  # in any one of its arrays
MAX_CLASSES, MAX_NAME = 256, 40


def movie_tensors(movie: Movie) -> dict[str, np.ndarray]:
    """The movie's arrays as the checkpoint stores them ({"movie.points": (F, N, 2) float16, ...}); the
    points in float32 where a value would overflow float16 (an autoencoder's codes are unbounded)."""
    fits = np.abs(movie.points).max() < np.finfo(np.float16).max
    return {BESIDE + "points": movie.points.astype(np.float16 if fits else np.float32),
            BESIDE + "labels": movie.labels.astype(np.int32), BESIDE + "index": movie.index.astype(np.int32),
            BESIDE + "step": movie.step.copy(), BESIDE + "epoch": movie.epoch.copy(),
            BESIDE + "elapsed_s": movie.elapsed_s.copy(), BESIDE + "loss": movie.loss.copy()}


def movie_meta(movie: Movie) -> dict:
    """The movie's entry in the checkpoint's Latent Lab metadata (under "movie")."""
    return {"version": VERSION, "plane": movie.plane, "subset": len(movie.labels), "frames": movie.frames,
            "dataset": movie.dataset, "classes": list(movie.class_names) if movie.class_names else None}


def has_movie(header: dict) -> bool:
    """Whether a parsed safetensors header holds a movie's tensors."""
    return any(isinstance(k, str) and k.startswith(BESIDE) for k in header)


def read_movie(source: str | os.PathLike | bytes, strict: bool = False) -> Movie | None:
    """The movie recorded in a checkpoint (a path, or its bytes), or None when it has none: trained before
    Latent Lab recorded movies, imported, an ONNX pair. A file that is no Latent Lab checkpoint at all is a
    CheckpointError. A movie that does not check out (wrong shapes or dtypes, NaN, steps out of order, sizes
    past the limits) is None too, or with `strict` a CheckpointError saying what is wrong with it."""
    def read(f, size: int, name: str) -> Movie | None:
        header, start = raw_header(f, size, name)
        meta = latent_lab_meta(header, name, FORMAT)
        if not has_movie(header) and "movie" not in meta:
            return None
        try:
            return _read(f, size, start, header, meta.get("movie"))
        except ValueError as e:
            if strict:
                raise CheckpointError(f"{name} has a recorded history that cannot be read: "
                                      f"{str(e)[:1].lower()}{str(e)[1:]}") from None
            return None

    if isinstance(source, (bytes, bytearray)):
        return read(io.BytesIO(source), len(source), "the file")
    if onnx_store.is_pair(source) or Path(source).is_dir():
        return None
    return read_path(source, read)


def _whole(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _read(f, size: int, start: int, header: dict, info) -> Movie:
    if not isinstance(info, dict) or info.get("version") != VERSION:
        raise ValueError("Its description in the metadata is missing or of another version.")
    arrays = {}
    for key, dtypes in ARRAYS.items():
        entry = header.get(BESIDE + key)
        if not isinstance(entry, dict) or entry.get("dtype") not in dtypes:
            raise ValueError(f"Its {key} are missing or not stored as numbers of the right kind.")
        shape, offsets = entry.get("shape"), entry.get("data_offsets")
        if not (isinstance(shape, list) and all(map(_whole, shape)) and isinstance(offsets, list)
                and len(offsets) == 2 and all(map(_whole, offsets))):
            raise ValueError(f"Its {key} have no valid shape or place in the file.")
        count, itemsize = math.prod(shape), np.dtype(NUMPY[entry["dtype"]]).itemsize
        if count > MAX_VALUES or offsets[1] - offsets[0] != count * itemsize or start + offsets[1] > size:
            raise ValueError(f"Its {key} are larger than a movie may be, or do not fit the file.")
        f.seek(start + offsets[0])
        arrays[key] = np.frombuffer(f.read(count * itemsize), NUMPY[entry["dtype"]]).reshape(shape)
    names = info.get("classes")
    if names is not None and not (isinstance(names, list) and len(names) <= MAX_CLASSES
                                  and all(isinstance(s, str) for s in names)):
        raise ValueError("Its class names are not texts.")
    dataset = info.get("dataset")
    return Movie(**arrays, plane=info.get("plane") if isinstance(info.get("plane"), str) else "",
                 dataset=clip(dataset, MAX_NAME) if isinstance(dataset, str) else None,
                 class_names=tuple(clip(s, MAX_NAME) for s in names) if names is not None else None)
