"""The map pages' pure helpers: manifold region and codes (vae.latent), sprite sheets and the map as a
picture (vae.images), CSV, packed points and selections (vae.maps.points)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from scipy.stats import norm

from vae.images import SPRITE_CHUNK, scatter_png, sprite_chunks, sprite_png, sprite_sheet
from vae.latent import manifold_codes, manifold_region
from vae.maps.points import map_csv, pack_points, selected_indices


def test_region_of_a_vae_is_the_priors_central_mass():
    z = np.random.default_rng(0).standard_normal((500, 2)).astype(np.float32) * 5  # ignored for a VAE
    (x0, x1), (y0, y1) = manifold_region(z, probabilistic=True)
    assert x0 == pytest.approx(norm.ppf(0.01)) and x1 == pytest.approx(norm.ppf(0.99))
    assert (y0, y1) == (x0, x1)


def test_region_of_an_ae_is_the_codes_percentiles():
    rng = np.random.default_rng(0)
    z = np.c_[rng.uniform(10, 20, 10_000), rng.uniform(-1, 0, 10_000)].astype(np.float32)
    (x0, x1), (y0, y1) = manifold_region(z, probabilistic=False)
    assert x0 == pytest.approx(10.1, abs=0.1) and x1 == pytest.approx(19.9, abs=0.1)
    assert y0 == pytest.approx(-0.99, abs=0.02) and y1 == pytest.approx(-0.01, abs=0.02)
    assert np.mean((z[:, 0] >= x0) & (z[:, 0] <= x1)) == pytest.approx(0.98, abs=0.005)


def test_region_of_a_collapsed_axis_is_still_visible():
    z = np.c_[np.linspace(0, 1, 100), np.zeros(100)].astype(np.float32)
    (_, _), (y0, y1) = manifold_region(z, probabilistic=False)
    assert y1 - y0 == pytest.approx(1.0)


def test_region_of_a_1d_model():
    z = np.linspace(-2, 2, 101, dtype=np.float32)[:, None]
    (x0, x1), (y0, y1) = manifold_region(z, probabilistic=False)
    assert x0 < -1.9 and x1 > 1.9 and (y0, y1) == (0.0, 0.0)


@pytest.mark.parametrize("bad", [np.zeros((5, 3)), np.zeros(5), np.zeros((0, 2))])
def test_region_refuses_codes_that_are_not_1d_or_2d(bad):
    with pytest.raises(ValueError, match="1-d or 2-d"):
        manifold_region(bad, probabilistic=False)


@pytest.mark.parametrize("probabilistic", [False, True])
def test_manifold_codes_read_like_the_scatter(probabilistic):
    region = ((-2.0, 2.0), (-1.0, 1.0))
    codes = manifold_codes(5, region, latent_dim=2, probabilistic=probabilistic).reshape(5, 5, 2)
    assert np.all(np.diff(codes[:, :, 0], axis=1) > 0)  # left -> right: z1 grows
    assert np.all(np.diff(codes[:, :, 1], axis=0) < 0)  # top -> bottom: z2 falls
    assert codes[0, 0, 0] == pytest.approx(-2) and codes[0, 0, 1] == pytest.approx(1)
    assert codes[-1, -1, 0] == pytest.approx(2) and codes[-1, -1, 1] == pytest.approx(-1)


def test_probabilistic_codes_are_evenly_spaced_in_probability():
    region = ((norm.ppf(0.05), norm.ppf(0.95)),) * 2
    codes = manifold_codes(7, region, latent_dim=2, probabilistic=True)
    p = norm.cdf(np.unique(codes[:, 0]))
    assert np.allclose(np.diff(p), np.diff(p)[0], atol=1e-5)


def test_manifold_codes_of_a_1d_model_are_a_strip():
    codes = manifold_codes(9, ((-3.0, 3.0), (0.0, 0.0)), latent_dim=1, probabilistic=False)
    assert codes.shape == (9, 1) and codes[0, 0] == -3 and codes[-1, 0] == 3
    with pytest.raises(ValueError, match="1-d and 2-d"):
        manifold_codes(9, ((-3.0, 3.0), (0.0, 0.0)), latent_dim=3, probabilistic=False)


def test_sprite_sheet_places_digit_i_at_row_i_div_cols():
    x = (np.arange(7)[:, None, None] * 10 + np.zeros((7, 4, 3))).astype(np.uint8)
    sheet = sprite_sheet(x, cols=3)
    assert sheet.shape == (3 * 4, 3 * 3)
    for i in range(7):
        r, c = divmod(i, 3)
        assert np.all(sheet[r * 4:(r + 1) * 4, c * 3:(c + 1) * 3] == i * 10)
    assert np.all(sheet[8:, 3:] == 0)  # padding after the last digit


def test_sprite_png_round_trips_one_chunk():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (2 * SPRITE_CHUNK + 10, 28, 28), dtype=np.uint8)
    assert sprite_chunks(len(x)) == 3
    png = sprite_png(x, chunk=1)
    sheet = np.asarray(Image.open(io.BytesIO(png)))
    assert np.array_equal(sprite_sheet(x[SPRITE_CHUNK:2 * SPRITE_CHUNK]), sheet)
    last = np.asarray(Image.open(io.BytesIO(sprite_png(x, chunk=2))))
    assert np.array_equal(last[:28, :28], x[2 * SPRITE_CHUNK])
    with pytest.raises(ValueError, match="out of range"):
        sprite_png(x, chunk=3)


def test_sprite_sheet_refuses_floats():
    with pytest.raises(ValueError, match="uint8"):
        sprite_sheet(np.zeros((2, 28, 28), np.float32))


def test_map_csv_has_one_row_per_point():
    y = np.array([[0.5, -1.25], [3.0, 4.0], [1e-7, 2.0]], np.float32)
    text = map_csv(y, np.array([7, 0, 3]))
    lines = text.strip().split("\n")
    assert lines[0] == "index,label,x,y"
    assert lines[1] == "0,7,0.5,-1.25" and lines[2] == "1,0,3,4"
    back = np.loadtxt(io.StringIO(text), delimiter=",", skiprows=1)
    assert np.allclose(back[:, 2:], y, rtol=1e-5) and back[:, 0].tolist() == [0, 1, 2]
    with pytest.raises(ValueError):
        map_csv(y, np.array([1, 2]))


def test_selected_indices_from_plotly_points():
    points = [{"customdata": 5}, {"customdata": [9]}, {"customdata": 5}, {"customdata": None}, {"x": 1},
              {"customdata": 10_000}, {"customdata": -1}, {"customdata": "12"}]
    assert selected_indices(points, 10_000) == [5, 9, 12]
    assert selected_indices(None, 10) == []


def test_selected_indices_from_the_canvas_map():
    """The canvas map sends plain indices; anything else a browser could send is dropped."""
    assert selected_indices([3, 3, 0, 9_999, 10_000, -2, 2.0, 2.5, True, "7", None, [4]], 10_000) == [3, 0, 9_999, 2, 7, 4]


def test_pack_points_round_trips_within_a_pixel_of_a_pixel():
    import base64


    rng = np.random.default_rng(0)
    y = (rng.standard_normal((10_000, 2)) * [30, 0.002] + [5, -1]).astype(np.float32)  # very unequal ranges
    labels = rng.integers(0, 10, 10_000)
    p = pack_points(y, labels)
    assert p["n"] == 10_000 and len(p["x"]) + len(p["y"]) + len(p["labels"]) < 70_000  # base64, 10,000 digits
    for axis, name in ((0, "x"), (1, "y")):
        lo, hi = p[name + "r"]
        assert lo == pytest.approx(y[:, axis].min()) and hi == pytest.approx(y[:, axis].max())
        q = np.frombuffer(base64.b64decode(p[name]), "<u2")
        back = lo + q * (hi - lo) / 65535
        assert np.abs(back - y[:, axis]).max() <= (hi - lo) / 65535  # half a step, plus float32 rounding
    assert np.array_equal(np.frombuffer(base64.b64decode(p["labels"]), np.uint8), labels)


def test_pack_points_odd_input():
    import base64


    p = pack_points(np.array([[1.0, np.nan], [1.0, 2.0], [np.inf, 3.0]]), np.array([0, 1, 2]))
    assert p["xr"] == [1.0, 2.0]  # one finite value: a unit range, not a division by zero
    assert np.frombuffer(base64.b64decode(p["x"]), "<u2").tolist() == [0, 0, 65535]  # +inf to the top
    assert np.frombuffer(base64.b64decode(p["y"]), "<u2").tolist() == [0, 0, 65535]  # nan to the bottom
    assert pack_points(np.zeros((0, 2)), np.zeros(0))["n"] == 0
    for y, labels in ((np.zeros((3, 3)), np.zeros(3)), (np.zeros((3, 2)), np.zeros(2)), (np.zeros((1, 2)), [300])):
        with pytest.raises(ValueError):
            pack_points(y, np.asarray(labels))


def test_scatter_png_draws_every_class_in_its_colour():
    import io

    from PIL import Image


    rng = np.random.default_rng(0)
    y = np.r_[rng.normal(-5, 0.3, (200, 2)), rng.normal(5, 0.3, (200, 2)), [[np.nan, 0]]]
    labels = np.r_[np.zeros(200, int), np.ones(200, int), [0]]
    img = np.asarray(Image.open(io.BytesIO(scatter_png(y, labels, ["#ff0000", "#0000ff"], size=(200, 100)))))
    assert img.shape == (100, 200, 3)
    red = (img == [255, 0, 0]).all(axis=2)
    blue = (img == [0, 0, 255]).all(axis=2)
    assert red.sum() > 50 and blue.sum() > 50
    assert np.flatnonzero(red.any(axis=0)).max() < np.flatnonzero(blue.any(axis=0)).min()  # left and right
    blank = scatter_png(np.zeros((0, 2)), np.zeros(0, int), ["#ff0000"], size=(20, 10))  # nothing to draw
    assert (np.asarray(Image.open(io.BytesIO(blank))) == 255).all()
    with pytest.raises(ValueError):
        scatter_png(np.zeros((3, 3)), np.zeros(3, int), ["#ff0000"])


# --- the Latent map's layers (ui/map_layers.py) --------------------------------------------------------

def _layers():
    from ui import map_layers

    return map_layers


@pytest.mark.parametrize("view", [((-3.0, 3.0), (-3.0, 3.0)), ((-31.7, 40.2), (-52.0, 22.5)),
                                  ((0.001, 0.0013), (5.0, 9.0)), ((-1e4, 2e4), (-0.5, 0.5))])
def test_a_quantised_view_covers_the_view_and_is_at_most_a_quarter_larger(view):
    q = _layers().quantise_view(view)
    for (lo, hi), (qlo, qhi) in zip(view, q):
        assert qlo <= lo < hi <= qhi
        assert qhi - qlo <= 1.25 * (hi - lo) + 1e-12
    assert _layers().quantise_view(q) == q  # a snapped view is its own snap


def test_nearby_views_share_one_quantised_view():
    m = _layers()
    base = ((-30.0, 40.0), (-52.0, 22.0))
    nudged = ((-30.4, 39.7), (-51.6, 22.3))  # a pan of a few pixels
    assert m.quantise_view(base) == m.quantise_view(nudged)


@pytest.mark.parametrize("bad", [((0, 0), (0, 1)), ((1, 0), (0, 1)), ((float("nan"), 1), (0, 1)),
                                 ((0, float("inf")), (0, 1))])
def test_a_bad_view_is_refused_with_a_sentence(bad):
    with pytest.raises(ValueError, match="finite bounds"):
        _layers().quantise_view(bad)


def test_the_visible_share_counts_only_points_inside_the_view():
    m = _layers()
    scores = np.zeros((4, 4), np.float32)
    scores[:2] = 1.0  # the top half (the highest y) decodes to digits
    layer_view = ((0.0, 1.0), (0.0, 1.0))
    assert m.visible_share(scores, layer_view, ((0, 1), (0.5, 1))) == 1.0
    assert m.visible_share(scores, layer_view, ((0, 1), (0, 0.5))) == 0.0
    assert m.visible_share(scores, layer_view, layer_view) == 0.5
    assert np.isnan(m.visible_share(scores, layer_view, ((2, 3), (2, 3))))


def test_colour_values_travel_as_uint8_within_0_to_k():
    import base64

    m = _layers()
    got = m.color_values(np.array([0, 3, 10, 12, -1]))
    assert got["max"] == m.K == 10 and "neighbours kept" in got["label"]
    assert list(base64.b64decode(got["values"])) == [0, 3, 10, 10, 0]


def test_the_verdict_names_a_confident_digit_or_says_it_is_none():
    m = _layers()
    names = [str(i) for i in range(10)]
    sure, unsure = np.full(10, 0.01), np.full(10, 0.1)
    sure[7], unsure[3] = 0.91, 0.19
    assert m.verdict(sure, names) == "The classifier calls it a confident 7 (91%)."
    assert m.verdict(unsure, names).startswith("Not a confident digit") and "3, at 19%" in m.verdict(unsure, names)
    assert m.verdict(None, names) == ""


@pytest.fixture(scope="module")
def bundled():
    from ui import state

    return {k: state.get_model(k) for k in ("ae-2d", "vae-16d")}


def test_the_pca_plane_reproduces_the_map_services_pca_map(bundled, tmp_path):
    from ui import map_layers, state
    from vae.assets import MAPS_DIR
    from vae.maps.service import MapService, MapStore

    service = MapService(MapStore(tmp_path, readonly_dirs=[MAPS_DIR]))
    for a in bundled.values():
        z = state.active_codes(a)
        y = service.request(a.fingerprint, z, "pca").embedding  # the bundled map, as the page draws it
        plane = map_layers._plane(a.fingerprint, a.dataset, "pca", z)
        np.testing.assert_allclose(plane.transform(z), y, atol=1e-4 * np.abs(y).max())
        # and back: a point of the map goes to a code that lands on that very point
        points = np.array([[0.0, 0.0], [1.5, -2.0], [y[:, 0].max() * 2, 0.3]])
        np.testing.assert_allclose(plane.transform(map_layers.plane(a, "pca")(points)), points, atol=1e-4)
    service.close()


def test_a_native_point_is_its_code_and_a_tsne_dot_its_own_code(bundled):
    from ui import map_layers, state

    a = bundled["ae-2d"]
    z = state.active_codes(a)
    code, exact = map_layers.point_code(a, "native", z, z, (3.5, -7.25))
    assert exact and code.tolist() == [3.5, -7.25]
    y = np.random.default_rng(0).standard_normal((len(z), 2)).astype(np.float32)  # any map without an inverse
    code, exact = map_layers.point_code(a, "tsne", z, y, y[123])
    assert not exact
    np.testing.assert_allclose(code, z[123], rtol=1e-5)
    between, _ = map_layers.point_code(a, "umap", z, y, (y[1] + y[2]) / 2)
    assert between.shape == (2,) and np.isfinite(between).all()


def test_the_layer_covers_the_asked_view_with_an_n_by_n_picture(bundled):
    from ui import map_layers

    a = bundled["vae-16d"]
    view = ((-2.3, 2.9), (-1.7, 2.2))
    q, png, scores = map_layers.layer_for(a, "pca", view, n=24)
    assert q == map_layers.quantise_view(view)
    import base64

    img = Image.open(io.BytesIO(base64.b64decode(png)))
    assert img.size == (24, 24) and img.mode == "RGBA" and scores.shape == (24, 24)
    assert 0.0 <= scores.min() and scores.max() <= 1.0
    assert map_layers.plane(a, "tsne") is None  # no exact way back: no layer
