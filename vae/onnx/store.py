"""An imported ONNX model on disk: a folder `<slug>-<id>.onnxmodel/` in the library holding the two
graphs as they were given and a small JSON sidecar, and the config that stands for it.

    <library>/my-vae-1a2b3c4d.onnxmodel/
        encoder.onnx    decoder.onnx    model.json   # {"format": "latent-lab-onnx/1", "config": {...}, ...}

A folder is written whole under a temporary name and renamed into place, so a listing never sees half
of one; deleting renames it away first. The sidecar records a hash of each graph, and loading checks
them, so what runs is what was validated (vae.onnx.validate). Nothing here executes or unpickles
anything. Standard library only: the library lists imported models without onnx, onnxruntime or torch.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import uuid
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

from ..fileio import TMP_PREFIX, atomic_write
from ..untrusted import bounded_json, clip

FORMAT = "latent-lab-onnx/1"
SUFFIX = ".onnxmodel"  # the folder's; its stem is the library id
ENCODER, DECODER, SIDECAR = "encoder.onnx", "decoder.onnx", "model.json"
MAX_BYTES = 64 * 1024 * 1024  # per graph file; the app's upload limit, and ~50x a 784-400-20 VAE
MAX_SIDECAR = 1024 * 1024
MAX_LATENT = 128  # as for Latent Lab's own models (vae.config.ModelConfig)
KINDS = ("ae", "vae")
OUTPUTS = ("logits", "probabilities")
LAYOUTS = ("image", "flat")  # (B, 1, 28, 28) or (B, 784)
DATASETS = ("mnist", "fashion-mnist")


class OnnxError(ValueError):
    """An ONNX model was refused or could not be read; the message is one sentence a user can act on."""


@dataclass(frozen=True)
class OnnxConfig:
    """What pages read of a model's config (kind, latent_dim, label, has_prior, arch, hidden, beta), for an
    imported pair; the graph itself is opaque. Duck-types vae.config.ModelConfig."""

    kind: str
    latent_dim: int
    arch: str = "onnx"
    hidden: tuple[int, ...] = ()
    beta: float = 1.0  # its test nats are the beta = 1 ELBO, as for any model
    input_noise: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise OnnxError(f"The model kind must be one of {', '.join(KINDS)}, not {clip(self.kind)}.")
        d = self.latent_dim
        if isinstance(d, bool) or not isinstance(d, int) or not 1 <= d <= MAX_LATENT:
            raise OnnxError(f"The latent size must be a whole number from 1 to {MAX_LATENT}, not {clip(d)}.")

    @property
    def label(self) -> str:
        return f"{self.kind.upper()} · ONNX · {self.latent_dim}-d"

    @property
    def has_prior(self) -> bool:
        return self.kind == "vae"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "latent_dim": self.latent_dim}


@dataclass(frozen=True)
class PairSpec:
    """How to run a validated pair: what the encoder takes and which outputs are which, what the decoder
    gives, and each graph's fixed batch size (None: any)."""

    kind: str
    latent_dim: int
    encoder_input: str  # "image" (B, 1, 28, 28) or "flat" (B, 784)
    decoder_output: str  # "image" or "flat"
    output: str  # "logits" or "probabilities"
    mean_output: int = 0  # index among the encoder's outputs
    logvar_output: int | None = None  # None: a deterministic code (an AE)
    encoder_batch: int | None = None
    decoder_batch: int | None = None

    def __post_init__(self) -> None:
        OnnxConfig(self.kind, self.latent_dim)  # its checks
        ok = (self.encoder_input in LAYOUTS and self.decoder_output in LAYOUTS and self.output in OUTPUTS
              and self.mean_output in (0, 1) and self.logvar_output in (None, 0, 1)
              and self.mean_output != self.logvar_output and (self.logvar_output is None) == (self.kind == "ae")
              and all(b is None or (isinstance(b, int) and 1 <= b <= 65536)
                      for b in (self.encoder_batch, self.decoder_batch)))
        if not ok:
            raise OnnxError("The imported model's description is inconsistent; import it again.")

    @property
    def config(self) -> OnnxConfig:
        return OnnxConfig(self.kind, self.latent_dim)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: object) -> "PairSpec":
        try:
            return cls(**d)
        except (TypeError, ValueError):
            raise OnnxError("The imported model's description is unreadable; import it again.") from None


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fingerprint(encoder: bytes, decoder: bytes) -> str:
    """A short hash of both graphs (not the name): the key of the pair's cached maps."""
    return hashlib.sha1(f"{sha(encoder)}:{sha(decoder)}".encode()).hexdigest()[:16]


