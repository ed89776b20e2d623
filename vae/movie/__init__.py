"""The latent movie (issue 17): where a fixed subset of test digits sits on a model's map at moments of
its training, recorded while it trains, stored in its checkpoint, played on the pages, exported as a GIF.

    index = subset_index(data.y_test.numpy())         # the same 2,000 digits (SUBSET) for every model of a dataset
    movie = read_movie("m.safetensors")               # Movie, or None: the checkpoint has no history
    movie.points, movie.step, movie.epoch, movie.loss  # (F, N, 2), and one value per frame
    data = gif_bytes(movie, size=480, fps=8)          # an animated GIF

    python -m vae.movie CHECKPOINT --out FILE.gif [--size 480] [--fps 8]

Training records it (vae.train.iter_train, with TrainConfig.movie on, the default): a frame before the
first step, 20 to 100 in all, closer together early, where the map forms (vae.movie.frames says why and
how), and one at the end; each frame is also a vae.events.FrameEvent for the live map. The modules:

    frames.py   the subset, Movie, the schedule, the planes (native, a fixed PCA; live frames aligned)  numpy
    record.py   MovieRecorder, which iter_train drives                                               torch
    store.py    the movie in a checkpoint (movie.* tensors, a "movie" metadata entry), read_movie     numpy
    gif.py      each frame as a picture, gif_bytes                                                     PIL
    cli.py      python -m vae.movie

This package imports numpy and PIL only; torch only where record.py is imported (by the trainer).
"""

from .frames import MAX_FRAMES, MIN_FRAMES, SUBSET, Movie, subset_index
from .gif import DIGIT_COLORS, frame_image, gif_bytes
from .store import movie_meta, movie_tensors, read_movie

__all__ = ["DIGIT_COLORS", "MAX_FRAMES", "MIN_FRAMES", "SUBSET", "Movie", "frame_image", "gif_bytes",
           "movie_meta", "movie_tensors", "read_movie", "subset_index"]
