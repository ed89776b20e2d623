"""vae.likeness: the digit-likeness layer over a map view."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from vae.config import ModelConfig
from vae.likeness import Layer, layer_png, layer_rgba, likeness_layer
from vae.models import build_model


class FakeClassifier(torch.nn.Module):
    """Confident (one class) where the image is bright, undecided (uniform) where it is dark."""

    def forward(self, x):  # (B, 1, 28, 28)
        m = x.mean((1, 2, 3))
        return torch.stack([20 * m] + [torch.zeros_like(m)] * 9, 1)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_model(ModelConfig(kind="ae", arch="mlp", latent_dim=2, hidden=(16,))).eval()


def test_layer_shape_orientation_and_share(model):
    seen = []

    def to_codes(p):
        seen.append(p.copy())
        return p

    layer = likeness_layer(model, FakeClassifier(), to_codes, ((-1, 1), (0, 2)), n=8)
    assert layer.scores.shape == (8, 8) and 0 <= layer.share <= 1
    p = seen[0].reshape(8, 8, 2)
    assert p[0, 0, 1] > p[-1, 0, 1]  # the top row is the highest y, as an image is drawn
    np.testing.assert_allclose([p[0, 0, 0], p[0, -1, 0]], [-1 + 1 / 8, 1 - 1 / 8])  # cell centres


def test_rgba_is_clear_where_digit_like_and_dark_where_not():
    layer = Layer(((0, 1), (0, 1)), np.array([[0.99, 0.5], [0.1, 0.9]], np.float32), threshold=0.9)
    a = layer_rgba(layer)[..., 3]
    assert a[0, 0] == 0 and a[1, 1] == 0 and a[1, 0] > a[0, 1] > 0
    img = Image.open(io.BytesIO(layer_png(layer)))
    assert img.size == (2, 2) and img.mode == "RGBA"


@pytest.mark.parametrize("view", [((1, 0), (0, 1)), ((0, np.inf), (0, 1)), "no"])
def test_bad_views_get_a_sentence(model, view):
    with pytest.raises(ValueError, match="view"):
        likeness_layer(model, FakeClassifier(), lambda p: p, view, n=4)


def test_codes_of_the_wrong_size_are_refused(model):
    with pytest.raises(ValueError, match="codes of shape"):
        likeness_layer(model, FakeClassifier(), lambda p: np.zeros((len(p), 3)), ((0, 1), (0, 1)), n=4)
