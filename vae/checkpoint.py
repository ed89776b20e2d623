"""Checkpoints in safetensors with JSON metadata, and the model library on disk.

    save_checkpoint("m.safetensors", model, name="my vae", metrics={...}, history={...}, tensors=movie_tensors)
    model, meta = load_checkpoint("m.safetensors")      # or an imported ONNX pair's folder
    lib = ModelLibrary(user_dir, bundled_dir); entry = lib.save(model, name="typed by a user", owner=owner_id)
    lib.rename(entry.id, "new name", Actor(owner_id)); lib.set_class_model(entry.id, True, Actor(t, teacher=True))

One reader, `read_header` (vae.safetensors_header), parses every safetensors header. Loading
never unpickles: weights are checked against the config (names, shapes, dtypes, finite values).
Every problem is one `CheckpointError` with a sentence a user can act on. Writes are atomic, and their
bytes pass the same reader first, so the library lists all it saves. File names are generated (slug +
id); the user's name is metadata only. Listing reads each file once per version and imports no torch,
so the first page draws before torch loads; whatever reads or writes weights imports it when called.
Tensors named `movie.*` beside the weights (the latent movie of the training, vae.movie) travel with
the file through saves, uploads and renames; loading the model ignores them, vae.movie reads them.

On a shared server the library is a class's: every saved model records its `owner` (an opaque id)
and when it was `created`; who may rename or delete which model, the teacher's class models (one
JSON file in the library folder), plain-text names and labels are vae.ownership's rules. Names are
cleaned on save, upload and rename; a bundled or class model's name is reserved: a rename to it is
refused, a training or an upload that asks for it is saved as "name (2)" instead.
"""

from __future__ import annotations

import io
import json
import os
import re
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from .fileio import TMP_PREFIX, atomic_write
from .onnx import store as onnx_store
from .onnx.library import OnnxPairs
from .ownership import Actor, ClassModels, Entry, clean_name, free_name, labels, may_manage, name_taken, refusal
from .safetensors_header import (  # noqa: F401 (FORMAT, MAX_HEADER, weights_fingerprint: re-exported from here)
    FORMAT, MAX_HEADER, CheckpointError, latent_lab_meta, meta_and_fingerprint, raw_header, read_header, read_path,
    weights_fingerprint,
)
from .untrusted import clip

if TYPE_CHECKING:
    from .models import AutoEncoder

MAX_BYTES = 64 * 1024 * 1024  # far above any model the app trains; refuses giant uploads early
SUFFIX = ".safetensors"
STORAGES = ("float32", "float16")  # torch dtypes of the same names
UNTRUSTED = ("config", "format", "owner", "created", "class_model")  # an upload's metadata never sets these
BESIDE = "movie."  # tensors beside the weights, not the model's (vae.movie's history): kept, never loaded into it


def default_library_dir() -> Path:
    """Where trained and uploaded models go: $LATENT_LAB_HOME/models, else a per-user folder."""
    if home := os.environ.get("LATENT_LAB_HOME"):
        return Path(home).expanduser() / "models"
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "latent-lab" / "models"


def checkpoint_bytes(model: AutoEncoder, /, storage: str = "float32", tensors: dict | None = None, **meta) -> bytes:
    """Serialise a model and its metadata (name, dataset, metrics, history, ...) to safetensors bytes.
    `storage="float16"` halves the file (the bundled models use it); loading casts back to float32.
    `tensors` ({BESIDE + name: array}, vae.movie's) are stored beside the weights as they are."""
    return _encode(model, meta, storage, tensors)


def _encode(model: AutoEncoder, meta: dict, storage: str = "float32", beside: dict | None = None) -> bytes:
    # meta arrives as a dict, not **kwargs: an uploaded file's metadata may hold any key ("model", "storage")
    import torch

    if storage not in STORAGES:
        raise CheckpointError(f"Storage must be one of {', '.join(STORAGES)}, not {storage!r}.")
    for k, v in model.state_dict().items():
        if not torch.isfinite(v).all():
            raise CheckpointError(f"Refusing to save: weight {k} has NaN or infinite values.")
    tensors = {k: v.detach().cpu().to(getattr(torch, storage)).contiguous() for k, v in model.state_dict().items()}
    if storage != "float32" and not all(torch.isfinite(t).all() for t in tensors.values()):
        raise CheckpointError(f"Refusing to save: some weights overflow {storage}; save as float32.")
    if odd := [k for k in beside or {} if not k.startswith(BESIDE) or k in tensors]:
        raise CheckpointError(f"Refusing to save: {clip(odd[0])} is not a name for a tensor beside the weights.")
    tensors.update({k: torch.as_tensor(v).contiguous() for k, v in (beside or {}).items()})
    return _serialise(tensors, {**meta, "format": FORMAT, "config": model.config.to_dict()})  # these two win