def is_pair(path: str | os.PathLike) -> bool:
    return Path(path).suffix == SUFFIX


def read_meta(path: str | os.PathLike) -> tuple[dict, str]:
    """The sidecar of a stored pair as library metadata ("config" an OnnxConfig, "onnx" a PairSpec), and its
    fingerprint. Reads the sidecar only. Raises OnnxError with a sentence."""
    path = Path(path)
    try:
        with open(path / SIDECAR, "rb") as f:
            raw = f.read(MAX_SIDECAR + 1)
    except FileNotFoundError:
        raise OnnxError(f"No imported ONNX model at {path}.") from None
    except OSError as e:
        raise OnnxError(f"Could not read {path}: {e.strerror or 'input/output error'}.") from None
    meta = bounded_json(raw) if len(raw) <= MAX_SIDECAR else None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise OnnxError(f"{path.name} is not an ONNX model imported by this version of Latent Lab.")
    spec = PairSpec.from_dict(meta.get("onnx"))
    fp = meta.get("fingerprint")
    if not isinstance(fp, str) or not fp or not isinstance(meta.get("sha256"), dict):
        raise OnnxError(f"{path.name} has no record of its graphs' hashes; import it again.")
    if spec.kind != (meta.get("config") or {}).get("kind") or spec.latent_dim != meta["config"].get("latent_dim"):
        raise OnnxError(f"{path.name}'s config does not match its graphs' description; import it again.")
    return {**meta, "config": spec.config, "onnx": spec}, fp


def read_graphs(path: str | os.PathLike) -> tuple[bytes, bytes, dict]:
    """Both graphs' bytes and the metadata, the bytes checked against the hashes recorded at import."""
    path = Path(path)
    meta, _ = read_meta(path)
    out = []
    for role, file in (("encoder", ENCODER), ("decoder", DECODER)):
        try:
            data = (path / file).read_bytes()
        except OSError:
            raise OnnxError(f"{path.name} has lost its {file}; import the model again.") from None
        if sha(data) != meta["sha256"].get(role):
            raise OnnxError(f"{path.name}'s {file} changed since it was imported; import the model again.")
        out.append(data)
    return out[0], out[1], meta


def _sidecar_bytes(meta: dict) -> bytes:
    meta = {**meta, "format": FORMAT}
    for k, v in (("config", OnnxConfig), ("onnx", PairSpec)):
        if isinstance(meta.get(k), v):
            meta[k] = meta[k].to_dict()
    try:
        return (json.dumps(meta, indent=1, allow_nan=False) + "\n").encode()
    except (TypeError, ValueError):
        raise OnnxError("Refusing to save: the metadata holds NaN, infinite or non-JSON values.") from None


def write_pair(path: str | os.PathLike, encoder: bytes, decoder: bytes, spec: PairSpec, meta: dict) -> Path:
    """Store a validated pair at `path` (a new folder ending in .onnxmodel), whole or not at all."""
    path = Path(path)
    meta = {**meta, "config": spec.config, "onnx": spec, "fingerprint": fingerprint(encoder, decoder),
            "sha256": {"encoder": sha(encoder), "decoder": sha(decoder)}}
    data = _sidecar_bytes(meta)
    tmp = path.parent / f"{TMP_PREFIX}{uuid.uuid4().hex}.part"
    try:
        tmp.mkdir()
        for name, blob in ((ENCODER, encoder), (DECODER, decoder), (SIDECAR, data)):
            atomic_write(tmp / name, blob)
        os.rename(tmp, path)  # fails rather than merges if `path` exists
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise OnnxError(f"Could not store the model: {e.strerror or 'input/output error'}.") from None
    return path


def update(path: str | os.PathLike, **fields) -> None:
    """Rewrite the sidecar with some fields changed (a new name, metrics); the graphs stay as they are."""
    meta, _ = read_meta(path)
    atomic_write(Path(path) / SIDECAR, _sidecar_bytes({**meta, **fields}))


def remove(path: str | os.PathLike) -> None:
    """Delete a stored pair: renamed out of the listing at once, then its files removed."""
    path = Path(path)
    gone = path.parent / f"{TMP_PREFIX}{uuid.uuid4().hex}.part"
    try:
        os.rename(path, gone)
    except FileNotFoundError:
        return
    shutil.rmtree(gone, ignore_errors=True)


def zip_bytes(path: str | os.PathLike) -> bytes:
    """A download of a stored pair: a zip of encoder.onnx and decoder.onnx (no sidecar: nothing of the
    library's, such as the owner, leaves it)."""
    encoder, decoder, _ = read_graphs(path)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(ENCODER, encoder)
        z.writestr(DECODER, decoder)
    return buf.getvalue()
