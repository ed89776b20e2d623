"""The digit-likeness layer: how much the decoder's output looks like a digit at every point of a map view.

    layer = likeness_layer(model, clf, plane.inverse_transform, view=((x0, x1), (y0, y1)), n=48)
    layer.scores          # (n, n) the classifier's top class probability, top row = highest y
    layer.share           # the share of the view that decodes to a confident digit
    png = layer_png(layer)   # n x n RGBA: clear where digit-like, darker the less it is

Painted under a map's dots, an autoencoder's holes show as dark regions. It needs an exact way
from a map point to a code (`to_codes`): the native plane (the point is the code) or a PCA
plane (`inverse_transform`); t-SNE and UMAP have none that means anything in empty space.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .classifier import CONFIDENT, DigitClassifier, digit_confidence
from .latent import decode, grid_codes
from .models import AutoEncoder

MAX_N = 128  # points per side: 16,384 decodes, about a second on two cores
DARK = (20, 20, 35)  # the colour of "not a digit"
MAX_ALPHA = 0.78  # how dark the least digit-like point gets (the dots stay readable over it)


@dataclass(frozen=True)
class Layer:
    view: tuple[tuple[float, float], tuple[float, float]]  # ((x0, x1), (y0, y1)) in map coordinates
    scores: np.ndarray  # (n, n) float32, row 0 = the highest y (as an image is drawn)
    threshold: float = CONFIDENT

    @property
    def n(self) -> int:
        return len(self.scores)

    @property
    def share(self) -> float:
        """The share of the view's grid points that decode to a confident digit."""
        return float((self.scores >= self.threshold).mean())


def check_view(view) -> tuple[tuple[float, float], tuple[float, float]]:
    """((x0, x1), (y0, y1)) as floats, or ValueError with a sentence."""
    try:
        (x0, x1), (y0, y1) = ((float(a), float(b)) for a, b in view)
    except (TypeError, ValueError):
        raise ValueError("A view is two ranges, ((x0, x1), (y0, y1)).") from None
    if not all(np.isfinite(v) for v in (x0, x1, y0, y1)) or not (x0 < x1 and y0 < y1):
        raise ValueError("A view needs finite bounds with low below high on both axes.")
    return (x0, x1), (y0, y1)


def likeness_layer(model: AutoEncoder, clf: DigitClassifier, to_codes: Callable[[np.ndarray], np.ndarray],
                   view, n: int = 48, threshold: float = CONFIDENT) -> Layer:
    """Decode the centres of an n x n grid of cells over `view` (map points -> codes by `to_codes`) and score
    each image."""
    if not 2 <= n <= MAX_N:
        raise ValueError(f"A layer has from 2 to {MAX_N} points per side, not {n}.")
    (x0, x1), (y0, y1) = view = check_view(view)
    hx, hy = (x1 - x0) / (2 * n), (y1 - y0) / (2 * n)  # the centres of n x n cells: the PNG's pixels
    points = grid_codes(n, (x0 + hx, x1 - hx), (y0 + hy, y1 - hy))  # (n*n, 2), row-major, top row = highest y
    z = np.asarray(to_codes(points), np.float32)
    if z.shape != (n * n, model.latent_dim):
        raise ValueError(f"The map's points give codes of shape {z.shape}, the model needs {model.latent_dim} numbers.")
    scores = digit_confidence(clf, decode(model, z)).astype(np.float32).reshape(n, n)
    return Layer(view, scores, threshold)


def layer_rgba(layer: Layer) -> np.ndarray:
    """(n, n, 4) uint8: transparent at or above the confident threshold, then darker as the score falls
    (to MAX_ALPHA at a score of 0.1, a classifier that cannot choose among ten digits)."""
    s = np.asarray(layer.scores, np.float32)
    dark = np.clip((layer.threshold - s) / (layer.threshold - 0.1), 0.0, 1.0)
    rgba = np.empty(s.shape + (4,), np.uint8)
    rgba[..., :3] = DARK
    rgba[..., 3] = np.round(255 * MAX_ALPHA * dark ** 0.7).astype(np.uint8)
    return rgba


def layer_png(layer: Layer) -> bytes:
    """The layer as an n x n RGBA PNG, to be stretched over its view under the dots."""
    buf = io.BytesIO()
    Image.fromarray(layer_rgba(layer), mode="RGBA").save(buf, format="PNG", optimize=True)
    return buf.getvalue()