def _serialise(tensors: dict, meta: dict) -> bytes:
    """safetensors bytes with `meta` as our metadata, refused unless read_header reads them back."""
    from safetensors.torch import save as st_save

    try:
        text = json.dumps(meta, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        raise CheckpointError("Refusing to save: the metadata holds NaN, infinite or non-JSON values.") from None
    data = st_save(tensors, metadata={"latent_lab": text})
    try:
        read_header(data, "the checkpoint")
    except CheckpointError as e:
        raise CheckpointError(f"Refusing to save: {e}") from None
    return data


def save_checkpoint(path: str | os.PathLike, model: AutoEncoder, /, storage: str = "float32",
                    tensors: dict | None = None, **meta) -> Path:
    path = Path(path)
    atomic_write(path, _encode(model, meta, storage, tensors))
    return path


def read_checkpoint(data: bytes, source: str = "the file") -> tuple[AutoEncoder, dict]:
    """Validate safetensors bytes and rebuild the model. Raises CheckpointError."""
    import torch
    from safetensors.torch import load as st_load

    from .models import build_model

    if len(data) > MAX_BYTES:
        raise CheckpointError(f"{source} is over {MAX_BYTES // 2**20} MB, too large for a Latent Lab checkpoint.")
    header, _ = raw_header(io.BytesIO(data), len(data), source)
    meta = latent_lab_meta(header, source, FORMAT)
    config = meta["config"]
    model = build_model(config)
    expected = model.state_dict()
    table = {k: v for k, v in header.items() if k != "__metadata__" and not k.startswith(BESIDE)}
    missing, extra = [k for k in expected if k not in table], sorted(set(table) - set(expected))
    if missing or extra:
        parts = [f"{what} {', '.join(clip(k) for k in keys[:3])}{' and more' if len(keys) > 3 else ''}"
                 for what, keys in (("missing", missing), ("unexpected", extra)) if keys]
        raise CheckpointError(f"{source} does not match its config ({config.label}): {'; '.join(parts)}.")
    for k, ref in expected.items():  # every weight is float32; float16 storage is cast back
        info = table[k] if isinstance(table[k], dict) else {}
        if info.get("shape") != list(ref.shape) or info.get("dtype") not in ("F32", "F16"):
            raise CheckpointError(f"{source}: weight {k} has the wrong shape or type; {config.label} needs shape "
                                  f"{'×'.join(map(str, ref.shape))} in float32 or float16.")
    try:
        tensors = st_load(data)
    except Exception:  # safetensors checks offsets and sizes against the bytes: the file is damaged
        raise CheckpointError(f"{source} is damaged: its weights do not match its header; "
                              "save or download it again.") from None
    for k in expected:
        if not torch.isfinite(tensors[k]).all():
            raise CheckpointError(f"{source}: weight {k} has NaN or infinite values; the model diverged. "
                                  "Retrain it with a lower learning rate.")
    model.load_state_dict({k: tensors[k].to(ref.dtype) for k, ref in expected.items()})
    model.eval()
    return model, meta


def load_checkpoint(path: str | os.PathLike) -> tuple[AutoEncoder, dict]:
    if onnx_store.is_pair(path) or Path(path).is_dir():  # an imported ONNX pair's folder
        return ModelLibrary.load_pair(path)
    # a byte past the limit is enough for read_checkpoint to refuse a giant file
    return read_path(path, lambda f, size, name: read_checkpoint(f.read(MAX_BYTES + 1), name))


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40].strip("-")
    return slug or "model"


