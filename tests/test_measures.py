"""The scores behind the AE vs VAE page: the classifier's scoring path, the stored scores of the bundled models
(vae.measures) and how the page uses them (ui.compare).

The invariants: the fast scoring path gives the network's own probabilities; stored scores are used only with
the classifier, model, measure and length they were made for, and a damaged store is an empty one; the bundled
models' stored scores are what the page's own functions compute now; on the page's default view of a bundled
pair the classifier scores only the two walks between the chosen digits, and on a new seed exactly the new
prior and fitted samples.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import vae.classifier
from vae.classifier import BATCH, DEFAULT_PATH, DigitClassifier, fingerprint, load_classifier, predict_proba
from vae.compare import BUNDLED_PAIRS
from vae.measures import (N_PRIOR, N_REFERENCE, SCORES_DIR, WALK_STEPS, ScoreStore, default_scores,
                          originals_scores, reference_digits, score_name, write_scores)
from vae.paths import BUNDLED_MODELS


def bundled_or_skip(ids):
    if not DEFAULT_PATH.is_file() or not all((BUNDLED_MODELS / f"{i}.safetensors").is_file() for i in ids):
        pytest.skip("the bundled models or classifier are not built yet (bash assets/build.sh)")


# --- the classifier's scoring path --------------------------------------------------------------------

@pytest.mark.parametrize("channels_last", [False, True])
def test_scoring_gives_the_networks_own_probabilities(channels_last):
    torch.manual_seed(0)
    clf = DigitClassifier().eval()
    if channels_last:
        clf = clf.to(memory_format=torch.channels_last)
    x = np.random.default_rng(0).uniform(0, 1, (BATCH + 45, 28, 28)).astype(np.float32)  # more than one batch
    with torch.no_grad():
        want = torch.softmax(clf(torch.from_numpy(x)[:, None]), 1).numpy()
    np.testing.assert_allclose(predict_proba(clf, x), want, atol=1e-6, rtol=0)
    np.testing.assert_allclose(predict_proba(clf, (x * 255).round().astype(np.uint8)),
                               predict_proba(clf, (x * 255).round() / 255), atol=1e-6, rtol=0)
    assert predict_proba(clf, x[:0]).shape == (0, 10)


def test_classifier_fingerprint_follows_the_weights_not_their_memory_order():
    torch.manual_seed(0)
    a = DigitClassifier()
    b = DigitClassifier()
    b.load_state_dict(a.state_dict())
    assert fingerprint(a) == fingerprint(b.to(memory_format=torch.channels_last))
    with torch.no_grad():
        b.net[0].bias[0] += 1e-3
    assert fingerprint(a) != fingerprint(b)


# --- the store ------------------------------------------------------------------------------------------

def test_score_names_are_the_measure_and_its_parameters():
    assert score_name("grid", "sd", 2.0, 14) == "grid/sd/2/14"
    assert score_name("walks", "linear", 10, 100) == "walks/linear/10/100"
    idx = reference_digits(10_000)
    assert len(idx) == N_REFERENCE and np.all(np.diff(idx) > 0) and np.array_equal(idx, reference_digits(10_000))
    assert len(reference_digits(30)) == 30


def test_store_gives_back_only_what_it_was_given_for_that_classifier(tmp_path):
    s = np.linspace(0, 1, 400, dtype=np.float32)
    write_scores(tmp_path, "clf-a", {"model-1": {"prior/400/0": s}, "mnist": {"originals/2000": s[:20]}})
    store = ScoreStore(tmp_path, "clf-a")
    np.testing.assert_array_equal(store.get("model-1", "prior/400/0", 400), s)
    assert store.get("model-1", "prior/400/1", 400) is None  # another seed
    assert store.get("model-2", "prior/400/0", 400) is None  # another model
    assert store.get("model-1", "prior/400/0", 399) is None  # another length
    assert store.get("mnist", "originals/2000", 20) is not None
    assert len(ScoreStore(tmp_path, "clf-b")) == 0  # another classifier: nothing
    with pytest.raises(ValueError):
        store.get("model-1", "prior/400/0", 400)[0] = 0.5  # shared by every session: read-only
    write_scores(tmp_path, "clf-b", {"model-1": {"prior/400/0": np.full(400, 2.0, np.float32)}})
    assert not (tmp_path / "clf-a.npz").exists()  # one classifier's scores at a time
    assert ScoreStore(tmp_path, "clf-b").get("model-1", "prior/400/0", 400) is None  # not a probability


def test_a_damaged_or_missing_store_is_an_empty_one(tmp_path):
    assert len(ScoreStore(tmp_path / "nowhere", "clf")) == 0
    (tmp_path / "clf.npz").write_bytes(b"PK\x03\x04 not a zip at all")
    assert len(ScoreStore(tmp_path, "clf")) == 0


def test_bundled_stored_scores_are_what_the_page_computes_now():
    """For every bundled MNIST model the store holds the default view, made with the bundled classifier, and
    for the 16-d pair (the page's default) every stored score is what the page's own functions give today:
    a stale store (models or classifier rebuilt without `python -m vae.assets`) fails here."""
    from vae.assets import test_set
    from vae.checkpoint import ModelLibrary, load_checkpoint
    from vae.latent import encode

    bundled_or_skip(BUNDLED_PAIRS["16-d"])
    clf = load_classifier()
    store = ScoreStore(SCORES_DIR, fingerprint(clf))
    x = test_set("mnist").x_test
    assert len(store), "no stored scores for the bundled classifier: run python -m vae.assets"
    np.testing.assert_allclose(store.get("mnist", score_name("originals", N_REFERENCE), N_REFERENCE),
                               originals_scores(clf, x), atol=1e-5)
    for entry in ModelLibrary(BUNDLED_MODELS).entries():
        if entry.meta.get("dataset", "mnist") != "mnist":
            continue
        assert store.get(entry.fingerprint, score_name("prior", N_PRIOR, 0), N_PRIOR) is not None, entry.id
        if entry.id not in BUNDLED_PAIRS["16-d"]:
            continue
        model = load_checkpoint(entry.path)[0]
        for name, scores in default_scores(model, clf, x, encode(model, x)).items():
            stored = store.get(entry.fingerprint, name, len(scores))
            assert stored is not None, (entry.id, name)
            np.testing.assert_allclose(stored, scores, atol=1e-4, err_msg=f"{entry.id} {name}")
            assert (stored >= 0.9).sum() == (scores >= 0.9).sum(), (entry.id, name)  # the same share


# --- the page -------------------------------------------------------------------------------------------

@pytest.fixture
def scored_images(monkeypatch):
    """How many images the digit classifier scores (every score goes through vae.classifier.predict_proba)."""
    counted = []
    real = vae.classifier.predict_proba

    def counting(clf, images):
        counted.append(len(images))
        return real(clf, images)

    monkeypatch.setattr(vae.classifier, "predict_proba", counting)
    return counted


@pytest.mark.usefixtures("fresh_app", "stub_maps")
def test_the_bundled_pairs_default_view_scores_only_its_walks(scored_images):
    from tests.apptest import open_page

    bundled_or_skip(BUNDLED_PAIRS["16-d"])
    at = open_page("pages/compare.py")
    assert at.radio(key="compare_pair").value == "16-d"
    assert sum(scored_images) == 2 * WALK_STEPS  # each model's walk between the two chosen test digits
    assert any(c.value.startswith("Reference: its reconstructions of 2,000") for c in at.caption)
    scored_images.clear()
    at.number_input(key="compare_seed").set_value(1).run()
    assert not at.exception
    assert sorted(scored_images) == [N_PRIOR] * 4  # per model: the new prior and fitted samples, nothing else
    scored_images.clear()
    at.number_input(key="compare_seed").set_value(0).run()
    assert scored_images == []  # seed 0 again: from the cache
