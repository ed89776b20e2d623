"""Samples & errors: dreams from the prior, reconstructions next to originals, and the worst-reconstructed digits."""

import numpy as np
import streamlit as st

from ui import explore, links, state
from vae.compare import pair_rows, worst
from ui.layout import ensure_frame
from vae.images import image_grid, png_bytes

ensure_frame()
st.title(":material/photo_library: Samples & errors")
link = links.Link("gallery")
st.markdown(
    "Three ways to look at what the model has learned: what it draws from random codes, how faithfully it "
    "redraws real digits, and which digits it redraws worst. A digit the model cannot reconstruct is one it "
    "finds unusual, so the reconstruction error works as an *anomaly score*."
)

a = state.require_active()
data = state.require_test_data(a)
labels = data.y_test.numpy()
n = len(labels)
names = data.class_names
clf, no_scores = state.scorer(a.dataset)

st.subheader("Samples from the prior")
st.caption("Codes drawn at random from the bell curve N(0, I) and decoded. A VAE was trained so that this works; "
           "a plain AE was not, so many of its samples are blurs." + (
               " A red frame marks an image that a digit classifier does not call a confident digit." if clf is not None else ""))
c1, c2, _ = st.columns([1, 2, 3])
seed = int(c1.number_input("Seed", 0, 2**31 - 1,
                           key=link.field("seed", "gallery_seed", links.integer(0, 2**31 - 1), 0)))
count = c2.slider("How many", 8, 128, step=8, key=link.field("count", "gallery_count", links.integer(8, 128, 8), 48))
link.publish({"seed": seed, "count": count})
samples = explore.prior_images(a, count, seed)
scores = None if clf is None else explore.scores(clf, samples)
grid = explore.scored_grid(samples, scores, cols=16, scale=2)
st.image(grid, width="content")
st.caption(no_scores if scores is None else
           f"{(scores >= explore.CONFIDENT).mean():.0%} of these {count} samples look like a confident digit.")
st.download_button("Samples as PNG", png_bytes(grid), f"prior-samples-seed{seed}.png", "image/png",
                   key="gallery_samples_png", on_click="ignore", icon=":material/image:")

st.subheader("Reconstructions")
st.caption("Each test digit (upper row) and the model's reconstruction of it (the row below): encoded to its "
           "latent code and decoded again. With few latent dimensions the model keeps the gist and loses details.")
c1, _ = st.columns([1, 3])
first = int(c1.number_input(f"From test digit # (0 to {n - 1})", 0, n - 1, step=16,
                            key=link.field("first", "gallery_first", links.integer(0, n - 1), 0)))
link.publish({"first": first})
indices = list(range(first, min(first + 32, n)))
originals, recons = explore.reconstructions(a, indices)
grid = image_grid(pair_rows(originals, recons, cols=16), cols=16, scale=2)
st.image(grid, width="content", caption=f"Test digits #{indices[0]} to #{indices[-1]}; under each row of originals, "
         "its reconstructions")
st.download_button("Reconstructions as PNG", png_bytes(grid), f"reconstructions-{first}.png", "image/png",
                   key="gallery_recon_png", on_click="ignore", icon=":material/image:")

st.subheader("Worst-reconstructed test digits")
st.caption("Reconstruction error per digit, in nats (how surprised the decoder is by the real pixels). "
           "The highest ones are the digits this model finds strangest: odd shapes, thick strokes, or mislabelled.")
c1, _ = st.columns([2, 4])
k = c1.slider("How many to show", 4, 48, step=4, key=link.field("worst", "gallery_worst", links.integer(4, 48, 4), 20))
link.publish({"worst": k})
with st.spinner("Reconstructing all test digits…"):
    errs = explore.errors(a)
bad = worst(errs, k)
h1, h2 = st.columns([3, 2])
h1.plotly_chart(explore.error_histogram(errs, float(errs[bad[-1]])), key="gallery_hist",
                config={"displayModeBar": False})
h2.metric("Median error", f"{np.median(errs):.1f} nats")
h2.metric(f"Worst {k}, from", f"{float(errs[bad[-1]]):.1f} nats")
originals, recons = explore.reconstructions(a, bad)
st.image(explore.pair_images(originals, recons), width=170,
         caption=[f"#{i} · a {names[labels[i]]} · {errs[i]:.0f} nats" for i in bad])
worst_grid = image_grid(pair_rows(originals, recons, cols=16), cols=16, scale=2)
st.download_button("Worst digits as PNG", png_bytes(worst_grid), "worst-reconstructions.png", "image/png",
                   key="gallery_worst_png", on_click="ignore", icon=":material/image:")
