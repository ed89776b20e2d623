"""A model's fingerprint (what keys its cached maps and scores) covers its weights only: the training
movie stored beside them does not change it, so a bundled model rebuilt with its movie keeps its maps."""

from __future__ import annotations

import numpy as np
import torch

from tests.test_checkpoint import tiny
from tests.test_movie import synthetic
from vae.checkpoint import ModelLibrary, save_checkpoint, weights_fingerprint
from vae.models import build_model
from vae.movie import movie_meta, movie_tensors, read_movie


def test_the_movie_does_not_change_the_fingerprint(tmp_path):
    model = build_model(tiny(), seed=0)
    plain = save_checkpoint(tmp_path / "plain.safetensors", model, name="m")
    movie = synthetic(frames=7, n=40)
    with_movie = save_checkpoint(tmp_path / "movie.safetensors", model, name="m",
                                 tensors=movie_tensors(movie), movie=movie_meta(movie))
    assert read_movie(with_movie) is not None and read_movie(plain) is None
    assert weights_fingerprint(with_movie) == weights_fingerprint(plain)
    other = synthetic(frames=9, n=40, seed=1)  # another movie of the same weights: still the same weights
    again = save_checkpoint(tmp_path / "again.safetensors", model, name="m",
                            tensors=movie_tensors(other), movie=movie_meta(other))
    assert weights_fingerprint(again) == weights_fingerprint(plain)


def test_other_weights_change_the_fingerprint(tmp_path):
    movie = synthetic()
    a = build_model(tiny(), seed=0)
    b = build_model(tiny(), seed=0)
    with torch.no_grad():
        next(iter(b.parameters())).view(-1)[0] += 1.0
    pa = save_checkpoint(tmp_path / "a.safetensors", a, tensors=movie_tensors(movie), movie=movie_meta(movie))
    pb = save_checkpoint(tmp_path / "b.safetensors", b, tensors=movie_tensors(movie), movie=movie_meta(movie))
    assert weights_fingerprint(pa) != weights_fingerprint(pb)


def test_the_library_lists_the_same_fingerprint(tmp_path):
    lib, model, movie = ModelLibrary(tmp_path / "lib"), build_model(tiny(), seed=0), synthetic()
    plain = lib.save(model, name="plain")
    with_movie = lib.save(model, name="with", tensors=movie_tensors(movie), movie=movie_meta(movie))
    assert plain.fingerprint == with_movie.fingerprint
    assert np.isfinite(read_movie(with_movie.path).points).all()
