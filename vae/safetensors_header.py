"""The one reader of safetensors headers: every .safetensors file Latent Lab reads (checkpoints, the
classifier, a checkpoint's latent movie) has its header parsed here, bounded, and our metadata checked.

    meta = read_header("m.safetensors")                  # the `latent_lab` metadata; "config" a ModelConfig
    header, start = raw_header(f, size, name)            # the whole JSON header, and where the data begins
    weights_fingerprint("m.safetensors")                 # a short hash of the tensors alone

Every problem is one `CheckpointError` with a sentence a user can act on. Nothing here imports torch:
listing a library reads headers before torch loads. Split from vae.checkpoint, which re-exports all of it.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import BinaryIO, Callable, TypeVar

from .config import ModelConfig
from .untrusted import bounded_json, clip, describe_foreign

FORMAT = "latent-lab/1"
MAX_HEADER = 1024 * 1024  # several times the header of a model with 1000 epochs of history (the most allowed)
T = TypeVar("T")


class CheckpointError(Exception):
    """A checkpoint could not be read or written; the message says what to do."""


def raw_header(f: BinaryIO, size: int, name: str) -> tuple[dict, int]:
    """The JSON header of a safetensors file of `size` bytes, open at its start, and where its weights begin."""
    n = int.from_bytes(f.read(8), "little") if size >= 8 else size  # under 8 bytes is cut off too
    if n > size - 8:
        why = "is not a complete safetensors file (it is cut off, or in another format)"
    elif n > MAX_HEADER:
        why = f"has a header of {n:,} bytes, more than the {MAX_HEADER:,} of any Latent Lab checkpoint"
    elif isinstance(header := bounded_json(f.read(n)), dict):
        return header, 8 + n
    else:
        why = "is not a safetensors file (its header is not a readable JSON object)"
    foreign = describe_foreign(f)
    raise CheckpointError(f"{name} is {foreign}; Latent Lab only loads .safetensors checkpoints saved by Latent Lab."
                          if foreign else f"{name} {why}.")


def latent_lab_meta(header: dict, name: str, fmt: str) -> dict:
    """Our metadata in a parsed header: a JSON object of format `fmt` (a model's config rebuilt)."""
    table = header.get("__metadata__", {})
    if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
        raise CheckpointError(f"{name} is not a valid safetensors file (its metadata is not a table of texts).")
    if "latent_lab" not in table:
        raise CheckpointError(f"{name} is a safetensors file but not a Latent Lab checkpoint (no Latent Lab metadata).")
    if not isinstance(meta := bounded_json(table["latent_lab"]), dict):
        raise CheckpointError(f"{name} is not a Latent Lab checkpoint: its metadata is not a readable JSON object.")
    if (found := meta.get("format")) != fmt:
        shown = f"in format {clip(found)}" if isinstance(found, str) and found else "of no known format"
        raise CheckpointError(f"{name} is {shown}; this version of Latent Lab reads {fmt} only.")
    if fmt != FORMAT:
        return meta
    if "config" not in meta:
        raise CheckpointError(f"{name} is not a Latent Lab checkpoint: its metadata has no model config.")
    try:
        meta["config"] = ModelConfig.from_dict(meta["config"])
    except (ValueError, TypeError, ArithmeticError) as e:  # ModelConfig's sentences; anything else gets one
        why = str(e) if isinstance(e, ValueError) and len(str(e)) < 160 else "A setting has the wrong type or value."
        raise CheckpointError(f"{name} has a broken model config: {why[:1].lower()}{why[1:]}") from None
    return meta


def read_path(path: str | os.PathLike, read: Callable[[BinaryIO, int, str], T]) -> T:
    """read(file, size, name) on an open file, with a sentence for a file that cannot be opened."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return read(f, os.fstat(f.fileno()).st_size, path.name)
    except FileNotFoundError:
        raise CheckpointError(f"No checkpoint at {path}.") from None
    except OSError as e:
        raise CheckpointError(f"Could not read {path}: {e.strerror or 'input/output error'}.") from None


def read_header(source: bytes | str | os.PathLike, name: str | None = None, fmt: str = FORMAT) -> dict:
    """The `latent_lab` metadata of a safetensors file, from its bytes (an upload) or its path (only
    the header is read), checked: a JSON object of format `fmt`; for a model, "config" is a
    ModelConfig. Raises CheckpointError with a sentence for anything else."""
    def read(f: BinaryIO, size: int, file_name: str) -> dict:
        return latent_lab_meta(raw_header(f, size, name or file_name)[0], name or file_name, fmt)

    if isinstance(source, (bytes, bytearray)):
        return read(io.BytesIO(source), len(source), "the file")
    return read_path(source, read)


def _skipped(header: dict) -> list[tuple[int, int]]:
    """The byte ranges (from the start of the data) of the tensors that are not weights: the training
    movie's (`movie.*`). Empty when there are none, or when the header's offsets are not plain pairs of
    whole numbers (such a file is refused when loaded; its fingerprint then simply covers every byte)."""
    ranges = []
    for k, v in header.items():
        if isinstance(k, str) and k.startswith("movie.") and isinstance(v, dict):
            o = v.get("data_offsets")
            if not (isinstance(o, list) and len(o) == 2 and all(type(i) is int for i in o) and 0 <= o[0] <= o[1]):
                return []
            ranges.append((o[0], o[1]))
    return sorted(ranges)


def digest(f: BinaryIO, start: int, header: dict | None = None) -> str:
    """sha1 of the data after the header, less the movie's tensors: the same weights give the same
    fingerprint with or without a recorded movie (a file without one hashes exactly as it always has)."""
    f.seek(start)
    skip = _skipped(header or {})
    if not skip:
        return hashlib.file_digest(f, "sha1").hexdigest()[:16]
    h, pos = hashlib.sha1(), 0
    for a, b in skip + [(None, None)]:
        while a is None or pos < a:  # the bytes before the next skipped range (or to the end)
            chunk = f.read(1 << 20 if a is None else min(1 << 20, a - pos))
            if not chunk:
                break
            h.update(chunk)
            pos += len(chunk)
        if a is not None and b > pos:
            f.seek(start + b)
            pos = b
    return h.hexdigest()[:16]


def weights_fingerprint(path: str | os.PathLike) -> str:
    """A short hash of the weights alone (not the metadata, not the training movie), so renaming keeps
    cached maps valid and a model rebuilt with its movie keeps its maps."""
    def read(f: BinaryIO, size: int, name: str) -> str:
        header, start = raw_header(f, size, name)
        return digest(f, start, header)
    return read_path(path, read)


def meta_and_fingerprint(f: BinaryIO, size: int, name: str) -> tuple[dict, str]:
    """read_header and weights_fingerprint of a file in one read, so both are of the same version."""
    header, start = raw_header(f, size, name)
    return latent_lab_meta(header, name, FORMAT), digest(f, start, header)
