"""The model library's ONNX half: a mixin of vae.checkpoint.ModelLibrary (which lists imported pairs beside
its checkpoints and renames and deletes them as it does checkpoints).

    entry = lib.import_onnx(encoder_bytes, decoder_bytes, name="my vae", owner=owner_id)   # or CheckpointError
    model, meta = load_checkpoint(entry.path)                                             # an OnnxAutoEncoder
    data = lib.onnx_zip(entry.id)                                                         # both graphs, zipped

Every OnnxError of vae.onnx is raised as the library's `error` (CheckpointError), so callers catch one
kind. It uses the library's _meta (free name, owner, created), _new_path and _entry. onnx and
onnxruntime are imported by what needs them, never by listing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, TypeVar

from . import store
from ..untrusted import clip

T = TypeVar("T")


class OnnxPairs:
    error: type[Exception] = Exception  # ModelLibrary sets CheckpointError

    @classmethod
    def converted(cls, fn: Callable[..., T], *args, **kwargs) -> T:
        """fn(...), its OnnxError raised as the library's error with the same sentence."""
        try:
            return fn(*args, **kwargs)
        except store.OnnxError as e:
            raise cls.error(str(e)) from None

    @classmethod
    def load_pair(cls, path) -> tuple:
        """An imported pair's folder as (model, meta), as vae.checkpoint.load_checkpoint returns it."""
        from .model import load_pair

        return cls.converted(load_pair, path)

    def import_onnx(self, encoder: bytes, decoder: bytes, /, name: str | None = None, owner: str | None = None,
                    kind: str | None = None, output: str | None = None, dataset: str = "mnist",
                    filenames: tuple[str, str] = ("encoder.onnx", "decoder.onnx"), **meta):
        """Validate an ONNX encoder and decoder (vae.onnx.validate: the contract, safety, a probe run on test
        digits; in a child process with memory and CPU limits, vae.onnx.probe), then store the pair under `name`
        (cleaned; a reserved name gets " (2)"), owned by `owner`.
        kind (ae|vae) and output (logits|probabilities) are detected when None. A refused pair stores nothing."""
        from .probe import check_isolated  # onnx and onnxruntime run in a child process with limits

        if dataset not in store.DATASETS:
            raise self.error(f"The dataset must be one of {', '.join(store.DATASETS)}, not {clip(dataset)}.")
        names = tuple(clip(Path(f).name, 80) or f"the {r}" for f, r in zip(filenames, ("encoder", "decoder")))
        spec = self.converted(check_isolated, encoder, decoder, kind=kind, output=output, names=names)
        meta = self._meta({**meta, "name": name, "dataset": dataset, "files": list(names)}, owner,
                          spec.config.label)
        path = self.converted(store.write_pair, self._new_path(meta["name"], store.SUFFIX), encoder, decoder,
                              spec, meta)
        return self._entry(path, bundled=False)

    def _read_pair(self, path: Path) -> tuple[dict, str]:
        return self.converted(store.read_meta, path)

    def _rename_pair(self, entry, new_name: str):
        self.converted(store.update, entry.path, name=new_name)  # the graphs and their hashes stay
        return self.get(entry.id)

    def onnx_zip(self, entry_id: str) -> bytes:
        """An imported pair as a download: a zip of its encoder.onnx and decoder.onnx."""
        entry = self.get(entry_id)
        if not store.is_pair(entry.path):
            raise self.error(f"{entry.name} is a Latent Lab checkpoint; export it with python -m vae.onnx export.")
        return self.converted(store.zip_bytes, entry.path)
