"""vae.maps.neighbours: the neighbour approximation between a map and latent space, and the honesty figure."""

import numpy as np
import pytest

from vae.maps.neighbours import (approx_codes, kept_neighbours, kept_path, kept_share, load_kept, nearest, place,
                                 save_kept)


@pytest.fixture
def cloud():
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(500, 6)).astype(np.float32)
    map_y = (codes[:, :2] + 0.05 * rng.normal(size=(500, 2))).astype(np.float32)
    return codes, map_y


def test_approx_codes_shape_and_exact_at_the_maps_own_points(cloud):
    codes, map_y = cloud
    z = approx_codes(map_y, codes, map_y[:40])
    assert z.shape == (40, 6) and z.dtype == np.float32
    np.testing.assert_allclose(z, codes[:40], atol=1e-6)


def test_approx_codes_between_two_dots_blends_them():
    map_y = np.array([[0.0, 0.0], [1.0, 0.0]])
    codes = np.array([[0.0, 0.0, 0.0], [2.0, 4.0, 6.0]])
    np.testing.assert_allclose(approx_codes(map_y, codes, [[0.5, 0.0]], k=2), [[1.0, 2.0, 3.0]], atol=1e-6)
    near_first = approx_codes(map_y, codes, [[0.1, 0.0]], k=2)[0]
    assert 0 < near_first[0] < 1.0  # closer to the first dot's code


def test_approx_codes_stays_inside_the_hull_of_its_neighbours(cloud):
    codes, map_y = cloud
    z = approx_codes(map_y, codes, np.random.default_rng(1).uniform(-2, 2, (100, 2)))
    assert (z.min(0) >= codes.min(0) - 1e-6).all() and (z.max(0) <= codes.max(0) + 1e-6).all()


def test_place_is_exact_at_known_codes_and_the_right_shape(cloud):
    codes, map_y = cloud
    y = place(codes, map_y, codes[:25])
    assert y.shape == (25, 2)
    np.testing.assert_allclose(y, map_y[:25], atol=1e-6)
    with pytest.raises(ValueError, match="shape"):
        place(codes, map_y, np.zeros((2, 5)))


def test_nearest_returns_nearest_first(cloud):
    codes, _ = cloud
    idx = nearest(codes, codes[7], k=8)
    assert idx.shape == (1, 8) and idx[0, 0] == 7
    d = np.linalg.norm(codes[idx[0]] - codes[7], axis=1)
    assert (np.diff(d) >= -1e-9).all()


def test_honesty_is_one_for_the_identity_map_and_low_for_a_shuffled_one(cloud):
    codes, _ = cloud
    plane = codes[:, :2]
    kept = kept_neighbours(plane, plane, k=10)
    assert kept.shape == (500,) and kept_share(kept, 10) == 1.0
    shuffled = np.random.default_rng(2).permutation(plane)
    assert kept_share(kept_neighbours(plane, shuffled, k=10), 10) < 0.1
    assert 0 <= kept_neighbours(codes, plane, 10).min() <= kept_neighbours(codes, plane, 10).max() <= 10


@pytest.mark.parametrize("bad", [np.full((500, 2), np.nan), np.zeros((499, 2)), np.zeros((500, 3))])
def test_refusals_are_sentences(cloud, bad):
    codes, _ = cloud
    with pytest.raises(ValueError, match=r"\."):
        kept_neighbours(codes, bad)


# --- neighbours kept, stored -------------------------------------------------------------------------

def test_stored_neighbours_kept_come_back_only_for_the_map_they_were_counted_on(cloud, tmp_path):
    codes, map_y = cloud
    kept = kept_neighbours(codes, map_y, 10)
    path = save_kept(tmp_path, "fp-tsne-abc", kept, map_y, 10)
    assert path == kept_path(tmp_path, "fp-tsne-abc", 10)
    np.testing.assert_array_equal(load_kept([tmp_path / "none", tmp_path], "fp-tsne-abc", map_y, 10), kept)
    assert load_kept([tmp_path], "fp-umap-abc", map_y, 10) is None  # another map
    assert load_kept([tmp_path], "fp-tsne-abc", map_y, 5) is None  # another k
    moved = map_y.copy()
    moved[0, 0] += 1e-3
    assert load_kept([tmp_path], "fp-tsne-abc", moved, 10) is None  # the same key, another map: counted again
    path.write_bytes(b"PK\x03\x04 damaged")
    assert load_kept([tmp_path], "fp-tsne-abc", map_y, 10) is None
    with pytest.raises(ValueError, match=r"\."):
        save_kept(tmp_path, "fp-tsne-abc", kept[:-1], map_y, 10)


def test_the_map_page_counts_once_and_then_reads_the_stored_counts(cloud, monkeypatch):
    """ui.map_layers.kept: counted the first time and stored beside the map in the cache, so a later server
    (its memory cache empty) reads them instead of counting."""
    import streamlit as st

    import vae.maps.neighbours
    from ui import map_layers
    from vae.paths import cache_dir

    codes, map_y = cloud
    st.cache_data.clear()
    want = map_layers.kept("fp-tsne-abc", codes, map_y)
    assert kept_path(cache_dir() / "maps", "fp-tsne-abc").is_file()
    st.cache_data.clear()
    monkeypatch.setattr(vae.maps.neighbours, "kept_neighbours", lambda *a: pytest.fail("counted again"))
    np.testing.assert_array_equal(map_layers.kept("fp-tsne-abc", codes, map_y), want)
    st.cache_data.clear()


def test_bundled_maps_store_what_counting_gives():
    from vae.assets import MAPS_DIR, test_set
    from vae.checkpoint import load_checkpoint
    from vae.latent import encode
    from vae.maps.projection import default_params
    from vae.maps.service import MapStore, map_key
    from vae.paths import BUNDLED_MODELS

    path = BUNDLED_MODELS / "vae-16d.safetensors"
    if not path.is_file():
        pytest.skip("the bundled models are not built yet (bash assets/build.sh)")
    from vae.checkpoint import weights_fingerprint

    fp, params = weights_fingerprint(path), default_params("tsne")
    y = MapStore(MAPS_DIR).get(fp, "tsne", params)
    stored = load_kept([MAPS_DIR], map_key(fp, "tsne", params), y) if y is not None else None
    assert stored is not None, "no stored neighbours kept for the bundled t-SNE map: run python -m vae.assets"
    np.testing.assert_array_equal(stored, kept_neighbours(encode(load_checkpoint(path)[0], test_set().x_test), y, 10))
