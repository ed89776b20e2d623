"""Where Latent Lab's own files are: the repository root and its bundled assets (stdlib only).

One place for these paths, so that no module works out the root from its own `__file__`.
Subprocesses (the trainer, the map workers) are started with `cwd=ROOT`, where `python -m vae...`
finds the package without any PYTHONPATH.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "assets"
BUNDLED_MODELS = ASSETS / "models"


CACHE_VAR = "LATENT_LAB_CACHE"  # a cache folder of its own; replicas on one shared folder set it (deploy/README.md)


def cache_dir() -> Path:
    """Latent Lab's cache folder (maps, training jobs, few-labels results, ONNX exports, numba's compiled
    UMAP): $LATENT_LAB_CACHE when set, else $XDG_CACHE_HOME/latent-lab. Replicas behind a proxy set
    LATENT_LAB_CACHE to one folder they share (deploy/replicas.sh: $LATENT_LAB_HOME/cache), so a map is
    computed once for all of them and the embedded training queue is one queue."""
    import os

    if own := os.environ.get(CACHE_VAR, "").strip():
        return Path(own).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "latent-lab"
