"""Bundled assets: the MNIST test digits and precomputed 2-D maps of the bundled models.

    python -m vae.assets --data-dir ../shared/data

writes `assets/mnist-test.npz` (all 10,000 test digits, compressed) and, for every bundled
model in `assets/models/`, `assets/maps/<fingerprint>-<method>-<parameters hash>.npz` (named by
`vae.maps.service.map_key`) for PCA, t-SNE and UMAP (and native for 2-D models) with default
parameters, and `assets/previews/<fingerprint>-prior.png`,
the Welcome page's picture of prior samples, so the app shows real digits, opens its map page
instantly and draws its first page before torch is even imported, with no data folder and no
network. `--only ID ...` computes the maps of those bundled models alone (a model just added).
Last, `write_measures` stores what a server would otherwise compute on first use: the AE vs VAE page's
default scores (`assets/scores/`) and each map's neighbours kept (`assets/maps/<map key>-kept10.npz`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .paths import ASSETS

if TYPE_CHECKING:
    from .data import Dataset

TEST_DIGITS = ASSETS / "mnist-test.npz"
MAPS_DIR = ASSETS / "maps"
PREVIEWS_DIR = ASSETS / "previews"


def preview_path(fingerprint: str) -> Path:
    """Where a bundled model's prior-samples picture (vae.latent.prior_preview) is stored."""
    return PREVIEWS_DIR / f"{fingerprint}-prior.png"


def bundled_test_set() -> Dataset:
    """The bundled MNIST test split, for when no data folder is at hand."""
    import torch

    from .data import Dataset, DataError

    try:
        with np.load(TEST_DIGITS) as f:
            x, y = f["x"], f["y"]
    except (OSError, KeyError, ValueError) as e:
        raise DataError(f"The bundled test digits ({TEST_DIGITS}) are missing or damaged ({type(e).__name__}); "
                        "rebuild them with `python -m vae.assets` (see assets/README.md).") from None
    return Dataset("mnist", None, None, torch.from_numpy(x.copy()), torch.from_numpy(y.astype(np.int64)),
                   source=str(TEST_DIGITS))


def test_set(name: str = "mnist", root=None) -> Dataset:
    """The test split of a dataset: from the data folder if it is there, else (MNIST) the bundled copy."""
    from .data import DataError, load_dataset

    try:
        return load_dataset(name, root, download=False, require_train=False)
    except DataError:
        if name != "mnist":
            raise
        return bundled_test_set()


def write_previews() -> dict[str, str]:
    """Draw every bundled model's Welcome picture into assets/previews/ (replacing old ones)."""
    from .checkpoint import ModelLibrary, load_checkpoint
    from .fileio import atomic_write
    from .images import png_bytes
    from .latent import prior_preview
    from .paths import BUNDLED_MODELS

    PREVIEWS_DIR.mkdir(exist_ok=True)
    written = {}
    for entry in ModelLibrary(BUNDLED_MODELS).entries():
        model, _ = load_checkpoint(entry.path)
        path = preview_path(entry.fingerprint)
        atomic_write(path, png_bytes(prior_preview(model)))
        written[entry.id] = path.name
    for old in PREVIEWS_DIR.glob("*-prior.png"):  # those of models no longer bundled
        if old.name not in written.values():
            old.unlink()
    return written


def write_measures(data: Dataset) -> dict:
    """What a server would otherwise compute on first use, for every bundled MNIST model: the AE vs VAE
    page's default scores (assets/scores/<classifier fingerprint>.npz, vae.measures) and the neighbours kept
    of its PCA (above 2-d), t-SNE and UMAP maps (assets/maps/<map key>-kept10.npz, vae.maps.neighbours).
    The app computes anything missing here itself. Run after the maps and the classifier are built."""
    from .checkpoint import ModelLibrary, load_checkpoint
    from .classifier import fingerprint, load_classifier
    from .latent import encode
    from .maps.neighbours import kept_neighbours, save_kept
    from .maps.projection import default_params
    from .maps.service import MapStore, map_key
    from .measures import N_REFERENCE, SCORES_DIR, default_scores, originals_scores, score_name, write_scores
    from .paths import BUNDLED_MODELS

    clf, store = load_classifier(), MapStore(MAPS_DIR)
    scores = {"mnist": {score_name("originals", N_REFERENCE): originals_scores(clf, data.x_test)}}
    kept = []
    for entry in ModelLibrary(BUNDLED_MODELS).entries():
        model, meta = load_checkpoint(entry.path)
        if meta.get("dataset", "mnist") != "mnist":
            continue
        z = encode(model, data.x_test)
        scores[entry.fingerprint] = default_scores(model, clf, data.x_test, z)
        for method in (["pca"] if model.latent_dim > 2 else []) + ["tsne", "umap"]:
            y = store.get(entry.fingerprint, method, default_params(method))
            if y is not None:
                key = map_key(entry.fingerprint, method, default_params(method))
                kept.append(save_kept(MAPS_DIR, key, kept_neighbours(z, y, 10), y, 10).name)
    for old in MAPS_DIR.glob("*-kept*.npz"):  # those of maps no longer bundled
        if old.name not in kept:
            old.unlink()
    return {"scores": write_scores(SCORES_DIR, fingerprint(clf), scores).name, "kept": kept}


def main(argv=None) -> int:
    from .checkpoint import ModelLibrary, load_checkpoint
    from .data import DataError, load_dataset
    from .latent import encode
    from .maps.projection import compute_map, default_params
    from .maps.service import MapStore
    from .paths import BUNDLED_MODELS

    p = argparse.ArgumentParser(prog="python -m vae.assets",
                                description="Rebuild the bundled test digits, maps and Welcome pictures.")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--previews-only", action="store_true",
                   help="only redraw assets/previews/ (seconds; no data folder needed)")
    p.add_argument("--only", nargs="+", metavar="ID", default=None,
                   help="the maps of these bundled models only (ids such as dae-16d), and every preview; "
                        "the test digits are left as they are")
    args = p.parse_args(argv)
    if args.previews_only:
        print(json.dumps(write_previews()))
        return 0
    try:
        data = load_dataset("mnist", args.data_dir, download=False, require_train=False)
    except DataError as e:
        print(json.dumps({"error": str(e)}))
        return 2
    entries = ModelLibrary(BUNDLED_MODELS).entries()
    if args.only:
        if unknown := sorted(set(args.only) - {e.id for e in entries}):
            print(json.dumps({"error": f"No bundled model is called {', '.join(unknown)}."}))
            return 2
        entries = [e for e in entries if e.id in args.only]
    else:
        np.savez_compressed(TEST_DIGITS, x=data.x_test.numpy(), y=data.y_test.numpy().astype(np.uint8))
    store = MapStore(MAPS_DIR)
    report = {}
    for entry in entries:
        model, _ = load_checkpoint(entry.path)
        z = encode(model, data.x_test)
        methods = ["pca", "tsne", "umap"] + (["native"] if model.latent_dim <= 2 else [])
        for method in methods:
            t0 = time.perf_counter()
            params = default_params(method)
            store.put(entry.fingerprint, method, params, compute_map(z, method, params))
            report[f"{entry.id}/{method}"] = round(time.perf_counter() - t0, 2)
            print(f"{entry.id} {method}: {report[f'{entry.id}/{method}']} s", file=sys.stderr)
    report["previews"] = write_previews()
    report["measures"] = write_measures(data)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
