"""vae.drawing: a drawing prepared the way MNIST digits were (box of 20 px, centre of mass at (14, 14)),
invariant under shifts and sizes, an MNIST digit kept as it is, and refusals as sentences."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from vae.drawing import (BOX, CENTRE, MAX_POINTS, MAX_STROKES, PAD, DrawingError, centre_of_mass, ink_box, prepare,
                         prepare_strokes, rasterise)

SEVEN = [[[80, 60], [200, 60], [120, 230]]]
FOUR = [[[150, 40], [70, 160], [210, 160]], [[170, 100], [170, 250]]]
ONE = [[[140, 40], [140, 240]]]


@pytest.fixture(scope="module")
def mnist_test():
    from vae.assets import test_set

    data = test_set("mnist")
    return data.x_test[:300].numpy().astype(np.float32) / 255.0, data.y_test[:300].numpy()


def longer_side(x: np.ndarray) -> int:
    top, bottom, left, right = ink_box(x, level=0.0)
    return max(bottom - top, right - left)


def assert_mnist_like(x: np.ndarray) -> None:
    assert x.shape == (28, 28) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() == pytest.approx(1.0)
    assert ((x > 0.05) & (x < 0.95)).sum() >= 10  # anti-aliased edges, as in MNIST
    cy, cx = centre_of_mass(x)
    assert abs(cy - CENTRE) <= 0.5 + 1e-3 and abs(cx - CENTRE) <= 0.5 + 1e-3
    assert abs(longer_side(x) - BOX) <= 1


@pytest.mark.parametrize("strokes", [SEVEN, FOUR, ONE], ids=["seven", "four", "one"])
def test_drawn_digits_come_out_centred_with_a_box_of_20(strokes):
    assert_mnist_like(prepare_strokes(strokes))


def test_the_same_drawing_shifted_comes_out_the_same():
    base = prepare_strokes(SEVEN)
    for dx, dy in [(-60, 30), (45, -50), (7.3, 11.9)]:
        moved = [[[x + dx, y + dy] for x, y in s] for s in SEVEN]
        assert np.abs(prepare_strokes(moved) - base).mean() < 0.01


def test_the_same_drawing_smaller_comes_out_the_same_size():
    # Half the size with half the pen is the same picture, so it must come out (almost) the same.
    small = [[[140 + (x - 140) / 2, 140 + (y - 140) / 2] for x, y in s] for s in FOUR]
    a, b = prepare_strokes(FOUR), prepare_strokes(small, pen=PAD / 28)
    assert_mnist_like(b)
    assert np.abs(a - b).mean() < 0.03
    # With the pad's own pen the small one is bolder, but just as big and as centred.
    assert_mnist_like(prepare_strokes(small))


def test_a_wide_drawing_keeps_its_aspect_ratio():
    dash = prepare_strokes([[[40, 140], [240, 140]]])  # a horizontal bar: 20 px wide, thin
    top, bottom, left, right = ink_box(dash, level=0.0)
    assert right - left == BOX and bottom - top <= 4


def test_an_mnist_test_digit_stays_itself(mnist_test):
    x, _ = mnist_test
    out = np.stack([prepare(im) for im in x])
    assert np.abs(out - x).mean() < 1e-3
    uint8 = prepare((x[0] * 255).round().astype(np.uint8))
    assert np.abs(uint8 - x[0]).mean() < 0.01


def test_an_mnist_digit_scaled_up_and_moved_on_a_pad_comes_back(mnist_test):
    from vae.classifier import load_classifier, predict_proba

    x, _ = mnist_test
    pads = []
    for k, im in enumerate(x[:60]):
        s = 3 + k % 4  # 84 to 168 px
        up = np.clip(np.asarray(Image.fromarray(im, "F").resize((28 * s, 28 * s), Image.Resampling.BILINEAR)), 0, 1)
        pad = np.zeros((PAD, PAD), np.float32)
        r, c = (k * 37) % (PAD - 28 * s), (k * 53) % (PAD - 28 * s)
        pad[r:r + 28 * s, c:c + 28 * s] = up
        pads.append(prepare(pad))
    out = np.stack(pads)
    for im in out:
        assert_mnist_like(im)
    assert np.abs(out - x[:60]).mean() < 0.05
    clf = load_classifier()
    assert (predict_proba(clf, out).argmax(1) == predict_proba(clf, x[:60]).argmax(1)).mean() >= 0.95


def test_drawn_digits_are_read_as_what_they_are():
    from vae.classifier import load_classifier, predict_proba

    p = predict_proba(load_classifier(), np.stack([prepare_strokes(s) for s in (SEVEN, FOUR, ONE)]))
    assert p.argmax(1).tolist() == [7, 4, 1]


def test_rasterise_draws_white_ink_on_black_with_a_round_pen():
    r = rasterise([[[140, 140]]], oversample=1)  # one dot, pen 20 px
    assert r.shape == (PAD, PAD) and r[140, 140] == 1.0 and r[0, 0] == 0.0
    top, bottom, left, right = ink_box(r, level=0.0)
    assert 19 <= bottom - top <= 22 and 19 <= right - left <= 22
    assert r[131, 131] == 0.0  # a corner of the square around the dot stays black


def test_points_off_the_pad_are_kept_on_its_edge():
    r = rasterise([[[-500, 140], [900, 140]]], oversample=1)
    assert r[140, 0] == 1.0 and r[140, PAD - 1] == 1.0


@pytest.mark.parametrize("strokes, words", [
    ([], "empty"),
    ([[], []], "empty"),
    ([[[100, 100]]], "only a dot"),
    ([[[100, 100], [103, 101]]], "only a dot"),
    ([[[100, float("nan")], [120, 120]]], "not finite"),
    ([[[100, float("inf")], [120, 120]]], "not finite"),
    ([[[1, 2, 3]]], "pairs of numbers"),
    ([[["a", "b"]]], "pairs of numbers"),
    ("strokes", "list of strokes"),
    ([5], "list of strokes"),
    ([[[10, 10], [200, 200]]] * (MAX_STROKES + 1), "strokes; at most"),
    ([[[10.0, 10.0]] * (MAX_POINTS + 1)], "more than"),
])
def test_bad_drawings_are_refused_with_a_sentence(strokes, words):
    with pytest.raises(DrawingError, match=words) as e:
        prepare_strokes(strokes)
    assert str(e.value).endswith(".") and "\n" not in str(e.value)


@pytest.mark.parametrize("raster, words", [
    (np.zeros((28, 28)), "empty"),
    (np.full((28, 28), 0.01), "empty"),
    (np.zeros((28, 28, 3)), "2-D picture"),
    (np.zeros((4, 4)), "2-D picture"),
    (np.full((28, 28), np.nan), "not finite"),
    (np.array([["a"] * 28] * 28), "numbers"),
])
def test_bad_images_are_refused_with_a_sentence(raster, words):
    with pytest.raises(DrawingError, match=words):
        prepare(raster)


def test_a_single_bright_pixel_is_a_dot():
    x = np.zeros((PAD, PAD), np.float32)
    x[100:104, 100:104] = 1.0
    with pytest.raises(DrawingError, match="only a dot"):
        prepare(x)


@pytest.mark.parametrize("size", [0, 10, 1e9, float("nan"), "280", True])
def test_a_bad_pad_size_is_a_sentence(size):
    with pytest.raises(DrawingError, match="pad"):
        prepare_strokes(SEVEN, size=size)


def test_drawing_error_is_a_value_error():
    assert issubclass(DrawingError, ValueError)