class ModelLibrary(OnnxPairs):
    """Bundled (read-only) models plus a user folder of saved ones, shared by a class: who may change
    what, and which names are free, is vae.ownership's. Every page run of every session lists it,
    from its own thread: what is read of each file is kept here, under a lock. ONNX pairs: vae.onnx.library."""

    error = CheckpointError  # what OnnxPairs raises for vae.onnx's OnnxError

    def __init__(self, user_dir: str | os.PathLike, bundled_dir: str | os.PathLike | None = None):
        self.user_dir = Path(user_dir)
        self.bundled_dir = Path(bundled_dir) if bundled_dir else None
        self.user_dir.mkdir(parents=True, exist_ok=True)
        self._versions: dict[Path, tuple] = {}  # path -> (key, meta or None, fingerprint, error)
        self._pins = ClassModels(self.user_dir)
        self._lock = threading.Lock()
        self.sweep()

    def sweep(self, older_than_s: float = 3600.0) -> int:
        """Delete temp files left by writes that were killed (old enough that no write is live)."""
        n = 0
        for p in self.user_dir.glob(TMP_PREFIX + "*"):
            try:
                if time.time() - p.stat().st_mtime > older_than_s:
                    (onnx_store.remove if p.is_dir() else Path.unlink)(p)  # a folder: a pair's write
                    n += 1
            except OSError:
                pass
        return n

    def _entry(self, path: Path, bundled: bool, pinned: frozenset = frozenset()) -> Entry:
        """The file's entry: its header is read and its weights hashed once per version of the file, told
        apart by (inode, mtime, size), so a rename or a rewrite is seen and an unchanged file is not read."""
        st = (path / onnx_store.SIDECAR if onnx_store.is_pair(path) else path).stat()  # OSError: gone since listed
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        with self._lock:
            known = self._versions.get(path)
        if known is None or known[0] != key:  # read outside the lock; two threads may both read, harmlessly
            try:
                known = (key, *(self._read_pair(path) if onnx_store.is_pair(path) else
                                 read_path(path, meta_and_fingerprint)), "")
            except CheckpointError as e:  # a broken file is read once too, not on every run
                known = (key, None, "", str(e))
            with self._lock:
                self._versions[path] = known
        _, meta, fingerprint, error = known
        if meta is None:
            raise CheckpointError(error)
        return Entry(path.stem, path, dict(meta), bundled, fingerprint, not bundled and path.stem in pinned,
                     st.st_mtime)

    def entries(self) -> list[Entry]:
        """Bundled models first, then the class models (in the order pinned), then the rest, newest first."""
        with self._lock:
            pins = self._pins.ids()
        bundled, rest, seen = [], [], set()
        for is_bundled, folder in ((True, self.bundled_dir), (False, self.user_dir)):
            found = [*folder.glob("*" + SUFFIX), *folder.glob("*" + onnx_store.SUFFIX)] if folder else []
            for p in sorted(found):  # a missing folder globs nothing
                seen.add(p)
                try:
                    (bundled if is_bundled else rest).append(self._entry(p, is_bundled, frozenset(pins)))
                except (CheckpointError, OSError):  # a broken file is listed by nobody; load() says why
                    continue
        with self._lock:  # forget files that are gone
            for p in self._versions.keys() - seen:
                del self._versions[p]
        rest.sort(key=lambda e: (0, pins.index(e.id)) if e.class_model else (1, -e.created))  # stable: ties by file
        return bundled + rest

    def get(self, entry_id: str) -> Entry:
        if entry := next((e for e in self.entries() if e.id == entry_id), None):
            return entry
        raise CheckpointError(f"No model {entry_id!r} in the library; it may have been deleted.")

    def load(self, entry_id: str) -> tuple[AutoEncoder, dict]:
        return load_checkpoint(self.get(entry_id).path)

    # -- who may do what, and names (the rules: vae.ownership)

    can_manage = staticmethod(may_manage)  # (entry, actor) -> bool
    labels = staticmethod(labels)  # (entries, viewer_owner, now=None) -> {entry id: label}

    def check_name(self, name: str, entry_id: str | None = None) -> str:
        """`name` cleaned (vae.ownership.clean_name), or CheckpointError when it is blank or is the name of
        a bundled or class model (other than `entry_id` itself). A form may ask before a training starts."""
        name = clean_name(name)
        if not name:
            raise CheckpointError("Give the model a name that is not blank.")
        if why := name_taken(name, self.entries(), skip=entry_id):
            raise CheckpointError(why)
        return name

    def set_class_model(self, entry_id: str, pinned: bool, actor: Actor) -> Entry:
        """Pin a model as a class model (listed after the bundled ones, its name reserved), or unpin it."""
        if not actor.teacher:
            raise CheckpointError("Only the teacher can choose the class models.")
        entry = self.get(entry_id)
        if entry.bundled:
            raise CheckpointError(f"{entry.name} is a bundled model; bundled models are always listed first.")
        if pinned and (why := name_taken(entry.name, self.entries(), entry_id, "rename this model first")):
            raise CheckpointError(why)
        with self._lock:
            self._pins.set(entry_id, bool(pinned))
        return self.get(entry_id)

    # -- writing

    def _new_path(self, name: str, suffix: str = SUFFIX) -> Path:
        return self.user_dir / f"{slugify(name)}-{uuid.uuid4().hex[:8]}{suffix}"

    def save(self, model: AutoEncoder, /, name: str, owner: str | None = None, storage: str = "float32",
             tensors: dict | None = None, **meta) -> Entry:
        """Save a model under `name` (cleaned; a bundled or class model's name gets " (2)"), recording its
        `owner` (an opaque id; None: the teacher's) and when it was `created`."""
        return self._write(model, {**meta, "name": name}, owner, storage, tensors)

    def _meta(self, meta: dict, owner: str | None, label: str) -> dict:
        if owner is not None and (not isinstance(owner, str) or not owner):
            raise CheckpointError("A model's owner must be a non-empty text id, or none.")
        return {**meta, "name": free_name(clean_name(meta.get("name")) or label, self.entries()), "owner": owner,
                "created": time.time()}

    def _write(self, model: AutoEncoder, meta: dict, owner: str | None, storage: str = "float32",
               beside: dict | None = None) -> Entry:
        meta = self._meta(meta, owner, model.config.label)
        atomic_write(path := self._new_path(meta["name"]), _encode(model, meta, storage, beside))
        return self._entry(path, bundled=False)

    def import_bytes(self, data: bytes, filename: str = "upload", owner: str | None = None) -> Entry:
        """Validate an uploaded file, then store it under a generated name, owned by the uploader (whatever
        its own metadata says), its tensors beside the weights kept as they came (vae.movie checks them
        when it reads them); a refused one stores nothing."""
        from safetensors.torch import load as st_load

        model, meta = read_checkpoint(data, clip(Path(filename).name, 80) or "the upload")
        meta = {k: v for k, v in meta.items() if k not in UNTRUSTED}  # _write writes its own
        meta["name"] = clean_name(meta.get("name")) or clean_name(Path(filename).stem)
        return self._write(model, meta, owner, beside={k: v for k, v in st_load(data).items() if k.startswith(BESIDE)})

    def rename(self, entry_id: str, new_name: str, actor: Actor) -> Entry:
        entry = self._managed(entry_id, actor, "rename")
        new_name = self.check_name(new_name, entry_id)
        if onnx_store.is_pair(entry.path):  # its sidecar alone changes
            return self._rename_pair(entry, new_name)
        data = read_path(entry.path, lambda f, size, name: f.read(MAX_BYTES + 1))
        _, meta = read_checkpoint(data, entry.path.name)  # never rewrite a file that does not validate
        # the tensors are written back as they were (same dtypes, same bytes), so the fingerprint holds
        from safetensors.torch import load as st_load

        meta = {**meta, "name": new_name, "config": meta["config"].to_dict()}  # owner and created stay
        atomic_write(entry.path, _serialise(st_load(data), meta))
        return self.get(entry_id)

    def delete(self, entry_id: str, actor: Actor) -> None:
        entry = self._managed(entry_id, actor, "delete")
        onnx_store.remove(entry.path) if onnx_store.is_pair(entry.path) else entry.path.unlink(missing_ok=True)
        if entry.class_model:
            with self._lock:
                self._pins.set(entry_id, False)

    def _managed(self, entry_id: str, actor: Actor, verb: str) -> Entry:
        entry = self.get(entry_id)
        if why := refusal(entry, actor, verb):
            raise CheckpointError(why)
        return entry
