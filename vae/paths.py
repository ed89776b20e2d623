"""Where Latent Lab's own files are: the repository root and its bundled assets (stdlib only).

One place for these paths, so that no module works out the root from its own `__file__`.
Subprocesses (the trainer, the map workers) are started with `cwd=ROOT`, where `python -m vae...`
finds the package without any PYTHONPATH.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "assets"
BUNDLED_MODELS = ASSETS / "models"


def cache_dir() -> Path:
    """Latent Lab's cache folder (maps, training jobs, numba's compiled UMAP): $XDG_CACHE_HOME/latent-lab."""
    import os

    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "latent-lab"
