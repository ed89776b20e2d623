"""Checkpoints in safetensors with JSON metadata, and the model library on disk.

    from vae.checkpoint import save_checkpoint, load_checkpoint, ModelLibrary
    save_checkpoint("m.safetensors", model, name="my vae", metrics={...}, history={...})
    model, meta = load_checkpoint("m.safetensors")
    lib = ModelLibrary(user_dir, bundled_dir); entry = lib.save(model, name="typed by a user")

Loading never unpickles: the file is parsed by safetensors and then checked against its
own config (keys, shapes, dtypes, finite values). Every problem is one `CheckpointError`
with a one-line message. Writes are atomic: a temp file in the same folder, fsync,
os.replace. Library file names are generated (slug + id); the user's name is metadata only.

Listing the library reads only the files' JSON headers, so it does not import torch (1.7 s):
the app draws its first page, sidebar included, before torch is loaded. Everything that reads
or writes weights imports it when called.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from safetensors import SafetensorError

from .config import ModelConfig
from .fileio import TMP_PREFIX, atomic_write

if TYPE_CHECKING:
    from .models import AutoEncoder

FORMAT = "latent-lab/1"
MAX_BYTES = 64 * 1024 * 1024  # far above any model the app trains; refuses giant uploads early
SUFFIX = ".safetensors"


BUNDLED_DIR = Path(__file__).resolve().parent.parent / "assets" / "models"


def default_library_dir() -> Path:
    """Where trained and uploaded models go: $LATENT_LAB_HOME/models, else a per-user folder."""
    home = os.environ.get("LATENT_LAB_HOME")
    if home:
        return Path(home).expanduser() / "models"
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "latent-lab" / "models"


class CheckpointError(Exception):
    """A checkpoint could not be read or written; the message says what to do."""


STORAGES = ("float32", "float16")  # torch dtypes of the same names


def checkpoint_bytes(model: AutoEncoder, /, storage: str = "float32", **meta) -> bytes:
    """Serialise a model and its metadata (name, dataset, metrics, history, ...) to safetensors bytes.

    `storage="float16"` halves the file (the bundled models use it); loading casts back to float32.
    """
    return _encode(model, meta, storage)


def _encode(model: AutoEncoder, meta: dict, storage: str = "float32") -> bytes:
    # meta arrives as a dict, not **kwargs: an uploaded file's metadata may hold any key ("model", "storage")
    import torch
    from safetensors.torch import save as st_save

    if storage not in STORAGES:
        raise CheckpointError(f"Storage must be one of {', '.join(STORAGES)}, not {storage!r}.")
    for k, v in model.state_dict().items():
        if not torch.isfinite(v).all():
            raise CheckpointError(f"Refusing to save: weight {k} has NaN or infinite values.")
    tensors = {k: v.detach().cpu().to(getattr(torch, storage)).contiguous() for k, v in model.state_dict().items()}
    if storage != "float32" and not all(torch.isfinite(t).all() for t in tensors.values()):
        raise CheckpointError(f"Refusing to save: some weights overflow {storage}; save as float32.")
    header = {**meta, "format": FORMAT, "config": model.config.to_dict()}  # metadata never overrides these
    try:
        text = json.dumps(header, allow_nan=False)
    except (TypeError, ValueError):
        raise CheckpointError("Refusing to save: the metadata holds NaN, infinite or non-JSON values.") from None
    return st_save(tensors, metadata={"latent_lab": text})


def save_checkpoint(path: str | os.PathLike, model: AutoEncoder, /, storage: str = "float32", **meta) -> Path:
    path = Path(path)
    atomic_write(path, checkpoint_bytes(model, storage=storage, **meta))
    return path


def _looks_like_safetensors(data: bytes) -> bool:
    """8-byte little-endian header length, then a JSON object that fits in the file."""
    return len(data) >= 10 and int.from_bytes(data[:8], "little") <= len(data) - 8 and data[8:9] == b"{"


def _describe_foreign(data: bytes) -> str | None:
    """Name a file that is not safetensors. Only asked when the bytes do not parse as safetensors:
    a safetensors header length can begin with any byte (0x80 included), so magic bytes alone
    would mistake real checkpoints for pickles."""
    if _looks_like_safetensors(data):
        return None
    if data[:1] == b"\x80" or data[:2] in (b"(d", b"}q", b"cc"):
        return "a Python pickle, which could run code when loaded"
    if data[:4] == b"PK\x03\x04":
        return "a PyTorch .pt/.pth file (a zip of pickles, which could run code when loaded)"
    if data[:2] == b"\x1f\x8b":
        return "a gzip archive"
    return None


def read_checkpoint(data: bytes, source: str = "the file") -> tuple[AutoEncoder, dict]:
    """Validate safetensors bytes and rebuild the model. Raises CheckpointError."""
    import torch
    from safetensors.torch import load as st_load

    from .models import build_model

    if len(data) > MAX_BYTES:
        raise CheckpointError(f"{source} is {len(data) / 2**20:.0f} MB; Latent Lab checkpoints are under "
                              f"{MAX_BYTES // 2**20} MB.")
    foreign = _describe_foreign(data)
    if foreign:
        raise CheckpointError(f"{source} is {foreign}; "
                              "Latent Lab only loads .safetensors checkpoints saved by Latent Lab.")
    if len(data) < 8 or int.from_bytes(data[:8], "little") > len(data) - 8:
        raise CheckpointError(f"{source} is not a complete safetensors file (truncated or another format).")
    try:
        header = json.loads(data[8:8 + int.from_bytes(data[:8], "little")])
        text = header.get("__metadata__", {}).get("latent_lab")
        tensors = st_load(data)
    except (SafetensorError, ValueError, UnicodeDecodeError, AttributeError) as e:
        raise CheckpointError(f"{source} is not a valid safetensors file ({str(e)[:80]}).") from None
    if not text:
        raise CheckpointError(f"{source} is a safetensors file but not a Latent Lab checkpoint (no metadata).")
    try:
        meta = json.loads(text)
        if meta.get("format") != FORMAT:
            raise CheckpointError(f"{source} has format {meta.get('format')!r}; this version reads {FORMAT}.")
        config = ModelConfig.from_dict(meta["config"])
    except CheckpointError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{source} has a broken model config: {e}") from None
    model = build_model(config)
    expected = model.state_dict()
    missing, extra = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    if missing or extra:
        raise CheckpointError(f"{source} does not match its config ({config.label}): "
                              f"missing {missing[:3]}, unexpected {extra[:3]}.")
    for k, ref in expected.items():
        t = tensors[k]
        if t.shape != ref.shape or t.dtype not in (ref.dtype, torch.float16):
            raise CheckpointError(f"{source}: weight {k} has shape {tuple(t.shape)} {t.dtype}, "
                                  f"but {config.label} needs {tuple(ref.shape)} {ref.dtype}.")
        if not torch.isfinite(t).all():
            raise CheckpointError(f"{source}: weight {k} has NaN or infinite values; the model diverged. "
                                  "Retrain it with a lower learning rate.")
    model.load_state_dict({k: t.to(expected[k].dtype) for k, t in tensors.items()})
    model.eval()
    meta["config"] = config
    return model, meta


def load_checkpoint(path: str | os.PathLike) -> tuple[AutoEncoder, dict]:
    path = Path(path)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise CheckpointError(f"{path.name} is over {MAX_BYTES // 2**20} MB; it is no Latent Lab checkpoint.")
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"No checkpoint at {path}.") from None
    except OSError as e:
        raise CheckpointError(f"Could not read {path}: {e.strerror}.") from None
    return read_checkpoint(data, path.name)


def weights_fingerprint(path: str | os.PathLike) -> str:
    """A short hash of the weights alone (not the metadata), so renaming keeps cached maps valid."""
    import hashlib

    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        f.seek(8 + n)
        return hashlib.sha1(f.read()).hexdigest()[:16]


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40].strip("-")
    return slug or "model"


@dataclass
class Entry:
    """One model in the library."""

    id: str  # the file stem; stable and safe
    path: Path
    meta: dict = field(repr=False)
    bundled: bool = False

    @property
    def name(self) -> str:
        return self.meta.get("name") or self.id

    @property
    def fingerprint(self) -> str:
        return weights_fingerprint(self.path)

    @property
    def config(self) -> ModelConfig:
        return self.meta["config"]

    @property
    def metrics(self) -> dict:
        return self.meta.get("metrics") or {}


class ModelLibrary:
    """Bundled (read-only) models plus a user folder of saved ones."""

    def __init__(self, user_dir: str | os.PathLike, bundled_dir: str | os.PathLike | None = None):
        self.user_dir = Path(user_dir)
        self.bundled_dir = Path(bundled_dir) if bundled_dir else None
        self.user_dir.mkdir(parents=True, exist_ok=True)
        self.sweep()

    def sweep(self, older_than_s: float = 3600.0) -> int:
        """Delete temp files left by writes that were killed (old enough that no write is live)."""
        n = 0
        for p in self.user_dir.glob(TMP_PREFIX + "*"):
            try:
                if time.time() - p.stat().st_mtime > older_than_s:
                    p.unlink()
                    n += 1
            except OSError:
                pass
        return n

    def _read_meta(self, path: Path) -> dict:
        """Metadata only (header), without loading weights."""
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            if n > 10_000_000:
                raise CheckpointError(f"{path.name} has an oversized header.")
            header = json.loads(f.read(n))
        meta = json.loads(header["__metadata__"]["latent_lab"])
        meta["config"] = ModelConfig.from_dict(meta["config"])
        return meta

    def entries(self) -> list[Entry]:
        out = []
        for bundled, folder in ((True, self.bundled_dir), (False, self.user_dir)):
            if folder is None or not folder.is_dir():
                continue
            for p in sorted(folder.glob("*" + SUFFIX)):
                try:
                    out.append(Entry(p.stem, p, self._read_meta(p), bundled))
                except Exception:  # a broken file is listed by nobody; load() says why if asked
                    continue
        return out

    def get(self, entry_id: str) -> Entry:
        for e in self.entries():
            if e.id == entry_id:
                return e
        raise CheckpointError(f"No model {entry_id!r} in the library; it may have been deleted.")

    def load(self, entry_id: str) -> tuple[AutoEncoder, dict]:
        return load_checkpoint(self.get(entry_id).path)

    def _new_path(self, name: str) -> Path:
        return self.user_dir / f"{slugify(name)}-{uuid.uuid4().hex[:8]}{SUFFIX}"

    def save(self, model: AutoEncoder, /, name: str, storage: str = "float32", **meta) -> Entry:
        return self._write(model, {**meta, "name": name}, storage)

    def _write(self, model: AutoEncoder, meta: dict, storage: str = "float32") -> Entry:
        name = str(meta.get("name") or "").strip()[:100] or model.config.label
        path = self._new_path(name)
        atomic_write(path, _encode(model, {**meta, "name": name}, storage))
        return Entry(path.stem, path, self._read_meta(path))

    def import_bytes(self, data: bytes, filename: str = "upload") -> Entry:
        """Validate an uploaded file, then store it under a generated name."""
        model, meta = read_checkpoint(data, Path(filename).name[:80] or "the upload")
        meta.pop("config")
        meta.pop("format", None)
        meta["name"] = str(meta.get("name") or Path(filename).stem)[:100]
        return self._write(model, meta)

    def rename(self, entry_id: str, new_name: str) -> Entry:
        entry = self._user_entry(entry_id, "renamed")
        new_name = (new_name or "").strip()[:100]
        if not new_name:
            raise CheckpointError("Give the model a name that is not blank.")
        data = entry.path.read_bytes()
        read_checkpoint(data, entry.path.name)  # never rewrite a file that does not validate
        header = json.loads(data[8:8 + int.from_bytes(data[:8], "little")])
        meta = json.loads(header["__metadata__"]["latent_lab"])
        meta["name"] = new_name
        # the tensors are written back as they were (same dtypes, same bytes), so the fingerprint holds
        from safetensors.torch import load as st_load
        from safetensors.torch import save as st_save

        atomic_write(entry.path, st_save(st_load(data), metadata={"latent_lab": json.dumps(meta)}))
        return self.get(entry_id)

    def delete(self, entry_id: str) -> None:
        self._user_entry(entry_id, "deleted").path.unlink(missing_ok=True)

    def _user_entry(self, entry_id: str, verb: str) -> Entry:
        entry = self.get(entry_id)
        if entry.bundled:
            raise CheckpointError(f"{entry.name} is a bundled model and cannot be {verb}.")
        return entry
