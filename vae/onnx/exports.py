"""A Latent Lab model as a download: a zip of encoder.onnx and decoder.onnx, exported in a child process
and kept on disk per model fingerprint.

    path = cached(fingerprint)                                   # the zip, or None when not made yet
    path = export_zip(checkpoint, fingerprint, progress=print)   # made now if need be (5-10 s), or OnnxError

Exporting needs torch.onnx's exporter and onnxscript (~100 MB more in a process), which a class server
should not carry for a button a few students press: `python -m vae.onnx export CHECKPOINT --out TMP` runs
as a child (sys.executable, cwd=vae.paths.ROOT, EXPORT_SECONDS at most) and its two files are zipped into
<cache>/onnx-exports/<fingerprint>.zip, written atomically. One export runs at a time on the machine (a
lock file, so sessions and server processes wait in line rather than start one torch each), and who waited
finds the zip made. At most MAX_KEPT zips and MAX_KEPT_BYTES are kept; the least recently used go first.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Callable

from ..fileio import atomic_write
from ..paths import ROOT, cache_dir
from .store import DECODER, ENCODER, OnnxError

EXPORT_SECONDS = 180  # ~5-10 s measured; a loaded class server is slower
MAX_KEPT = 32
MAX_KEPT_BYTES = 512 * 2**20
_FINGERPRINT = re.compile(r"[0-9a-f]{8,64}")


def folder() -> Path:
    return cache_dir() / "onnx-exports"


def _path(fingerprint: str) -> Path:
    if not isinstance(fingerprint, str) or not _FINGERPRINT.fullmatch(fingerprint):
        raise OnnxError("This model has no fingerprint to export it under; reload the page.")
    return folder() / f"{fingerprint}.zip"


def cached(fingerprint: str) -> Path | None:
    """The zip of a model exported before, marked as just used, or None."""
    path = _path(fingerprint)
    try:
        os.utime(path)
    except OSError:
        return None
    return path


def export_zip(checkpoint: str | os.PathLike, fingerprint: str,
               progress: Callable[[str], None] | None = None) -> Path:
    """The zip of `checkpoint` (whose weights' fingerprint is `fingerprint`), exported now unless it was
    before. `progress` hears "waiting" (another export runs) and "exporting". Raises OnnxError."""
    if (path := cached(fingerprint)) is not None:
        return path
    try:
        folder().mkdir(parents=True, exist_ok=True)
        lock = open(folder() / "export.lock", "a+b")
    except OSError as e:
        raise OnnxError(f"Could not prepare the ONNX files: {e.strerror or 'input/output error'}.") from None
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if progress:
                progress("waiting")
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if this thread dies
        if (path := cached(fingerprint)) is not None:  # made while this one waited
            return path
        if progress:
            progress("exporting")
        data = _export(Path(checkpoint))
        atomic_write(path := _path(fingerprint), data)
        prune(keep=path)
    return path


def _export(checkpoint: Path) -> bytes:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # a small model; the server's cores are shared
    with tempfile.TemporaryDirectory(prefix="latent-lab-export-") as tmp:
        try:
            p = subprocess.run([sys.executable, "-m", "vae.onnx", "export", str(checkpoint), "--out", tmp],
                               cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, timeout=EXPORT_SECONDS)
        except subprocess.TimeoutExpired:
            raise OnnxError(f"Exporting to ONNX took more than {EXPORT_SECONDS} s and was stopped; try again "
                            "when the server is less busy.") from None
        lines = p.stdout.decode("utf-8", "replace").strip().splitlines()
        try:
            answer = json.loads(lines[-1]) if lines else None
        except ValueError:
            answer = None
        if isinstance(answer, dict) and isinstance(answer.get("error"), str):
            raise OnnxError(answer["error"])
        if p.returncode != 0 or not isinstance(answer, dict):
            raise OnnxError("Exporting to ONNX stopped without an answer; try again, or run python -m vae.onnx "
                            "export on the checkpoint to see why.")
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for name in (ENCODER, DECODER):
                z.write(Path(tmp) / name, name)
        return buf.getvalue()


def prune(keep: Path | None = None) -> int:
    """Remove the least recently used zips beyond MAX_KEPT or MAX_KEPT_BYTES (never `keep`); -> how many."""
    found = []
    for p in folder().glob("*.zip"):
        try:
            s = p.stat()
        except OSError:
            continue
        found.append((s.st_mtime, s.st_size, p))
    found.sort(key=lambda f: (f[2] == keep, f[0]), reverse=True)  # `keep`, then the newest first
    total, removed = 0, 0
    for i, (_, size, p) in enumerate(found):
        total += size
        if p != keep and (i >= MAX_KEPT or total > MAX_KEPT_BYTES):
            p.unlink(missing_ok=True)
            removed += 1
    return removed
